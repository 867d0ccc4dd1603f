"""The audio front end (keras_speech2vid.audio) against the spec (§1) and an independent NumPy reference."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_speech2vid import AudioConfig, audio, build_audio_encoder, get_config, io
from tests.conftest import DATA
from tests.mfcc_reference import mfcc_reference

N_SAMPLES = 202880  # tmp.wav

# spec §1.5: c1..c12 of unpadded tmp.wav (a NumPy re-derivation of mfcc.m)
SPOT_VALUES = {
    0: [1.664, -5.111, -6.730, 1.252, -9.616, -5.017, -13.317, 15.547, -1.464, 1.601, 4.887, 1.354],
    500: [-2.477, -1.966, 1.062, 5.056, -0.894, -1.095, 1.514, 4.485, 0.800, -13.177, -8.003, 0.546],
}


@pytest.fixture(scope="module")
def speech():
    x = io.decode_audio(DATA / "tmp.wav")
    assert x.size == N_SAMPLES
    return x


@pytest.fixture(scope="module")
def reference(speech):
    return mfcc_reference(speech)  # (12, 1266) float64


@pytest.fixture(scope="module")
def reference_padded_nan(speech):
    """The original's arithmetic on the padded signal: NaN / ±inf on silent frames."""
    return mfcc_reference(np.pad(speech.astype(np.float64), 16000), silence="nan")  # (12, 1466)


@pytest.fixture(scope="module")
def padded(speech):
    return audio.padded_mfcc(speech).numpy()


# ------------------------------------------------------------------------------------------
# frame counts and spot values


def test_frame_counts_on_tmp_wav(speech, padded):
    assert audio.num_mfcc_frames(N_SAMPLES, padded=False) == 1266
    assert audio.num_mfcc_frames(N_SAMPLES) == 1466
    assert audio.mfcc(speech).shape == (12, 1266)
    assert padded.shape == (12, 1466)
    assert audio.num_video_frames(N_SAMPLES, 25, "demo") == 358
    assert audio.audio_windows(speech, alignment="demo").shape == (358, 12, 35, 1)
    # our timeline: the video lasts as long as the audio, 12.68 s · 25 fps
    assert audio.num_video_frames(N_SAMPLES, 25, "centre") == 317
    assert audio.audio_windows(speech).shape == (317, 12, 35, 1)  # default alignment: centre


@pytest.mark.parametrize("frame", sorted(SPOT_VALUES))
def test_spot_values_tf_and_numpy(speech, reference, frame):
    expected = np.array(SPOT_VALUES[frame])
    tf_values = audio.mfcc(speech).numpy()[:, frame]
    np.testing.assert_allclose(tf_values, expected, atol=1e-3, rtol=0)
    np.testing.assert_allclose(reference[:, frame], expected, atol=1e-3, rtol=0)


def test_tf_matches_numpy_reference_eager_function_and_xla(speech, reference):
    eager = audio.mfcc(speech).numpy()
    assert eager.dtype == np.float32
    assert np.abs(eager - reference).max() < 1e-4

    # a batch: the clip, a quieter copy (same c1..c12), and a shifted copy
    shifted = np.roll(speech, -1600)
    batch = np.stack([speech, 0.25 * speech, shifted])[None]  # (1, 3, samples): two leading dims
    expected = np.stack([reference, reference, mfcc_reference(shifted)])[None]
    graph = tf.function(audio.mfcc, input_signature=[tf.TensorSpec([None, None, None], tf.float32)])
    xla = tf.function(audio.mfcc, jit_compile=True)
    for fn in (graph, xla):
        out = fn(tf.constant(batch)).numpy()
        assert out.shape == (1, 3, 12, 1266)
        assert np.abs(out - expected).max() < 1e-4
    np.testing.assert_allclose(xla(batch).numpy()[0, 0], eager, atol=1e-4, rtol=0)


def test_audio_windows_under_xla_match_eager(speech):
    eager = audio.audio_windows(speech[:48000]).numpy()
    xla = tf.function(audio.audio_windows, jit_compile=True)(tf.constant(speech[:48000])).numpy()
    assert xla.shape == eager.shape == (75, 12, 35, 1)
    np.testing.assert_allclose(xla, eager, atol=1e-4, rtol=0)


def test_gain_only_changes_c0(speech, reference):
    """The original's ×2^15 rescale is not applied: c1..c12 are gain-invariant."""
    np.testing.assert_allclose(audio.mfcc(speech * 32768.0).numpy(), reference, atol=2e-4, rtol=0)
    with_c0 = mfcc_reference(speech * 32768.0, keep_c0=True)
    np.testing.assert_allclose(with_c0[1:], reference, atol=1e-9)
    assert with_c0[0, 500] == pytest.approx(48.193, abs=1e-3)  # spec §1.5 c0 (original scale)


