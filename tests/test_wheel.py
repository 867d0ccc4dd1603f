"""Issue 22: a built wheel carries the bundled weights. It is installed into a fresh virtual environment
(the dependencies come from this one: --system-site-packages, the wheel itself with --no-deps) and
`speech2vid demo` runs from a folder with no source tree, printing the README's line."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.test_demo import check_demo_line


def _run(argv, cwd, env=None, timeout=600):
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (argv, done.stderr[-2000:])
    return done.stdout


@pytest.mark.slow  # about 40 s; .ci/run runs it
def test_a_wheel_installed_without_the_source_tree_runs_the_demo(tmp_path):
    wheels, venv, work = tmp_path / "wheels", tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    _run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q",
          "-w", str(wheels)], cwd=tmp_path)
    (wheel,) = wheels.glob("keras_speech2vid-*.whl")
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], cwd=tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("SPEECH2VID_WEIGHTS", "PYTHONPATH")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    where = _run([str(python), "-c", "import keras_speech2vid.weights as w; print(w.BUNDLED_WEIGHTS)"], work, env)
    assert where.strip().startswith(str(venv)) and where.strip().endswith("bundled_weights"), where
    out = work / "demo.mp4"
    printed = _run([str(venv / "bin" / "speech2vid"), "demo", "--outfile", str(out)], work, env)
    check_demo_line(printed.strip().splitlines()[-1], out)

    from keras_speech2vid import io

    assert sum(1 for _ in io.iter_frames(out)) == 128
