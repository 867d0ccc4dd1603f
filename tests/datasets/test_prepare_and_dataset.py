"""Dataset preparation on real clips, and the tf.data pipeline over its shards."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from keras_speech2vid import audio, io
from keras_speech2vid.data.dataset import make_dataset
from keras_speech2vid.data.prepare import prepare
from keras_speech2vid.face.track import track_video
from tests.conftest import CLIPS, DATA, ROOT, VAL, shared_path
from tests.datasets.conftest import STAGE_I



def _frames_expected(path):
    info = io.probe(path)
    return info.duration * info.fps


def test_manifest_counts_tracks_and_skips(prepared):
    out, manifest = prepared
    assert json.loads((out / "manifest.json").read_text()) == manifest
    by_id = {v["video_id"]: v for v in manifest["videos"]}
    assert set(by_id) == {p.stem for p in CLIPS}
    for clip in CLIPS:
        entry = by_id[clip.stem]
        assert abs(entry["frames"] - _frames_expected(clip)) <= 1
        if clip.name.startswith("grid"):
            assert len(entry["tracks"]) == 1 and entry["tracks"][0]["frames"] >= 0.95 * entry["frames"]
    reasons = {Path(s["file"]).name: s["reason"] for s in manifest["skipped"]}
    assert set(reasons) == {"obama.jpg", "transcript.mp3"}
    assert all(name in reason for name, reason in reasons.items())  # one line naming the file
    assert by_id["grid_lbbc2a_woman_pink_top"]["split"] == "val"
    assert manifest["totals"]["val"]["videos"] == 1 and manifest["totals"]["train"]["videos"] == 2


def test_every_grid_clip_in_shared_gives_one_track(tmp_path):
    clips = sorted(shared_path("data", "clips").glob("grid_*.mpg"))
    manifest = prepare(clips, tmp_path, progress=False)
    assert len(manifest["videos"]) == len(clips) == 6 and not manifest["skipped"]
    for entry in manifest["videos"]:
        assert len(entry["tracks"]) == 1 and abs(entry["frames"] - 75) <= 1


def test_loader_target_and_window_match_independent_pipeline(prepared):
    out, _ = prepared
    ds = make_dataset(out, "val", "tiny", batch_size=4, shuffle=False, seed=3, return_meta=True)
    clip = DATA / "grid_lbbc2a_woman_pink_top.mpg"
    crops = {rec.index: rec.crop(frame) for frame, rec in track_video(clip) if rec.has_face}
    reference_windows = audio.audio_windows(io.decode_audio(clip), fps=25).numpy()
    seen = []
    for inputs, target, meta in ds:
        for b in range(target.shape[0]):
            k = int(meta["frame_index"][b])
            seen.append(k)
            expected = crops[k][1:110, 1:110].astype(np.float32) / 255.0
            assert np.abs(target[b].numpy() - expected).mean() < 0.01  # JPEG q95 round trip
            np.testing.assert_allclose(inputs["mfcc"][b].numpy(), reference_windows[k], atol=1e-4)
    assert seen == list(range(0, 75, 5))


def test_identity_frames_same_track_and_far(prepared):
    out, _ = prepared
    ds = make_dataset(out, "train", "tiny", batch_size=8, seed=0, min_identity_distance=25, return_meta=True)
    count = 0
    for _, _, meta in ds:
        for b in range(meta["frame_index"].shape[0]):
            far = np.abs(meta["identity_index"][b].numpy() - int(meta["frame_index"][b]))
            assert (far >= 25).all()
            count += 1
    assert count == 40  # (15 + 26) targets, drop_remainder at batch 8


def test_short_track_falls_back_to_farthest_frames():
    from keras_speech2vid.data.dataset import identity_positions

    ids = identity_positions(tf.constant(10, tf.int64), tf.constant(6, tf.int64), 5, 25, tf.constant([1, 2], tf.int64))
    assert set(ids.numpy().tolist()) == {0}  # the only frame at the largest reachable distance (6)


def test_deterministic_with_seed(prepared):
    out, _ = prepared
    a = next(iter(make_dataset(out, "train", "tiny", batch_size=8, seed=5)))
    b = next(iter(make_dataset(out, "train", "tiny", batch_size=8, seed=5)))
    c = next(iter(make_dataset(out, "train", "tiny", batch_size=8, seed=6)))
    np.testing.assert_array_equal(a[0]["identity"].numpy(), b[0]["identity"].numpy())
    np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())
    assert not np.array_equal(a[0]["identity"].numpy(), c[0]["identity"].numpy())


def test_av_offset_from_manifest_shifts_windows(prepared, tmp_path):
    out, _ = prepared
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    for v in manifest["videos"]:
        v["av_offset"] = 0.2  # 200 ms = 20 MFCC frames
    (copy / "manifest.json").write_text(json.dumps(manifest))
    base = next(iter(make_dataset(out, "val", "tiny", batch_size=4, shuffle=False, seed=0)))[0]["mfcc"].numpy()
    shifted = next(iter(make_dataset(copy, "val", "tiny", batch_size=4, shuffle=False, seed=0)))[0]["mfcc"].numpy()
    np.testing.assert_allclose(shifted[1][:, :15], base[1][:, 20:], atol=1e-5)  # frame 5 shifted by 20 columns
    # re-preparing keeps the edited offsets
    manifest = prepare(CLIPS, copy, STAGE_I, val_groups=VAL,
                       progress=False)
    assert all(v["av_offset"] == 0.2 for v in manifest["videos"])


def _snapshot(folder):
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_ino) for p in (folder / "records").iterdir()}


def test_rerun_rewrites_no_shard(prepared):
    out, _ = prepared
    before = _snapshot(out)
    prepare(CLIPS, out, STAGE_I, val_groups=VAL, progress=False)
    assert _snapshot(out) == before


def test_kill_midway_then_rerun_completes(tmp_path):
    code = ("import sys; sys.path.insert(0, %r); from keras_speech2vid.data.prepare import prepare; "
            "prepare([%s], %r, progress=False)" % (str(ROOT), ", ".join(repr(str(c)) for c in CLIPS), str(tmp_path)))
    child = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                             stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "videos").glob("*.json")) if (tmp_path / "videos").exists() else True:
        assert child.poll() is None, child.stderr.read().decode()[-2000:]
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    done_before = {p.stem for p in (tmp_path / "videos").glob("*.json")}
    assert 1 <= len(done_before) < len(CLIPS)
    manifest = prepare(CLIPS, tmp_path, progress=False)
    assert {v["video_id"] for v in manifest["videos"]} == {c.stem for c in CLIPS}
    records = sorted(p.name for p in (tmp_path / "records").iterdir())
    assert records == sorted(f"{c.stem}.tfrecord" for c in CLIPS)  # no temporaries, no duplicates
    for v in manifest["videos"]:
        tracks = [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(str(tmp_path / v["record"]))]
        assert len(tracks) == len(v["tracks"])
        assert sum(len(t.features.feature["frames"].bytes_list.value) for t in tracks) == v["frames_kept"]


def test_shards_split_the_corpus(tmp_path):
    a = {v["video_id"] for v in prepare(CLIPS, tmp_path / "a", shard=(0, 2), progress=False)["videos"]}
    b = {v["video_id"] for v in prepare(CLIPS, tmp_path / "b", shard=(1, 2), progress=False)["videos"]}
    assert not a & b and a | b == {c.stem for c in CLIPS}  # two machines, each video exactly once


def test_mirrored_strategy_distributes_batches():
    code = """
