import numpy as np
import pytest

from keras_speech2vid import audio
from keras_speech2vid.config import SyncNetConfig
from keras_speech2vid.face import target_crop
from keras_speech2vid.models.syncnet import SYNC_BOX, build_syncnet
from keras_speech2vid.sync import (SyncNet, audio_windows, normalise_mfcc, summarise, sync_audio_config, sync_crop,
                                   video_windows, window_centres)


def test_sync_crop_of_output_equals_crop_of_aligned_face():
    face = np.random.default_rng(0).integers(0, 256, (112, 112, 3)).astype(np.uint8)
    a, b = sync_crop(face), sync_crop(target_crop(face))
    assert a.shape == (48, 80) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    top, _, left, _ = SYNC_BOX
    r, g, bl = (float(v) for v in face[top, left])
    assert a[0, 0] == int(0.299 * r + 0.587 * g + 0.114 * bl + 0.5)
    with pytest.raises(ValueError, match="Received"):
        sync_crop(face[:100])


def test_window_centres_skip_gaps_and_windows_stack_neighbours():
    k = np.array([0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12])
    np.testing.assert_array_equal(window_centres(k), [2, 3, 8, 9])  # frame 6 is missing
    crops = np.arange(12)[:, None, None] * np.ones((12, 48, 80), np.uint8)
    w = video_windows(crops.astype(np.uint8), [3])
    np.testing.assert_allclose(w[0, 0, 0] * 255, [1, 2, 3, 4, 5], atol=1e-4)


@pytest.mark.parametrize("fps", [25.0, 29.97])
def test_audio_windows_equal_the_front_end_windows(fps):
    m = np.random.default_rng(1).normal(size=(12, 400)).astype(np.float32)
    k = np.arange(-20, 120)
    got = audio_windows(m, k, fps, SyncNetConfig())
    want = audio.gather_windows(m, k, fps, "centre", 0.0, sync_audio_config(SyncNetConfig())).numpy()
    np.testing.assert_array_equal(got, want)
    assert got.shape == (140, 12, 20, 1)


def test_summarise_offset_confidence_and_lse():
    d = np.full((10, 31), 1.0)
    d[:, 15 + 4] = 0.4  # best at shift +4
    d[:, 15 + 3] = 0.7
    r = summarise(d)
    assert r.offset == 4 and r.max_shift == 15 and r.windows == 10
    assert r.min_distance == pytest.approx(0.4) and r.confidence == pytest.approx(0.6)


def test_distances_match_brute_force_embeddings():
    model = build_syncnet("tiny")
    net = SyncNet(model, SyncNetConfig(name="tiny", video_widths=(8, 8, 16, 16), audio_widths=(8, 8, 16, 16),
                                       hidden=32, embedding=16, max_shift=3), batch_size=7)
    rng = np.random.default_rng(2)
    crops = rng.integers(0, 256, (30, 48, 80)).astype(np.uint8)
    k = np.r_[np.arange(10, 25), np.arange(27, 42)]
    mfcc = rng.normal(size=(12, 600)).astype(np.float32) * 5
    d, centres = net.distances(crops, k, mfcc, 25.0)
    pos = window_centres(k)
    np.testing.assert_array_equal(centres, k[pos])
    v = np.asarray(net.video(video_windows(crops, pos)))
    for i in (0, len(pos) - 1):
        for j, s in enumerate(range(-3, 4)):
            a = np.asarray(net.audio(audio_windows(normalise_mfcc(mfcc, net.config), [centres[i] + s], 25.0,
                                                   net.config)))[0]
            assert d[i, j] == pytest.approx(np.linalg.norm(v[i] - a), abs=1e-4)
