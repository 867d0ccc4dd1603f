"""Metrics: PSNR/SSIM against tf.image, the mouth box, landmarks in 112 coordinates, correlations, planning."""

from pathlib import Path

import numpy as np
import pytest

from keras_speech2vid.evaluation import metrics as M
from keras_speech2vid.evaluation.protocol import mismatch_waveform, plan_frames

DATA = Path(__file__).resolve().parents[1] / "data"


def tf_metrics(a, b, max_val):
    import tensorflow as tf

    a, b = tf.constant(a), tf.constant(b)
    return tf.image.psnr(a, b, max_val).numpy(), tf.image.ssim(a, b, max_val).numpy()


@pytest.fixture(scope="module")
def real_faces():
    """The 109 targets of the five authors' aligned faces (faceimg1), uint8."""
    from keras_speech2vid.face import target_crop
    from keras_speech2vid.io import read_image

    return np.stack([target_crop(read_image(p)) for p in sorted((DATA / "faceimg1").glob("*.png"))])


# ---------------------------------------------------------------------------------------------- PSNR / SSIM


@pytest.mark.parametrize("shape", [(109, 109, 3), (3, 109, 109, 3), (2, 37, 65, 3), (11, 11, 1)])
def test_psnr_ssim_match_tf_image_on_random_uint8(shape):
    rng = np.random.default_rng(len(shape) * 100 + shape[-2])
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    b = np.clip(a.astype(np.int64) + rng.integers(-40, 41, shape), 0, 255).astype(np.uint8)
    want_psnr, want_ssim = tf_metrics(a, b, 255)
    np.testing.assert_allclose(M.psnr(a, b), want_psnr, rtol=1e-5)
    np.testing.assert_allclose(M.ssim(a, b), want_ssim, atol=2e-5)


def test_psnr_ssim_match_tf_image_on_float_images_with_max_val_1():
    rng = np.random.default_rng(1)
    a = rng.random((2, 50, 60, 3)).astype(np.float32)
    b = np.clip(a + 0.1 * rng.standard_normal(a.shape), 0, 1).astype(np.float32)
    want_psnr, want_ssim = tf_metrics(a, b, 1.0)
    np.testing.assert_allclose(M.psnr(a, b, max_val=1.0), want_psnr, rtol=1e-5)
    np.testing.assert_allclose(M.ssim(a, b, max_val=1.0), want_ssim, atol=2e-5)


def test_psnr_ssim_match_tf_image_on_real_faces(real_faces):
    a, b = real_faces[:-1], real_faces[1:]  # different frames of the same person
    want_psnr, want_ssim = tf_metrics(a, b, 255)
    np.testing.assert_allclose(M.psnr(a, b), want_psnr, rtol=1e-5)
    np.testing.assert_allclose(M.ssim(a, b), want_ssim, atol=2e-5)
    box = M.mouth_box()
    ma, mb = M.crop_box(a, box), M.crop_box(b, box)
    want_psnr, want_ssim = tf_metrics(ma, mb, 255)
    np.testing.assert_allclose(M.psnr(ma, mb), want_psnr, rtol=1e-5)
    np.testing.assert_allclose(M.ssim(ma, mb), want_ssim, atol=2e-5)
    assert 0.3 < float(np.mean(want_ssim)) < 0.99  # a meaningful, non-trivial comparison


def test_identical_images_give_infinite_psnr_and_ssim_1(real_faces):
    assert M.psnr(real_faces[0], real_faces[0]) == np.inf
    assert M.ssim(real_faces[0], real_faces[0]) == pytest.approx(1.0, abs=1e-12)
    assert isinstance(M.psnr(real_faces[0], real_faces[1]), float)
    assert M.psnr(real_faces, real_faces).shape == (len(real_faces),)


def test_metric_errors():
    with pytest.raises(ValueError, match="same shape"):
        M.psnr(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))
    with pytest.raises(ValueError, match="at least 11"):
        M.ssim(np.zeros((10, 20, 3)), np.zeros((10, 20, 3)))
    with pytest.raises(ValueError, match="H, W, C"):
        M.psnr(np.zeros(5), np.zeros(5))