import os, sys
sys.path.insert(0, %r)
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from keras_speech2vid.data.prepare import prepare
from keras_speech2vid.data.dataset import make_dataset
prepare([%r], %r, progress=False)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
ds = strategy.experimental_distribute_dataset(make_dataset(%r, "train", "tiny", 8, seed=0))
batch = next(iter(ds))
print("replicas", [t.shape[0] for t in strategy.experimental_local_results(batch[1])])
"""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run([sys.executable, "-c", code % (str(ROOT), str(CLIPS[2]), d, d)], capture_output=True,
                             text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)
    assert "replicas [4, 4]" in out.stdout, out.stderr[-2000:]


@pytest.mark.parametrize("option", [["--every", "0"], ["--val-fraction", "2"], ["--shard", "3/2"],
                                    ["--workers", "0"], ["--sync-threshold", "-1"]])
def test_prepare_refuses_bad_options_in_one_line(option, tmp_path, capsys):
    from keras_speech2vid.cli import main

    assert main(["prepare", str(CLIPS[0]), "--out", str(tmp_path / "out"), *option]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and option[0].lstrip("-").replace("-", "_").split("_")[0] in err
    assert not (tmp_path / "out").exists()


def test_prepare_refuses_a_folder_without_videos(tmp_path, capsys):
    from keras_speech2vid.cli import main

    (tmp_path / "empty").mkdir()
    assert main(["prepare", str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    assert "no video files" in capsys.readouterr().err


def test_a_small_set_always_gets_a_validation_group(prepared, tmp_path):
    """Issue 21.8: --val-fraction 0.5 on videos whose hashes all fall above it still validates on one group
    (the one of the lowest hash) instead of training without validation ("best val loss inf")."""
    import shutil

    from keras_speech2vid.data.prepare import PrepareConfig, split_of, write_manifest

    copy = tmp_path / "copy"
    shutil.copytree(prepared[0], copy)
    ids = [v["video_id"] for v in prepared[1]["videos"]]
    fraction = 1e-6  # below every group's hash: by hash alone, none is val
    assert all(split_of(i, fraction) == "train" for i in ids)
    manifest = write_manifest(copy, PrepareConfig(val_fraction=fraction, sync=False))
    assert sum(v["split"] == "val" for v in manifest["videos"]) == 1
    assert write_manifest(copy, STAGE_I)["totals"]["val"]["videos"] == 0  # --val-fraction 0: none, as asked


def test_parallel_workers_share_the_cores():
    from keras_speech2vid.data.prepare import worker_threads_env

    assert worker_threads_env(2, cpus=2) == {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
                                             "OMP_NUM_THREADS": "1"}
    assert worker_threads_env(4, cpus=16)["TF_NUM_INTRAOP_THREADS"] == "4"
    assert worker_threads_env(8, cpus=2)["OMP_NUM_THREADS"] == "1"  # never 0
