"""The canonical face geometry, in one place and NumPy only (no dlib): sizes, landmarks, mouth boxes.

Coordinates are 0-based pixel centres. Two image sizes occur: the aligned face (``FACE_SIZE`` 112) and
the generator's output (``TARGET_SIZE`` 109), which is the crop [1:110, 1:110] of the 112 face
(spec §4.6): output pixel (r, c) is aligned pixel (r + 1, c + 1). Functions take the size as an int.

Landmark indices are dlib's 68 points, 0-based: jaw 0–16, brows 17–26, nose 27–35, eyes 36–47,
mouth 48–67 (outer lip 48–59, inner lip 60–67).
"""

from __future__ import annotations

import functools
import importlib.resources
import json

import numpy as np

CANVAS_SIZE = 240
CROP_START = 21  # 0-based first canvas row/col of the crop (MATLAB imcrop [22 22 196 196])
CROP_SIZE = 197
FACE_SIZE = 112
TARGET_SIZE = 109
TARGET_OFFSET = 1  # output pixel (r, c) <-> aligned-112 pixel (r + 1, c + 1)  (spec §4.6)
FILL_VALUE = 110
SIZES = (FACE_SIZE, TARGET_SIZE)

ALIGN_INDICES = np.arange(27, 48)  # nose bridge 27–30, lower nose 31–35, eyes 36–47 (spec §4.2)
MOUTH_INDICES = np.arange(48, 68)
LEFT_EYE = np.arange(36, 42)
RIGHT_EYE = np.arange(42, 48)
# (upper, lower) inner-lip pairs: landmarks 62/68, 63/67, 64/66 (1-based), as 68-point indices ...
INNER_LIP_PAIRS_68 = ((61, 67), (62, 66), (63, 65))
# ... and as indices among the 20 mouth points 48..67 (the mouth expert's outputs)
INNER_LIP_PAIRS_MOUTH = tuple((u - 48, lo - 48) for u, lo in INNER_LIP_PAIRS_68)

MOUTH_MARGIN = 0.25  # mouth box margin, in canonical mouth widths
# fixed boxes (top, bottom, left, right; bottom/right exclusive)
EXPERT_BOX_109 = (56, 104, 22, 94)  # the mouth expert's lower face, in the 109 output
SYNC_BOX_112 = (56, 104, 16, 96)  # SyncNet's lower face, in the aligned 112 face (48 × 80)


def check_size(size: int) -> int:
    if size not in SIZES:
        raise ValueError(f"size must be {FACE_SIZE} or {TARGET_SIZE}. Received: size={size!r}")
    return int(size)


def box_at(box, size: int, box_size: int = FACE_SIZE) -> tuple[int, int, int, int]:
    """A box given in `box_size` coordinates, in `size` coordinates (112 ↔ 109: a shift by 1)."""
    shift = (check_size(box_size) == FACE_SIZE) - (check_size(size) == FACE_SIZE)
    return tuple(int(v) - shift * TARGET_OFFSET for v in box)


@functools.lru_cache(maxsize=1)
def _canonical_json() -> dict:
    ref = importlib.resources.files("keras_speech2vid") / "assets" / "canonical_landmarks.json"
    return json.loads(ref.read_text(encoding="utf-8"))


def canonical_landmarks(space: str | int = "canvas") -> np.ndarray:
    """The average face of the original (avglm.mat): dlib points 0..66 as a (67, 2) float64 array.

    Args:
      space: ``"canvas"``: MATLAB 1-based coordinates on the 240 canvas, as stored (integers);
        ``112``: 0-based pixel-centre coordinates in the aligned face, ``v112 = (112/197)·(v − 21.5) − 0.5``;
        ``109``: the same in the output crop (minus 1).
    """
    points = np.array([[p["x"], p["y"]] for p in _canonical_json()["landmarks"]], dtype=np.float64)
    if space == "canvas":
        return points
    if space in SIZES:
        return FACE_SIZE / CROP_SIZE * (points - 21.5) - 0.5 - (TARGET_OFFSET if space == TARGET_SIZE else 0)
    raise ValueError(f"space must be 'canvas', {FACE_SIZE} or {TARGET_SIZE}. Received: space={space!r}")


def mouth_box(margin: float = MOUTH_MARGIN, size: int = TARGET_SIZE) -> tuple[int, int, int, int]:
    """The mouth region ``(top, bottom, left, right)`` (bottom/right exclusive) in 109 or 112 pixels.

    The bounding box of the canonical mouth landmarks 48..66 in 112 coordinates, widened by ``margin``
    times the canonical mouth width on each side, rounded outwards and clipped to the image; in 109
    coordinates it is shifted by −1 (the 109 crop starts at pixel 1 of the 112 face).
    """
    check_size(size)
    if not margin >= 0:
        raise ValueError(f"margin must be >= 0. Received: margin={margin!r}")
    points = canonical_landmarks(FACE_SIZE)[48:67]
    lo, hi = points.min(axis=0), points.max(axis=0)
    pad = margin * (hi[0] - lo[0])
    left, top = np.floor(lo - pad).astype(int)
    right, bottom = (np.ceil(hi + pad).astype(int) + 1)
    top, bottom, left, right = box_at((top, bottom, left, right), size)
    clip = lambda v: int(min(max(v, 0), size))  # noqa: E731
    return clip(top), clip(bottom), clip(left), clip(right)


def lower_mouth_box(margin: float = MOUTH_MARGIN, size: int = TARGET_SIZE) -> tuple[int, int, int, int]:
    """`mouth_box` from the canonical upper inner lip (landmarks 61..63, rounded down) downwards.

    It covers the lower lip, the opening and the chin, and leaves the upper lip and the corners.
    """
    top, bottom, left, right = mouth_box(margin, size)
    upper_lip = int(np.floor(canonical_landmarks(FACE_SIZE)[61:64, 1].mean()))
    return box_at((upper_lip,), size)[0], bottom, left, right