# ------------------------------------------------------------------------------------------------ regions


def test_mouth_box_covers_the_canonical_mouth_with_a_margin():
    from keras_speech2vid.face import canonical_landmarks

    assert M.mouth_box() == (61, 98, 24, 89)  # rows 61..97, cols 24..88 of the 109 crop
    top, bottom, left, right = M.mouth_box(size=112)
    assert (top, bottom, left, right) == (62, 99, 25, 90)
    mouth = canonical_landmarks(112)[48:67]
    assert (mouth[:, 0] > left + 8).all() and (mouth[:, 0] < right - 8).all()
    assert (mouth[:, 1] > top + 8).all() and (mouth[:, 1] < bottom - 8).all()
    t, b, l, r = M.mouth_box(margin=0.0)
    assert t <= mouth[:, 1].min() - 1 < b and l <= mouth[:, 0].min() - 1 < r
    assert M.mouth_box(margin=5.0) == (0, 109, 0, 109)  # clipped to the crop
    with pytest.raises(ValueError):
        M.mouth_box(size=224)


# ---------------------------------------------------------------------------------------------- landmarks


def test_landmarks_of_a_109_face_are_in_112_coordinates(real_faces):
    from keras_speech2vid.face import aligned_landmarks
    from keras_speech2vid.io import read_image

    face112 = read_image(sorted((DATA / "faceimg1").glob("*.png"))[0])
    direct, _ = aligned_landmarks(face112)
    points, detected = M.face_landmarks(real_faces[0])
    assert detected and points.shape == (68, 2)
    # the 109 face back in a 112 canvas at offset 1: the same face, the same coordinates (edges aside)
    assert float(np.abs(points - direct).mean()) < 0.5
    assert M.face_landmarks(face112)[0] == pytest.approx(direct)
    canvas = M.to_canvas_112(real_faces[0])
    assert canvas.shape == (112, 112, 3) and np.array_equal(canvas[1:110, 1:110], real_faces[0])


def test_lmd_aperture_and_inter_ocular():
    from keras_speech2vid.face import canonical_landmarks

    c = np.vstack([canonical_landmarks(112), canonical_landmarks(112)[66:67]])  # 68 points
    assert M.lmd(c, c) == 0.0
    shifted = c.copy()
    shifted[48:68] += [3.0, 4.0]
    assert M.lmd(c, shifted) == pytest.approx(5.0)
    shifted[:48] += 100.0  # points outside the mouth do not count
    assert M.lmd(c, shifted) == pytest.approx(5.0)
    iod = M.inter_ocular(c)
    assert 45 < iod < 56
    closed = c.copy()
    closed[[67, 66, 65]] = c[[61, 62, 63]]  # lower inner lip on the upper one: aperture 0
    assert M.mouth_aperture(closed) == 0.0
    opened = closed.copy()
    opened[[65, 66, 67], 1] += 10.0  # lower inner lip 10 px down
    assert M.mouth_aperture(opened) == pytest.approx(10.0 / iod)
    # scale-free: the same face twice as large has the same aperture
    assert M.mouth_aperture(2.0 * opened) == pytest.approx(M.mouth_aperture(opened))
    assert M.mouth_aperture(np.stack([c, opened])).shape == (2,)


# ------------------------------------------------------------------------------------------- correlation


def test_pearson_r_defined_and_undefined():
    x = np.sin(np.linspace(0, 6, 50))
    assert M.pearson_r(x, x) == (pytest.approx(1.0), True)
    assert M.pearson_r(x, -2 * x + 1) == (pytest.approx(-1.0), True)
    assert M.pearson_r(np.full(50, 0.3), x) == (0.0, False)  # constant series: reported as 0
    assert M.pearson_r(x, np.full(50, 0.3)) == (0.0, False)
    assert M.pearson_r([1.0], [2.0]) == (0.0, False)
    with pytest.raises(ValueError):
        M.pearson_r([1, 2, 3], [1, 2])


