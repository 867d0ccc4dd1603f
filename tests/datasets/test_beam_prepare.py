"""`prepare` on Apache Beam (DirectRunner): the same records and manifest as the local path, failing
videos recorded, and a re-run after kill -9 that repeats no finished video."""

import gc
import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("apache_beam")

import tensorflow as tf  # noqa: E402

from keras_speech2vid.cli import main  # noqa: E402
from keras_speech2vid.data.beam_prepare import pipeline_options, prepare_beam  # noqa: E402
from keras_speech2vid.data.prepare import PrepareConfig  # noqa: E402
from tests.conftest import CLIPS, DATA, ROOT, VAL  # noqa: E402

STAGE_I = PrepareConfig(val_fraction=0.0, sync=False)  # as the `prepared` fixture
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def decoded_records(folder, manifest) -> dict:
    """{video id: [every track's features as Python lists]}: records compared by content, not bytes."""
    out = {}
    for v in manifest["videos"]:
        tracks = []
        for raw in tf.data.TFRecordDataset(str(folder / v["record"])):
            example = tf.train.Example.FromString(raw.numpy())
            tracks.append({k: list(getattr(f, f.WhichOneof("kind")).value)
                           for k, f in sorted(example.features.feature.items())})
        out[v["video_id"]] = tracks
    return out


def test_direct_runner_options():
    multi = pipeline_options("direct", 2, ["--job_name=x"]).get_all_options()
    assert (multi["runner"], multi["direct_running_mode"], multi["direct_num_workers"]) == \
        ("DirectRunner", "multi_processing", 2)
    assert multi["job_name"] == "x"
    assert pipeline_options("direct", 1).get_all_options()["direct_running_mode"] == "in_memory"
    assert pipeline_options("flink").get_all_options()["runner"] == "FlinkRunner"
    with pytest.raises(ValueError, match="runner must be one of"):
        pipeline_options("local")


@pytest.mark.slow  # run by .ci/run
def test_two_worker_direct_runner_gives_the_local_records_and_manifest(prepared, tmp_path):
    local, local_manifest = prepared
    inputs = CLIPS + [DATA / "obama.jpg", DATA / "transcript.mp3"]  # as `prepared`: two must be skipped
    before = dict(os.environ)
    manifest = prepare_beam(inputs, tmp_path, STAGE_I, runner="direct", workers=2, val_groups=VAL)
    assert dict(os.environ) == before  # the workers' thread settings do not stay in the driver
    assert manifest == local_manifest
    assert len(manifest["videos"]) == 3 and len(manifest["skipped"]) == 2
    assert decoded_records(tmp_path, manifest) == decoded_records(local, local_manifest)
    assert sorted(p.name for p in (tmp_path / "records").iterdir()) == sorted(f"{c.stem}.tfrecord" for c in CLIPS)


def test_staged_path_through_beam_filesystems_matches_local(prepared, tmp_path):
    """What a gs:// or s3:// DATA_DIR goes through (stage locally, upload, rename), on local folders."""
    local, local_manifest = prepared
    clip = CLIPS[2]
    manifest = prepare_beam([clip], tmp_path, STAGE_I, runner="direct", stage=True)
    [entry] = manifest["videos"]
    assert entry == {**next(v for v in local_manifest["videos"] if v["video_id"] == clip.stem), "split": "train"}
    assert decoded_records(tmp_path, manifest) == {clip.stem: decoded_records(local, local_manifest)[clip.stem]}
    assert not [p for p in tmp_path.rglob(".*")]  # no temporaries left


