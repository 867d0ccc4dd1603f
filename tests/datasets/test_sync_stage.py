"""Stage (ii) of prepare with the bundled SyncNet: AV offsets, active speakers, and the loader's corrected windows."""

import json
import subprocess

import numpy as np
import pytest

from keras_speech2vid import audio
from keras_speech2vid.data.dataset import make_dataset
from keras_speech2vid.data.prepare import PrepareConfig, prepare
from keras_speech2vid.sync import SyncNet
from tests.conftest import DATA

CLIP = DATA / "vox2_00086_man_suit_red_bg.mp4"  # 25 fps, 5.2 s, one talking face
# another person's speech, as long as the clip. (The clip is one the bundled SyncNet was trained on; with
# the 3 s GRID sentences its confidence stays at 0.067-0.075, above the 0.06 threshold: see the model card.)
OTHER_AUDIO = DATA / "transcript.mp3"


def _ffmpeg(*args):
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", *map(str, args)], check=True)


@pytest.fixture(scope="module")
def syncnet():
    net = SyncNet.find()
    if net is None:
        pytest.fail("the bundled weights hold no SyncNet")
    return net


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, syncnet):
    """The clip as it is, with its audio 5 frames (200 ms) late, and with another person's speech."""
    src = tmp_path_factory.mktemp("sync_src")
    _ffmpeg("-i", CLIP, "-c:v", "copy", "-af", "adelay=200:all=1", "-c:a", "aac", src / "delayed5.mp4")
    _ffmpeg("-i", CLIP, "-i", OTHER_AUDIO, "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-shortest",
            src / "other_voice.mp4")
    _ffmpeg("-i", CLIP, "-c", "copy", src / "original.mp4")
    out = tmp_path_factory.mktemp("sync_prepared")
    manifest = prepare(sorted(src.glob("*.mp4")), out, PrepareConfig(val_fraction=0.0), progress=False)
    return out, {v["video_id"]: v for v in manifest["videos"]}


def test_offsets_are_measured_and_recorded(corpus):
    _, videos = corpus
    original, delayed = videos["original"], videos["delayed5"]
    assert abs(original["tracks"][0]["sync"]["offset"]) <= 1
    assert abs(delayed["tracks"][0]["sync"]["offset"] - 5) <= 1
    assert delayed["av_offset"] == pytest.approx(delayed["tracks"][0]["sync"]["offset"] / 25.0)
    assert delayed["tracks"][0]["active"] and original["tracks"][0]["active"]
    assert delayed["sync_model"] and len(delayed["tracks"][0]["sync"]["distances"]) == 31


def test_loader_windows_are_corrected(corpus):
    out, videos = corpus
    ds = make_dataset(out, "train", "tiny", batch_size=64, shuffle=False, seed=0, return_meta=True,
                      drop_remainder=False)
    by_clip = {}
    for inputs, _, meta in ds:
        for w, vid, k in zip(inputs["mfcc"].numpy(), meta["video_id"].numpy(), meta["frame_index"].numpy()):
            by_clip.setdefault(vid.decode(), {})[int(k)] = w
    delayed = by_clip["delayed5"]
    from keras_speech2vid.io import decode_audio

    mfcc = audio.padded_mfcc(decode_audio(videos["delayed5"]["file"]))
    k = sorted(delayed)[10]
    want = audio.gather_windows(mfcc, [k], 25.0, offset=videos["delayed5"]["av_offset"]).numpy()[0]
    np.testing.assert_allclose(delayed[k], want, atol=1e-5)
    # corrected, the window is (up to the AAC re-encoding) the original clip's; uncorrected, it is not
    uncorrected = audio.gather_windows(mfcc, [k], 25.0).numpy()[0]
    original = by_clip["original"][k]
    assert np.abs(delayed[k] - original).mean() < 0.5 * np.abs(uncorrected - original).mean()


def test_face_that_is_not_the_speaker_is_inactive_and_dropped(corpus):
    out, videos = corpus
    other = videos["other_voice"]["tracks"][0]
    assert not other["active"], other["sync"]
    assert other["sync"]["confidence"] < videos["original"]["tracks"][0]["sync"]["confidence"] / 2
    ds = make_dataset(out, "train", "tiny", batch_size=64, shuffle=False, seed=0, return_meta=True,
                      drop_remainder=False)
    seen = {v.decode() for _, _, meta in ds for v in meta["video_id"].numpy()}
    assert seen == {"original", "delayed5"}


def test_flag_keeps_inactive_tracks_and_no_sync_skips_the_stage(corpus, tmp_path):
    import shutil

    out, _ = corpus
    flagged = tmp_path / "flagged"
    shutil.copytree(out, flagged)
    manifest = prepare([], flagged, PrepareConfig(val_fraction=0.0, inactive="flag"), progress=False)
    assert manifest["inactive"] == "flag" and manifest["totals"]["train"]["inactive_tracks"] == 1
    ds = make_dataset(flagged, "train", "tiny", batch_size=64, shuffle=False, seed=0, return_meta=True)
    assert "other_voice" in {v.decode() for _, _, meta in ds for v in meta["video_id"].numpy()}
    plain = prepare([CLIP], tmp_path / "plain", PrepareConfig(val_fraction=0.0, sync=False), progress=False)
    assert "sync" not in plain["videos"][0]["tracks"][0] and plain["videos"][0]["av_offset"] == 0.0
    assert json.loads((tmp_path / "plain" / "manifest.json").read_text())["totals"]["train"]["inactive_tracks"] == 0