def pearson_and_slope(ours, theirs):
    r = np.corrcoef(ours, theirs)[0, 1]
    slope = np.polyfit(theirs, ours, 1)[0]
    return r, slope


def test_against_python_speech_features(speech, reference):
    psf = pytest.importorskip("python_speech_features")
    theirs = psf.mfcc(speech.astype(np.float64) * 32768.0, 16000, nfilt=40, lowfreq=300, highfreq=3700,
                      winfunc=np.hamming, preemph=0.97, ceplifter=22, appendEnergy=False, numcep=13)
    assert theirs.shape == (1267, 13)  # psf zero-pads a last partial frame
    theirs = theirs[:1266, 1:].T  # c1..c12, (12, 1266)
    ours = audio.mfcc(speech).numpy()
    for k in range(12):
        r, slope = pearson_and_slope(ours[k], theirs[k])
        assert r >= 0.95, f"c{k + 1}: r = {r:.4f}"
        assert 0.4 <= slope <= 0.6, f"c{k + 1}: slope = {slope:.3f} (magnitude vs power: ~0.5)"
    # the strong low coefficients agree much better than the bound
    assert pearson_and_slope(ours[0], theirs[0])[0] > 0.99


# ------------------------------------------------------------------------------------------
# silence (spec §1.4)


def test_silent_frames_are_exactly_the_original_non_finite_frames(padded, reference_padded_nan):
    non_finite = ~np.isfinite(reference_padded_nan).all(axis=0)
    zero = ~padded.any(axis=0)
    assert np.isfinite(padded).all()
    np.testing.assert_array_equal(zero, non_finite)
    assert non_finite[:98].all() and not non_finite[98]
    assert non_finite[-97:].all() and not non_finite[-98]
    assert non_finite.sum() == 98 + 97
    assert np.isnan(reference_padded_nan[:, 0]).all()  # c1..c12 of an all-zero frame are NaN


@pytest.mark.parametrize("num_samples", [0, 1, 399, 1600, 16000])
def test_all_zero_audio_is_finite_everywhere(num_samples):
    zeros = np.zeros(num_samples, np.float32)
    m = audio.mfcc(zeros).numpy()
    assert m.shape == (12, audio.num_mfcc_frames(num_samples, padded=False)) and not m.any()
    w = audio.audio_windows(zeros).numpy()
    assert w.shape == (audio.num_video_frames(num_samples), 12, 35, 1)
    assert np.isfinite(w).all() and not w.any()
    xla = tf.function(audio.audio_windows, jit_compile=True)(tf.constant(zeros)).numpy()
    assert np.isfinite(xla).all() and not xla.any()


def test_short_clip_is_padded_into_full_windows(speech):
    short = speech[16000:17600]  # 0.1 s
    w = audio.audio_windows(short).numpy()
    assert w.shape == (3, 12, 35, 1)  # N = max(1, floor(0.1·25 + 0.5)) = 3
    assert np.isfinite(w).all() and w.any()
    assert audio.audio_windows(speech[:0]).shape == (1, 12, 35, 1)


