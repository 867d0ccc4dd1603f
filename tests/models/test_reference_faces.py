"""The authors' own aligned identity images (faceimg.mat) through the paper-sized networks."""

import numpy as np

from keras_speech2vid import build_deblurrer, build_generator
from keras_speech2vid.io import read_image
from tests.conftest import DATA, shared_path


def faceimg1():
    """Identity 1 of faceimg.mat as (112, 112, 15) float in [0, 1], channels [R1 G1 B1 R2 …]."""
    images = [read_image(DATA / "faceimg1" / f"faceimg1_{k}.png") for k in range(1, 6)]
    return np.concatenate(images, axis=-1).astype(np.float32) / 255.0


def test_fixture_pngs_equal_faceimg_mat():
    from scipy.io import loadmat

    cells = loadmat(shared_path("data/reference/joonson-yousaidthat/data/faceimg.mat"))
    arrays = [np.asarray(a) for a in np.asarray(next(v for k, v in cells.items() if not k.startswith("__"))).ravel()]
    assert len(arrays) == 6 and arrays[0].shape == (112, 112, 15)
    np.testing.assert_array_equal(arrays[0] / 255.0, faceimg1())


def test_authors_faces_through_paper_generator_and_deblurrer():
    identity = faceimg1()[None]
    rng = np.random.default_rng(0)
    mfcc = rng.normal(scale=9.0, size=(4, 12, 35, 1)).astype(np.float32)  # spec: raw MFCC std ≈ 7–11
    generator = build_generator("paper")
    frames = np.asarray(generator({"mfcc": mfcc, "identity": np.repeat(identity, 4, axis=0)})["frame"])
    assert frames.shape == (4, 109, 109, 3)
    assert np.isfinite(frames).all() and frames.min() >= 0.0 and frames.max() <= 1.0
    deblurred = np.asarray(build_deblurrer("paper")(frames))
    assert deblurred.shape == (4, 109, 109, 3) and np.isfinite(deblurred).all()
    # untrained but not degenerate: different audio gives different frames
    assert np.abs(frames[0] - frames[1]).max() > 0
