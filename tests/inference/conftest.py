"""Shared fixtures: tiny random Speech2Vid models saved as a weights folder (no trained weights exist yet)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from keras_speech2vid.config import PRESETS  # noqa: E402

TINY_1IMG = PRESETS["tiny"].replace(name="tiny_1img", identity_images=1)


def tiny_models(seed=0):
    import keras

    from keras_speech2vid.models import build_deblurrer, build_generator

    keras.utils.set_random_seed(seed)
    return {
        "generator": ("generator", build_generator("tiny"), PRESETS["tiny"]),
        "generator_1img": ("generator", build_generator(TINY_1IMG), TINY_1IMG),
        "deblurrer": ("deblurrer", build_deblurrer("tiny"), PRESETS["tiny"]),
    }


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """A compact weights folder with a 5-image and a 1-image tiny generator and a tiny deblurrer."""
    from keras_speech2vid.weights import save_weights_dir

    folder = tmp_path_factory.mktemp("weights")
    save_weights_dir(folder, tiny_models())
    return folder


@pytest.fixture(scope="session")
def s2v(tiny_weights):
    from keras_speech2vid import Speech2Vid

    return Speech2Vid.load(tiny_weights, batch_size=8)


@pytest.fixture(scope="session")
def faceimg1(data_dir_session):
    return sorted(str(p) for p in (data_dir_session / "faceimg1").glob("*.png"))


@pytest.fixture(scope="session")
def data_dir_session():
    from pathlib import Path

    return Path(__file__).resolve().parents[1] / "data"


def mean_abs(a, b, mask=None):
    d = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    if mask is not None:
        d = d[np.asarray(mask, bool)]
    return float(d.mean())