def randomise(model, seed=0):
    """Random conv weights and BN statistics, with non-zero biases so silence is not trivially 0."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.get_weights()[0].shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0.3, 0.5, c), rng.normal(0, 0.5, c),
                               rng.uniform(0.5, 2.0, c)])
        elif isinstance(layer, keras.layers.Conv2D):
            kernel, bias = layer.get_weights()
            fan_in = np.prod(kernel.shape[:3])
            layer.set_weights([rng.normal(0, 1 / np.sqrt(fan_in), kernel.shape), rng.normal(0, 0.1, bias.shape)])


def relu1_nan_to_zero(model, window_with_nan):
    """conv1 → BN → MatConvNet ReLU (max(x, 0), NaN → 0) in float64 NumPy, on a (12, 35) window."""
    kernel, bias = model.get_layer("audio_conv1").get_weights()  # (3, 3, 1, C)
    gamma, beta, mean, var = model.get_layer("audio_bn1").get_weights()
    eps = model.get_layer("audio_bn1").epsilon
    x = np.pad(window_with_nan.astype(np.float64), 1)  # 'same' zero padding
    out = np.zeros((12, 35, kernel.shape[-1]))
    for di in range(3):
        for dj in range(3):
            out += x[di:di + 12, dj:dj + 35, None] * kernel[di, dj, 0].astype(np.float64)
    out += bias
    out = gamma * (out - mean) / np.sqrt(var + eps) + beta
    return np.fmax(out, 0.0)  # fmax: NaN → 0, like MATLAB's max(x, 0)


@pytest.mark.parametrize("preset", ["tiny", "paper"])
def test_encoder_on_silence_equals_nan_to_zero_relu(preset, speech, padded, reference_padded_nan):
    config = get_config(preset)
    encoder = build_audio_encoder(config)
    randomise(encoder)
    unmasked = build_audio_encoder(config.replace(silence_mask=False))
    unmasked.set_weights(encoder.get_weights())

    n = audio.num_video_frames(N_SAMPLES)
    frames = np.array([0, 150, n - 1])  # leading silence, speech only, trailing silence
    ours = audio.gather_windows(padded, frames).numpy()  # (3, 12, 35, 1)
    starts = audio.window_starts(frames)
    demo_first = audio.audio_windows(speech[:1600], alignment="demo").numpy()[:1]  # all silence
    ours = np.concatenate([ours, demo_first])
    nan_windows = [reference_padded_nan[:, s:s + 35] for s in starts] + [reference_padded_nan[:, :35]]
    assert [int(np.isnan(w).any(axis=0).sum()) for w in nan_windows] == [14, 0, 14, 35]
    assert np.isfinite(ours).all()

    relu1 = keras.Model(encoder.input, encoder.get_layer("audio_silence_mask").output)(ours).numpy()
    emulated = np.stack([relu1_nan_to_zero(encoder, w) for w in nan_windows])
    np.testing.assert_allclose(relu1, emulated, atol=1e-3, rtol=1e-3)
    # without the mask, the zero columns give different relu1 values: the check can fail
    unmasked_relu1 = keras.Model(unmasked.input, unmasked.get_layer("audio_relu1").output)(ours).numpy()
    assert np.abs(unmasked_relu1 - emulated).max() > 0.1

    # the rest of the encoder (a plain chain) on the emulated relu1 gives the model's output
    x = tf.constant(emulated, tf.float32)
    names = [layer.name for layer in encoder.layers]
    for layer in encoder.layers[names.index("audio_silence_mask") + 1:]:
        x = layer(x)
    out = encoder(ours).numpy()
    assert np.isfinite(out).all() and out.shape == (4, 1, 1, config.audio_widths[-1])
    np.testing.assert_allclose(out, x.numpy(), atol=1e-3, rtol=1e-3)
    assert np.abs(unmasked(ours).numpy() - out).max() > 1e-3


# ------------------------------------------------------------------------------------------
# frame arithmetic and windows


def test_window_starts_at_25_fps():
    k = np.arange(1000)
    np.testing.assert_array_equal(audio.window_starts(k, 25, "centre"), 4 * k + 84)
    np.testing.assert_array_equal(audio.window_starts(k, 25, "start"), 4 * k + 100)
    np.testing.assert_array_equal(audio.window_starts(k, 25, "demo"), 4 * k)
    np.testing.assert_array_equal(audio.window_starts(k, 25, "centre", offset=0.12), 4 * k + 96)
    np.testing.assert_array_equal(audio.window_starts(k, 25, "start", offset=-0.05), 4 * k + 95)
    assert audio.window_starts(k, 25).dtype == np.int64
    assert audio.window_starts(7, 25) == 112  # default alignment is AudioConfig.alignment, "centre"
    assert AudioConfig().alignment == "centre"


@pytest.mark.parametrize("fps", [25, 30, 30000 / 1001, 29.97, 24, 50])
def test_window_timing_and_counts_for_other_frame_rates(fps):
    rng = np.random.default_rng(int(fps * 100))
    k = np.arange(2000)
    offset = rng.uniform(-0.5, 0.5)
    for alignment in ("centre", "start"):
        s = audio.window_starts(k, fps, alignment, offset)
        # the window's anchor is within half an MFCC hop (5 ms) of the video frame's anchor
        if alignment == "centre":
            anchor, target = (s + 17) * 0.01 + 0.0125 - 1.0, (k + 0.5) / fps + offset
        else:
            anchor, target = s * 0.01 - 1.0, k / fps + offset
        assert np.abs(anchor - target).max() <= 0.005 + 1e-9
        # NumPy and TF give identical integers, with the integer dtype of the indices
        for dtype in (tf.int32, tf.int64):
            got = audio.window_starts(tf.constant(k, dtype), tf.constant(fps, tf.float64), alignment,
                                      tf.constant(offset, tf.float64))
            assert got.dtype == dtype
            np.testing.assert_array_equal(got.numpy(), s)
    n = np.arange(0, 400000, 997)
    for alignment in ("centre", "start", "demo"):
        counts = audio.num_video_frames(n, fps, alignment)
        np.testing.assert_array_equal(audio.num_video_frames(tf.constant(n, tf.int64), fps, alignment).numpy(), counts)
        assert counts.min() >= 1
        if alignment != "demo":  # the video lasts as long as the audio, to half a frame
            assert np.abs(counts[1:] / fps - n[1:] / 16000).max() <= 0.5 / fps + 1e-9
        else:  # every demo window lies inside the padded MFCC
            last = audio.window_starts(counts - 1, fps, "demo")
            assert (last + 35 <= audio.num_mfcc_frames(n)).all()


def test_windows_are_slices_of_the_padded_mfcc(speech, padded):
    for alignment in ("centre", "start", "demo"):
        w = audio.audio_windows(speech, alignment=alignment).numpy()
        starts = audio.window_starts(np.arange(w.shape[0]), 25, alignment)
        for k in (0, 1, 100, w.shape[0] - 1):
            np.testing.assert_allclose(w[k, :, :, 0], padded[:, starts[k]:starts[k] + 35], atol=1e-6)
        assert (starts + 35 <= padded.shape[1]).all()
    # windows() from the MFCC alone: the same, with N exact given num_samples, else within one frame
    exact = audio.windows(padded, num_samples=N_SAMPLES).numpy()
    np.testing.assert_array_equal(exact, audio.audio_windows(speech).numpy())
    assert abs(audio.windows(padded).shape[0] - exact.shape[0]) <= 1
    assert audio.windows(padded, num_frames=10).shape == (10, 12, 35, 1)


def test_batched_windows_equal_per_clip_windows(speech):
    clips = np.stack([speech[:24000], speech[50000:74000], np.zeros(24000, np.float32)])
    batched = audio.audio_windows(clips[None]).numpy()  # (1, 3, N, 12, 35, 1)
    assert batched.shape == (1, 3, 38, 12, 35, 1)
    for i, clip in enumerate(clips):
        np.testing.assert_allclose(batched[0, i], audio.audio_windows(clip).numpy(), atol=1e-5, rtol=0)
    xla = tf.function(audio.audio_windows, jit_compile=True)(tf.constant(clips)).numpy()
    np.testing.assert_allclose(xla, batched[0], atol=1e-4, rtol=0)


def test_out_of_range_windows_read_as_a_longer_zero_padding(speech):
    """Offsets beyond the 1 s pad give what a 3 s pad would: silent (zero) columns, never clamping."""
    clip = speech[:40000]
    long_pad = AudioConfig(pad_seconds=3.0)
    frames = np.arange(0, audio.num_video_frames(clip.size))
    for offset in (-1.7, -0.9, 0.0, 0.8, 1.9):
        ours = audio.gather_windows(audio.padded_mfcc(clip), frames, offset=offset).numpy()
        longer = audio.gather_windows(audio.padded_mfcc(clip, long_pad), frames, offset=offset, config=long_pad).numpy()
        np.testing.assert_allclose(ours, longer, atol=1e-5, rtol=0)
        assert ours.shape == (frames.size, 12, 35, 1)
    far = audio.gather_windows(audio.padded_mfcc(clip), [0, 1], offset=-5.0).numpy()
    assert not far.any()


def test_gather_windows_in_a_tf_data_pipeline(speech):
    """Per-clip offset and fps as tensors; windows for chosen target frames inside the graph."""
    clips = [(speech[:32000], 0.12, 25.0), (speech[32000:80000], -0.04, 30000 / 1001)]

    def gen():
        yield from clips

    ds = tf.data.Dataset.from_generator(gen, output_signature=(
        tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.float32), tf.TensorSpec([], tf.float64)))

    def to_windows(wav, offset, fps):
        n = audio.num_video_frames(tf.shape(wav)[0], fps)
        frames = tf.stack([0, n // 2, n - 1])
        return audio.gather_windows(audio.padded_mfcc(wav), frames, fps=fps, offset=offset), frames

    for (wav, offset, fps), (w, frames) in zip(clips, ds.map(to_windows, num_parallel_calls=2)):
        expected = audio.audio_windows(wav, fps=fps, offset=np.float32(offset)).numpy()[frames.numpy()]
        assert w.shape == (3, 12, 35, 1)
        np.testing.assert_allclose(w.numpy(), expected, atol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="alignment"):
        audio.window_starts(0, 25, "middle")
    with pytest.raises(ValueError, match="fps"):
        audio.num_video_frames(16000, 0)
    with pytest.raises(ValueError, match="integers"):
        audio.gather_windows(np.zeros((12, 300)), [0.5])
    with pytest.raises(ValueError, match="coeffs, frames"):
        audio.gather_windows(np.zeros(300), [0])
    with pytest.raises(ValueError, match="samples axis"):
        audio.mfcc(1.0)