@pytest.mark.parametrize("shift", [-4, 0, 3])
def test_av_offset_recovers_a_known_shift(shift):
    rng = np.random.default_rng(7)
    base = np.convolve(rng.standard_normal(140), np.ones(4) / 4, mode="same")
    truth = base[20:120]
    generated = base[20 - shift:120 - shift]  # generated[t + shift] == truth[t]
    lag, r = M.av_offset(generated, truth, max_lag=8)
    assert lag == shift and r == pytest.approx(1.0)
    table = M.lag_correlations(generated, truth, max_lag=8)
    assert sorted(table) == list(range(-8, 9))


def test_av_offset_of_a_constant_series_and_lag_limits():
    assert M.av_offset(np.ones(30), np.arange(30.0), 5) == (None, 0.0)
    assert M.max_lag_for(30, 10) == 10 and M.max_lag_for(12, 10) == 6 and M.max_lag_for(5, 0) == 0
    assert sorted(M.lag_correlations(np.arange(12.0), np.arange(12.0) ** 2, 10)) == list(range(-6, 7))


# ------------------------------------------------------------------------------------------------ protocol


def test_plan_frames_documented_example():
    plan = plan_frames(0, 75)
    assert plan.identity == (1, 4, 7, 10, 13)
    assert plan.static == 13 and plan.scored_start == 16 and plan.num_scored == 59


@pytest.mark.parametrize("start,stop,n,guard,fraction", [
    (0, 75, 5, 2, 0.2), (7, 40, 5, 2, 0.2), (3, 12, 5, 0, 0.2), (0, 200, 1, 3, 0.1), (10, 16, 5, 2, 0.5),
    (0, 1, 1, 0, 0.0),
])
def test_plan_frames_never_scores_an_identity_frame_or_its_neighbours(start, stop, n, guard, fraction):
    plan = plan_frames(start, stop, n, guard, fraction)
    assert len(plan.identity) == n and len(set(plan.identity)) == n
    assert all(start <= i < stop for i in plan.identity) and plan.static in plan.identity
    scored = plan.scored
    assert len(scored) == plan.num_scored
    if len(scored):
        assert scored.min() >= start and scored.max() == stop - 1
        distance = np.abs(scored[:, None] - np.asarray(plan.identity)[None, :])
        assert distance.min() > guard


def test_plan_frames_rejects_bad_arguments():
    with pytest.raises(ValueError):
        plan_frames(5, 5)
    with pytest.raises(ValueError):
        plan_frames(0, 10, identity_frames=0)


def test_mismatch_waveform():
    a = np.arange(10, dtype=np.float32)
    b = np.arange(100, 104, dtype=np.float32)
    c = np.arange(200, 230, dtype=np.float32)
    wave, source = mismatch_waveform([a, b, c], 0)  # the next clip, looped to length
    assert source == 1 and np.array_equal(wave, [100, 101, 102, 103, 100, 101, 102, 103, 100, 101])
    wave, source = mismatch_waveform([a, b, c], 2)  # the last clip takes the first (looped)
    assert source == 0 and len(wave) == 30 and np.array_equal(wave[:10], a) and np.array_equal(wave[10:20], a)
    wave, source = mismatch_waveform([b, c], 0)  # a longer clip's audio is trimmed
    assert source == 1 and np.array_equal(wave, [200, 201, 202, 203])
    wave, source = mismatch_waveform([a], 0)  # a single clip: its own audio, shifted by half
    assert source is None and np.array_equal(wave, np.roll(a, 5))


def test_audio_effect_separates_the_mouth_box_from_the_rest():
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 200, (4, 109, 109, 3)).astype(np.uint8)
    grey = np.stack([M.grey(f) for f in faces])
    assert np.array_equal(grey[0], np.round(faces[0].astype(np.float32).mean(-1)).astype(np.uint8))
    box = M.mouth_box()
    moved = grey.copy()
    top, bottom, left, right = box
    moved[:, top:bottom, left:right] += 10  # the "audio" moves only the mouth
    mouth, rest = M.audio_effect(grey, moved, box)
    assert np.allclose(mouth, 10.0) and np.allclose(rest, 0.0) and mouth.shape == (4,)
    mouth, rest = M.audio_effect(grey, grey, box)
    assert not mouth.any() and not rest.any()
    with pytest.raises(ValueError, match="one shape"):
        M.audio_effect(grey, grey[:2], box)
