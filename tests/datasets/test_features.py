"""Whisper features of a prepared folder, and the whisper-front-end samples of the tf.data pipeline."""

import numpy as np
import pytest

from keras_speech2vid import io
from keras_speech2vid.data.dataset import make_dataset
from keras_speech2vid.data.features import add_whisper_features, whisper_path
from keras_speech2vid.errors import Speech2VidError
from keras_speech2vid.whisper import window_indices


def test_one_file_per_video_at_50_hz_and_a_rerun_writes_none(prepared, prepared_whisper):
    out, written = prepared_whisper
    assert written == len(prepared[1]["videos"]) == 3
    for video in prepared[1]["videos"]:
        features = np.load(whisper_path(out, video["video_id"]))
        samples = len(io.decode_audio(video["file"]))
        assert features.shape == (-(-samples // 320), 384) and features.dtype == np.float16
    assert add_whisper_features(out, progress=False) == 0


def test_samples_are_the_feature_windows_of_their_frames(prepared, prepared_whisper):
    out, _ = prepared_whisper
    fps = {v["video_id"]: v["fps"] for v in prepared[1]["videos"]}
    ds = make_dataset(out, "train", "whisper_tiny", 4, shuffle=False, seed=0, return_meta=True)
    checked = 0
    for inputs, _, meta in ds.take(3):
        assert set(inputs) == {"whisper", "identity"} and inputs["whisper"].shape[1:] == (18, 384)
        for b in range(4):
            video = meta["video_id"][b].numpy().decode()
            features = np.load(whisper_path(out, video)).astype(np.float32)
            idx = np.clip(window_indices([int(meta["frame_index"][b])], fps[video]), 0, len(features) - 1)[0]
            np.testing.assert_array_equal(inputs["whisper"][b].numpy(), features[idx])
            checked += 1
    assert checked == 12


def test_missing_features_are_one_clear_error(prepared):
    with pytest.raises(Speech2VidError, match="no Whisper features for 2 of 2 videos"):
        make_dataset(prepared[0], "train", "whisper_tiny", 4)
