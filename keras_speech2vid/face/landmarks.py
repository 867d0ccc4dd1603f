"""The dlib 68-point shape predictor (iBUG 300-W layout), shipped by the `face-recognition-models` wheel.

Landmarks are float32 arrays of shape (68, 2): x = column, y = row, in dlib's 0-based pixel coordinates
(the convention the original alignment fits in, spec §4.1). Indices follow dlib: jaw 0–16, brows 17–26,
nose 27–35, eyes 36–47, mouth 48–67. The alignment uses 27..47 only (`ALIGN_INDICES`).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from keras_speech2vid.face.detect import as_gray, to_dlib_rect

NUM_LANDMARKS = 68
from keras_speech2vid.face.canonical import ALIGN_INDICES, MOUTH_INDICES  # noqa: E402,F401  (re-exported)
PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"


def predictor_path() -> Path:
    """Where `face-recognition-models` keeps the 68-point model.

    The package is located with importlib and never imported: its ``__init__`` needs pkg_resources.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the face-recognition-models package is not installed "
                                "(pip install face-recognition-models)")
    path = Path(spec.origin).parent / "models" / PREDICTOR_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: dlib 68-point landmark model missing from face-recognition-models")
    return path


@functools.lru_cache(maxsize=1)
def get_predictor():
    """The dlib 68-point shape predictor, loaded once on first use (about 1 s, 100 MB)."""
    import dlib

    return dlib.shape_predictor(str(predictor_path()))


def predict_landmarks(image: np.ndarray, box) -> np.ndarray:
    """The 68 landmarks of the face in `box`.

    Args:
      image: RGB or gray uint8 image (gray is used; pass gray to skip the conversion on every call).
      box: ``[left, top, right, bottom]`` face box (right/bottom exclusive), e.g. `Detection.xyxy`.

    Returns:
      (68, 2) float32, x/y in 0-based pixels of `image`.
    """
    shape = get_predictor()(np.ascontiguousarray(as_gray(image)), to_dlib_rect(box))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