def test_a_corrupt_video_is_listed_and_fails_the_run_only_when_asked(tmp_path, capsys):
    bad = tmp_path / "in" / "broken.mp4"
    bad.parent.mkdir()
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    out = tmp_path / "data"
    args = ["prepare", str(bad), str(CLIPS[2]), "--out", str(out), "--runner", "direct", "--no-sync"]
    assert main(args) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert [v["video_id"] for v in manifest["videos"]] == [CLIPS[2].stem]
    [skipped] = manifest["skipped"]
    assert skipped["file"] == str(bad) and str(bad) in skipped["reason"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(args + ["--fail-on-error"])
    assert stop.value.code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "1 videos could not be prepared" in err and str(bad) in err


def test_beam_options_need_a_runner(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["prepare", str(CLIPS[2]), "--out", str(tmp_path / "d"), "--flink_master=localhost:8081"])
    assert stop.value.code == 2 and "unrecognized arguments: --flink_master" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def _snapshot(folder):
    return {p.relative_to(folder): (p.stat().st_mtime_ns, p.stat().st_ino)
            for sub in ("records", "videos") for p in (folder / sub).iterdir()}


@pytest.mark.slow  # run by .ci/run
def test_kill_9_midway_then_rerun_finishes_the_rest_and_repeats_nothing(tmp_path):
    out = tmp_path / "data"
    cmd = [sys.executable, "-m", "keras_speech2vid.cli", "prepare", *map(str, CLIPS), "--out", str(out),
           "--runner", "direct", "--workers", "2", "--no-sync"]
    child = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and not list((out / "videos").glob("*.json") if (out / "videos").exists() else []):
        assert child.poll() is None, child.stderr.read().decode()[-2000:]
        time.sleep(0.05)
    os.killpg(child.pid, signal.SIGKILL)  # the driver and its Beam workers
    child.wait()
    before = _snapshot(out)  # finished videos (and maybe a temporary of one in flight)
    finished = {p.stem for p in (out / "videos").glob("*.json")}
    assert 1 <= len(finished) < len(CLIPS)
    assert main(["prepare", *map(str, CLIPS), "--out", str(out), "--runner", "direct", "--no-sync"]) == 0
    after = _snapshot(out)
    for name, stamp in before.items():
        if not name.name.startswith("."):
            assert after[name] == stamp, f"{name} was redone"
    manifest = json.loads((out / "manifest.json").read_text())
    assert {v["video_id"] for v in manifest["videos"]} == {c.stem for c in CLIPS}
    assert sorted(p.name for p in (out / "records").iterdir()) == sorted(f"{c.stem}.tfrecord" for c in CLIPS)


class FakeStore:
    """A `fakestore://` scheme for Beam's FileSystems, kept in a local folder: the URL code path (listing,
    staging, uploads, manifest) without a network. Registered while the test runs (in-process runner)."""

    root = None

    @classmethod
    def make(cls):
        from apache_beam.io.localfilesystem import LocalFileSystem

        def local(url):  # LocalFileSystem's methods also call each other with local paths
            return str(cls.root) + "/" + url[len("fakestore://"):] if url.startswith("fakestore://") else url

        def wrap(name, paths_at=(0,)):
            def method(self, *args, **kwargs):
                args = list(args)
                for i in paths_at:
                    args[i] = [local(a) for a in args[i]] if isinstance(args[i], list) else local(args[i])
                return getattr(LocalFileSystem, name)(self, *args, **kwargs)
            return method

        def _list(self, prefix):
            from apache_beam.io.filesystem import FileMetadata

            for m in LocalFileSystem._list(self, local(prefix)):
                yield FileMetadata("fakestore://" + m.path[len(str(cls.root)) + 1:], m.size_in_bytes,
                                   m.last_updated_in_seconds)

        def metadata(self, url):
            from apache_beam.io.filesystem import FileMetadata

            m = LocalFileSystem.metadata(self, local(url))
            return FileMetadata(url, m.size_in_bytes, m.last_updated_in_seconds)

        methods = {name: wrap(name) for name in ("create", "open", "exists", "size", "delete", "mkdirs")}
        methods.update(copy=wrap("copy", (0, 1)), rename=wrap("rename", (0, 1)), _list=_list, metadata=metadata,
                       scheme=classmethod(lambda c: "fakestore"))
        return type("FakeStoreFileSystem", (LocalFileSystem,), methods)


def test_urls_for_inputs_and_data_dir_go_through_beams_filesystems(prepared, tmp_path):
    local, local_manifest = prepared
    store = FakeStore.make()
    FakeStore.root = tmp_path / "bucket"
    (FakeStore.root / "in" / "vox").mkdir(parents=True)
    clip = CLIPS[2]
    (FakeStore.root / "in" / "vox" / clip.name).write_bytes(clip.read_bytes())
    (FakeStore.root / "in" / "notes.txt").write_text("not a video")
    try:
        manifest = prepare_beam(["fakestore://in"], "fakestore://data", STAGE_I, runner="direct")
        [entry] = manifest["videos"]
        want = next(v for v in local_manifest["videos"] if v["video_id"] == clip.stem)
        assert entry == {**want, "file": f"fakestore://in/vox/{clip.name}"}
        data = FakeStore.root / "data"
        assert json.loads((data / "manifest.json").read_text()) == manifest
        assert decoded_records(data, manifest) == {clip.stem: decoded_records(local, local_manifest)[clip.stem]}
        stamps = _snapshot(data)
        prepare_beam(["fakestore://in"], "fakestore://data", STAGE_I, runner="direct")  # finished: nothing redone
        assert _snapshot(data) == stamps
        assert not [p for p in FakeStore.root.rglob(".*")]
    finally:
        del store  # a FileSystem subclass until collected: Beam finds filesystems by subclass
        gc.collect()


def test_a_url_without_its_filesystem_is_one_line(tmp_path, capsys):
    code = main(["prepare", str(CLIPS[2]), "--out", "nosuchscheme://bucket/data", "--runner", "direct", "--no-sync"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.endswith("nosuchscheme://bucket/data: no Beam filesystem for nosuchscheme://"), err


def test_without_beam_installed_the_runner_says_which_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "apache_beam", None)  # import fails as if not installed
    assert main(["prepare", str(CLIPS[2]), "--out", str(tmp_path / "d"), "--runner", "direct"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "keras_speech2vid[beam]" in err, err
