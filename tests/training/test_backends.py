"""The TF loop and the JAX step share one loss: same batch, weights and TrainConfig → same loss and gradients."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT

TERMS = ["plain", "mouth", "leak", "shape"]
pytestmark = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX not installed (the [jax] extra)")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    from keras_speech2vid.models import build_generator, build_mouth_expert

    work = tmp_path_factory.mktemp("backends")
    rng = np.random.default_rng(0)
    model, expert = build_generator("tiny"), build_mouth_expert(109, widths=(4, 4, 4, 4), hidden=8)
    weights = {f"g/{v.path}": rng.normal(0, 0.1, v.shape).astype("float32") if len(v.shape) > 1 else
               np.asarray(v.numpy()) for v in model.weights}
    weights.update({f"e/{v.path}": np.asarray(v.numpy()) for v in expert.weights})
    np.savez(work / "weights.npz", **weights)
    np.savez(work / "batch.npz", mfcc=rng.normal(0, 5, (3, 12, 35, 1)).astype("float32"),
             identity=rng.uniform(size=(3, 112, 112, 15)).astype("float32"),
             target=rng.uniform(size=(3, 109, 109, 3)).astype("float32"))
    for backend in ("tensorflow", "jax"):
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        subprocess.run([sys.executable, "-m", "tests.training.backend_step", str(work), *TERMS], cwd=ROOT, env=env,
                       check=True, capture_output=True)
    return work


@pytest.mark.parametrize("terms", TERMS)
def test_same_loss_and_gradients(results, terms):
    tf_out, jax_out = (dict(np.load(results / f"{b}_{terms}.npz")) for b in ("tensorflow", "jax"))
    assert set(tf_out) == set(jax_out) and len(tf_out) > 10
    np.testing.assert_allclose(jax_out["loss"], tf_out["loss"], rtol=1e-5)
    # relative to the largest gradient: a bias followed by BatchNorm has a gradient of ~0 (rounding noise)
    scale = max(np.abs(v).max() for k, v in tf_out.items() if k != "loss")
    for name in tf_out:
        np.testing.assert_allclose(jax_out[name] / scale, tf_out[name] / scale, atol=1e-4, err_msg=name)
    if terms != "plain":  # each term changes the loss: the test would see a term that was dropped
        plain = dict(np.load(results / "tensorflow_plain.npz"))
        assert abs(float(tf_out["loss"]) - float(plain["loss"])) > 1e-6
