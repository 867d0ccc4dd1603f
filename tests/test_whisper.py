"""Whisper feature windows per video frame (`whisper.window_indices`, `iter_whisper_windows`) and generation
with a Whisper-front-end generator. The encoder's parity, timing and long-audio tests: test_whisper_convert."""

import numpy as np
import pytest

from keras_speech2vid import audio, io
from keras_speech2vid.whisper import iter_whisper_windows, shared_encoder, whisper_features, window_indices
from tests.conftest import DATA


def test_window_is_centred_on_the_video_frame_as_the_mfcc_window():
    idx = window_indices(np.arange(200), 25.0, frames=18)
    centre = idx.mean(axis=1) / 50.0  # seconds
    np.testing.assert_allclose(centre, (np.arange(200) + 0.5) / 25.0, atol=0.0101)  # half a 20 ms frame
    assert (np.diff(idx, axis=1) == 1).all()
    # the MFCC window of the same frame (centre alignment) has the same centre, to one MFCC hop
    starts = audio.window_starts(np.arange(200), 25.0)
    pad = audio.AudioConfig().pad_seconds
    mfcc_centre = (starts + 17) / 100.0 + 0.0125 - pad
    np.testing.assert_allclose(centre, mfcc_centre, atol=0.0201)
    # an offset moves the window by the same time
    np.testing.assert_array_equal(window_indices([10], 25.0, offset=0.2) - window_indices([10], 25.0), 10)


def test_a_click_shows_in_the_middle_of_its_frame_s_window():
    wave = io.decode_audio(DATA / "tmp.wav")[:16000 * 6].copy()
    t = 3.01
    clicked = wave.copy()
    clicked[int(t * 16000)] += 0.9
    a, b = (np.concatenate(list(iter_whisper_windows(w, 25.0, 150))) for w in (wave, clicked))
    assert a.shape == (150, 18, 384)
    change = np.linalg.norm(b - a, axis=-1)  # (frames, 18)
    k = int(t * 25)  # the video frame holding the click, whose window is centred 10 ms after it
    at = t * 50 - window_indices([k], 25.0)[0, 0]  # the click's place in that window: 7.5 of 0..17
    assert abs(change[k].argmax() - at) <= 1 and 7 <= at <= 9
    assert change[k].max() > 3 * np.median(change[k])


def test_windows_are_the_features_cut_in_chunks():
    wave = io.decode_audio(DATA / "tmp.wav")
    n = audio.num_video_frames(len(wave), 25.0)
    chunks = list(iter_whisper_windows(wave, 25.0, n, chunk_frames=100))
    assert [len(c) for c in chunks] == [100, 100, 100, n - 300]
    features = whisper_features(wave, shared_encoder())
    idx = np.clip(window_indices(np.arange(n), 25.0), 0, len(features) - 1)
    np.testing.assert_array_equal(np.concatenate(chunks), features[idx])
    # the frames evaluation scores get the same windows
    from keras_speech2vid.inference.engine import FrameEngine
    from keras_speech2vid.models import build_generator

    engine = FrameEngine(build_generator("whisper_tiny"))
    some = np.array([0, 7, 100, n - 1])
    np.testing.assert_array_equal(engine.windows_at(wave, some, 25.0, None, 0.0, None), features[idx[some]])


@pytest.fixture(scope="module")
def whisper_weights(tmp_path_factory):
    from keras_speech2vid.config import PRESETS
    from keras_speech2vid.models import build_generator
    from keras_speech2vid.weights import save_weights_dir

    folder = tmp_path_factory.mktemp("whisper_weights")
    save_weights_dir(folder, {"generator": ("generator", build_generator("whisper_tiny"), PRESETS["whisper_tiny"])})
    return folder


def test_generate_with_a_whisper_generator_hears_the_audio(whisper_weights, tmp_path):
    from keras_speech2vid import Speech2Vid
    from keras_speech2vid.cli import main

    s2v = Speech2Vid.load(whisper_weights)
    speech = io.decode_audio(DATA / "tmp.wav")
    frames = np.stack(list(s2v.generate(DATA / "obama.jpg", speech)))
    assert len(frames) == audio.num_video_frames(len(speech), 25.0)
    silent = np.stack(list(s2v.generate(DATA / "obama.jpg", np.zeros_like(speech))))
    assert (frames != silent).any()  # the features reach the frames (an untrained generator barely listens)
    out = tmp_path / "w.mp4"
    assert main(["generate", "--face", str(DATA / "obama.jpg"), "--audio", str(DATA / "tmp.wav"), "--outfile",
                 str(out), "--weights", str(whisper_weights)]) == 0
    assert io.probe(out).has_audio


@pytest.mark.slow
def test_ten_minutes_through_generate_stay_within_300_mb_of_ten_seconds():
    import json
    import subprocess
    import sys

    from tests.conftest import ROOT

    done = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_whisper.py"), "--seconds", "5", "--repeats",
                           "1", "--memory"], capture_output=True, text=True, timeout=1200, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    rss = json.loads(done.stdout.strip().splitlines()[-1])
    assert rss["rss_600s_mib"] - rss["rss_10s_mib"] <= 300, rss
