"""Issue 21.4: SIGINT, SIGTERM and SIGKILL during generate, redub and prepare leave nothing that looks finished,
and a re-run succeeds. (A temporary is named `.NAME.XXXX.part`: no player takes it for a finished file.)"""

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import CLIPS, DATA, ROOT

SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}


def command(name, out, weights):
    if name == "generate":
        return ["generate", "--face", str(DATA / "obama.jpg"), "--audio", str(DATA / "tmp.wav"), "--outfile",
                str(out / "out.mp4"), "--weights", str(weights), "--full-frame"]
    if name == "redub":
        return ["redub", "--video", str(DATA / "vox2_00086_man_suit_red_bg.mp4"), "--audio", str(DATA / "tmp.wav"),
                "--outfile", str(out / "out.mp4"), "--weights", str(weights)]
    return ["prepare", *map(str, CLIPS), "--out", str(out / "data"), "--no-sync"]


def started(name, out) -> bool:
    """The work is under way: a temporary of the mp4 exists, or prepare has finished a first video."""
    if name == "prepare":
        return any((out / "data" / "videos").glob("*.json")) if (out / "data" / "videos").exists() else False
    return any(out.glob(".out.mp4.*"))


def finished(name, out) -> list:
    """What would look like a finished output."""
    if name == "prepare":
        return [p for p in (out / "data").glob("manifest.json")] + [
            p for p in (out / "data").rglob("*") if p.name.endswith(".tfrecord") and p.name.startswith(".")]
    return [p for p in out.iterdir() if p.suffix == ".mp4"]


@pytest.mark.parametrize("sig", sorted(SIGNALS))
@pytest.mark.parametrize("name", ["generate", "redub", "prepare"])
def test_an_interrupted_run_leaves_nothing_finished_and_a_rerun_succeeds(name, sig, tiny_weights, tmp_path):
    argv = [sys.executable, "-m", "keras_speech2vid.cli", *command(name, tmp_path, tiny_weights)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while time.time() < deadline and not started(name, tmp_path) and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "finished before it could be interrupted: " + proc.stderr.read()[-500:]
    proc.send_signal(SIGNALS[sig])
    err = proc.communicate(timeout=120)[1]
    if sig == "SIGKILL":
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 130 and "interrupted" in err, (proc.returncode, err[-500:])
    assert finished(name, tmp_path) == []
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and p.name.startswith(".")]
    if sig != "SIGKILL":  # Ctrl-C and SIGTERM clean up; after SIGKILL only `.part` temporaries may stay
        assert leftovers == [], leftovers
    assert all(p.suffix == ".part" or p.name.endswith(".tmp") for p in leftovers), leftovers
    again = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    if name == "prepare":
        assert (tmp_path / "data" / "manifest.json").is_file()
    else:
        assert [p.name for p in finished(name, tmp_path)] == ["out.mp4"]


class _SignalsInAFinaliser:
    """Sends SIGINT to this process from `__del__`: the handler then runs inside the finaliser, where
    Python prints "Exception ignored" and drops the KeyboardInterrupt (the CI failure of redub-SIGINT)."""

    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(10_000):  # bytecode for the handler to run in, still inside __del__
            pass


def test_an_interrupt_dropped_inside_a_finaliser_still_stops_the_output(tiny_weights, tmp_path, monkeypatch):
    from keras_speech2vid import cli, io

    dropped = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: dropped.append(u.exc_type))
    real_write = io.VideoWriter.write

    def write(self, frame):
        if self.frames_written == 3:
            _SignalsInAFinaliser()  # collected at once: the interrupt lands in __del__
        real_write(self, frame)

    monkeypatch.setattr(io.VideoWriter, "write", write)
    rc = cli.main(command("generate", tmp_path, tiny_weights))
    assert dropped == [KeyboardInterrupt]  # Python really did drop the interrupt
    assert rc == 130
    assert finished("generate", tmp_path) == [] and list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    assert cli.main(command("generate", tmp_path, tiny_weights)) == 0  # the flag does not outlive main
    assert [p.name for p in finished("generate", tmp_path)] == ["out.mp4"]
