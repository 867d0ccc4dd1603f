"""Shared fixtures: tiny models with non-trivial BatchNorm statistics, one SavedModel export of them,
and the serving client (a script, imported from its path)."""

import importlib.util
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
TOL = 1e-5


def randomize(model, seed=0):
    """Give every BatchNorm non-trivial statistics, so that inference-mode BN is tested too."""
    rng = np.random.default_rng(seed)
    for v in model.non_trainable_variables + [w for w in model.trainable_variables if "bn" in w.path]:
        if v.path.endswith(("moving_variance", "gamma")):
            v.assign(rng.uniform(0.5, 1.5, v.shape).astype("float32"))
        else:
            v.assign(rng.normal(0.0, 0.1, v.shape).astype("float32"))
    return model


def make_models(preset="tiny", seed=0):
    import keras

    from keras_speech2vid.models import build_deblurrer, build_generator

    keras.utils.set_random_seed(seed)
    deblurrer = build_deblurrer(preset)
    rng = np.random.default_rng(seed)
    for v in deblurrer.weights:  # the residual conv starts at zero (identity deblurrer): give it weights
        if not np.any(v.numpy()):
            v.assign(rng.normal(0.0, 0.05, v.shape).astype("float32"))
    return randomize(build_generator(preset), seed), deblurrer


def keras_frames(generator, deblurrer, mfcc, identity):
    """The in-memory reference: generator then deblurrer, the identity repeated over the audio batch (`mfcc`:
    MFCC or, for a whisper generator, Whisper windows)."""
    if identity.shape[0] == 1 and mfcc.shape[0] != 1:
        identity = np.repeat(identity, mfcc.shape[0], axis=0)
    from keras_speech2vid.models.generator import audio_front_end

    frames = generator({audio_front_end(generator): mfcc, "identity": identity}, training=False)["frame"]
    if deblurrer is not None:
        frames = deblurrer(frames, training=False)
    return np.asarray(frames)


def sample_inputs(batch, channels=15, seed=0):
    rng = np.random.default_rng(seed)
    mfcc = rng.normal(0.0, 10.0, (batch, 12, 35, 1)).astype(np.float32)
    mfcc[:, :, :2] = 0.0  # silent columns (SilenceMask path)
    identity = rng.uniform(0.0, 1.0, (batch, 112, 112, channels)).astype(np.float32)
    return mfcc, identity


@pytest.fixture(scope="session")
def tiny_models():
    return make_models("tiny")


@pytest.fixture(scope="session")
def tiny_export(tiny_models, tmp_path_factory):
    from keras_speech2vid.export import export_saved_model

    generator, deblurrer = tiny_models
    return export_saved_model(generator, tmp_path_factory.mktemp("export"), deblurrer, version=1)


@pytest.fixture(scope="session")
def tiny_loaded(tiny_export):
    import tensorflow as tf

    return tf.saved_model.load(str(tiny_export))


@pytest.fixture(scope="session")
def client():
    spec = importlib.util.spec_from_file_location("speech2vid_serving_client", ROOT / "serving" / "client.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
