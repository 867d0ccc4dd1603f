"""Fixtures: a tiny random Speech2Vid weights folder (no trained weights are needed to test the protocol)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data"
CLIPS = [DATA / "grid_bbaf2n_man_denim.mpg", DATA / "grid_lbbc2a_woman_pink_top.mpg",
         DATA / "vox2_00086_man_suit_red_bg.mp4"]


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """A weights folder with a tiny random 5-image generator and a tiny deblurrer (save_weights_dir)."""
    import keras

    from keras_speech2vid.config import PRESETS
    from keras_speech2vid.models import build_deblurrer, build_generator
    from keras_speech2vid.weights import save_weights_dir

    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("weights")
    save_weights_dir(folder, {"generator": ("generator", build_generator("tiny"), PRESETS["tiny"]),
                              "deblurrer": ("deblurrer", build_deblurrer("tiny"), PRESETS["tiny"])})
    return folder
