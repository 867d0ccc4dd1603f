"""`speech2vid train --backend jax`: trains on array chunks in a process that cannot import TensorFlow, resumes
after kill -9 and after a stop, and leaves weights that `speech2vid generate` loads."""

import csv
import importlib.util
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from keras_speech2vid.cli import main
from keras_speech2vid.errors import TrainingError
from keras_speech2vid.training.run import start_run
from tests.conftest import DATA, ROOT

pytestmark = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX not installed (the [jax] extra)")
TINY = ["--preset", "tiny", "--batch-size", "4", "--optimizer", "adam", "--lr", "1e-3", "--seed", "3"]


def cli_without_tf(*args, **popen):
    """The CLI as on the GPU machine: KERAS_BACKEND=jax and TensorFlow unimportable."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "tests.no_tensorflow", *map(str, args)]
    if popen:
        return subprocess.Popen(command, cwd=ROOT, env=env, **popen)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def log_rows(run):
    with open(run / "log.csv") as f:
        return list(csv.DictReader(f))


def final_weights(run):
    with np.load(sorted((run / "checkpoints").glob("state-*.npz"))[-1]) as d:
        return {k: d[k] for k in d.files if k.startswith("t")}


@pytest.fixture(scope="module")
def unbroken(fixture_arrays, tmp_path_factory):
    run = tmp_path_factory.mktemp("unbroken")
    done = cli_without_tf("train", "--backend", "jax", "--data", fixture_arrays[0], "--out", run, "--epochs", "2",
                          "--steps-per-epoch", "6", "--checkpoint-every", "3", *TINY)
    assert done.returncode == 0, done.stderr[-2000:]
    return run, done


def test_trains_without_tensorflow_and_validation_loss_falls(unbroken):
    run, done = unbroken
    assert "step 12, 2 epochs" in done.stdout
    rows = log_rows(run)
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert float(rows[-1]["val_loss"]) < float(rows[0]["val_loss"])  # epoch 0: the untrained model
    assert (run / "generator.keras").is_file()


def test_a_stopped_run_continues_to_the_same_weights(unbroken, fixture_arrays, tmp_path):
    common = ["train", "--backend", "jax", "--data", fixture_arrays[0], "--out", tmp_path, "--steps-per-epoch", "6",
              "--checkpoint-every", "3", *TINY]
    assert cli_without_tf(*common, "--epochs", "1").returncode == 0
    second = cli_without_tf(*common, "--epochs", "2", "--resume")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "Resuming generator" in second.stdout and "(step 6, epoch 2)" in second.stdout
    # batch k depends only on (seed, k): the same batches, so the same weights as the unbroken run
    ours, theirs = final_weights(tmp_path), final_weights(unbroken[0])
    assert set(ours) == set(theirs)
    for key in ours:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_resumes_after_kill_9(fixture_arrays, tmp_path):
    def args(steps):
        return ["train", "--backend", "jax", "--data", fixture_arrays[0], "--out", tmp_path, "--epochs", "1",
                "--steps-per-epoch", str(steps), "--checkpoint-every", "2", *TINY]

    proc = cli_without_tf(*args(400), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not list((tmp_path / "checkpoints").glob("state-*.npz")):
        time.sleep(0.2)
    time.sleep(0.5)  # likely mid-write of the next checkpoint
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = sorted((tmp_path / "checkpoints").glob("state-*.npz"))
    assert saved, "no checkpoint before the kill"
    step = int(saved[-1].stem.split("-")[1])
    assert not (tmp_path / "generator.keras").exists()  # nothing that looks finished
    again = cli_without_tf(*args(step + 4))  # the rest of a shorter epoch
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"Resuming generator from {saved[-1]} (step {step}, epoch 1)" in again.stdout
    assert f"step {step + 4}, 1 epochs" in again.stdout
    leftovers = [p.name for p in tmp_path.rglob("*") if p.name.startswith(".") or ".part" in p.name]
    assert not leftovers


def test_weights_come_back_in_small_files_and_generate_loads_them(unbroken, tmp_path):
    weights = tmp_path / "weights"
    packed = cli_without_tf("pack-weights", unbroken[0], "--out", weights, "--max-file-mib", "0.05")
    assert packed.returncode == 0, packed.stderr[-2000:]
    files = sorted(weights.glob("generator*.npz"))
    assert len(files) > 2 and all(f.stat().st_size <= 0.05 * 2**20 for f in files)
    out = tmp_path / "out.mp4"
    assert main(["generate", "--face", str(DATA / "obama.jpg"), "--audio", str(DATA / "tmp.wav"), "--outfile",
                 str(out), "--weights", str(weights), "--no-deblur"]) == 0
    from keras_speech2vid import io

    info = io.probe(out)
    assert abs(info.duration - 202880 / 16000) < 0.1  # tmp.wav's length


def test_each_driver_refuses_the_other_one_s_data_and_runs(prepared, fixture_arrays, unbroken, tmp_path):
    with pytest.raises(TrainingError, match="export-arrays"):
        start_run("generator", prepared[0], tmp_path, "tiny", backend="jax")
    with pytest.raises(TrainingError, match="array chunks are for --backend jax"):
        start_run("generator", fixture_arrays[0], tmp_path, "tiny")
    with pytest.raises(TrainingError, match="MFCC windows only"):
        start_run("generator", fixture_arrays[0], tmp_path, "whisper_tiny", backend="jax")
    with pytest.raises(TrainingError, match="trains the generator"):
        start_run("deblurrer", fixture_arrays[0], tmp_path, "tiny", backend="jax")
    with pytest.raises(TrainingError, match="jax driver"):  # a JAX run folder, continued by the TF driver
        start_run("generator", prepared[0], unbroken[0], "tiny")
    with pytest.raises(TrainingError, match="no checkpoint"):
        start_run("generator", prepared[0], tmp_path / "new", "tiny", resume=True)


def test_the_gpu_recipe_script_trains_and_packs_small_files(fixture_arrays, tmp_path):
    """weights/gpu_train.sh as on the GPU machine (here on CPU, TensorFlow blocked in every Python it starts)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("from tests.no_tensorflow import block\nblock()\n")
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": f"{site}:{ROOT}"}
    done = subprocess.run(["bash", str(ROOT / "weights" / "gpu_train.sh"), str(fixture_arrays[0]), "run", "out",
                           "--epochs", "1", "--steps-per-epoch", "2", *TINY],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "devices:" in done.stdout and "run: step 2, 1 epochs" in done.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["log.csv", "run.json", "weights"]
    from keras_speech2vid.weights import load_models

    assert load_models(tmp_path / "out" / "weights").generator is not None

