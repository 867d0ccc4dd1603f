"""The shared test kit: random inputs for a model, and the round-trip assertion every builder must pass."""

import keras
import numpy as np


def random_inputs(model: keras.Model, batch: int = 2, seed: int = 0):
    """Uniform [0, 1) float32 inputs of the model's input shapes (a dict, a list or one array)."""
    rng = np.random.default_rng(seed)
    if isinstance(model.input, dict):
        return {k: rng.uniform(size=(batch, *t.shape[1:])).astype(np.float32) for k, t in model.input.items()}
    xs = [rng.uniform(size=(batch, *t.shape[1:])).astype(np.float32) for t in model.inputs]
    return xs if len(xs) > 1 else xs[0]


def outputs(model: keras.Model, xs) -> list[np.ndarray]:
    """The model's outputs on xs as a list of arrays (dict outputs in their order)."""
    out = model(xs)
    out = list(out.values()) if isinstance(out, dict) else out
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


def assert_round_trips(model: keras.Model, tmp_path, seed: int = 0) -> None:
    """get_config/from_config gives the same graph, and a `.keras` file reloads with safe_mode to equal outputs."""
    xs = random_inputs(model, seed=seed)
    clone = keras.Model.from_config(model.get_config())
    assert [w.shape for w in clone.weights] == [w.shape for w in model.weights]
    clone.set_weights(model.get_weights())
    for a, b in zip(outputs(model, xs), outputs(clone, xs)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    for a, b in zip(outputs(model, xs), outputs(loaded, xs)):
        np.testing.assert_array_equal(a, b)


def run_under_jax(code: str, timeout: int = 300) -> str:
    """Run Python `code` in a child process on Keras's JAX backend (CPU) from the repository root; its stdout."""
    import os
    import subprocess
    import sys

    import pytest

    from tests.conftest import ROOT

    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    run = subprocess.run([sys.executable, "-c", "import keras; assert keras.backend.backend() == 'jax'; " + code],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


def execute_notebook(path, parameters: dict, cwd, timeout: int = 900, skip_tag: str = "colab"):
    """Run a notebook of colab/ in a local Python kernel, as CI does: cells tagged `skip_tag` (Colab's
    clone, upload and live panels) are left out, `parameters` replace the cell tagged "parameters", and
    every `!command` must exit 0 (IPython itself only prints a failing one). Returns the executed notebook."""
    import nbclient
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    cells = []
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type != "code" or skip_tag in tags:
            continue
        if "parameters" in tags:
            cell.source = "\n".join(f"{k} = {v!r}" for k, v in parameters.items())
        lines = []
        for line in cell.source.splitlines():
            lines.append(line)
            if line.startswith("!"):
                lines.append(f"assert _exit_code == 0, {('failed (exit %d): ' + line)!r} % _exit_code")
        cell.source = "\n".join(lines)
        cells.append(cell)
    nb.cells = cells
    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return nb
