"""Face detection: the dlib HOG frontal detector, as the original `face_detector.py` runs it (spec §4.1).

Boxes are ``(left, top, right, bottom)`` in frame pixels with right/bottom exclusive (``width = right - left``),
as float32 arrays. dlib's own rectangles are inclusive; the conversion happens here and nowhere else.

A *box hint* (the ``box=`` argument here, in `align_images` and in the video tracker) follows Wav2Lip's
``--box top bottom left right`` order instead, because that is what users type on the command line.

Policy with several faces (`select_face`):
  * no hint: the detection with the largest area;
  * a hint: the detection with the largest IoU with the hint; if no detection overlaps it (IoU 0), or there is
    no detection at all, the hint itself is used as the face box (score NaN). This lets a user force a face
    the detector misses, which is also what Wav2Lip's ``--box`` does.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from keras_speech2vid.errors import ImageError, NoFaceError

UPSAMPLE = 1  # spec §4.1: one upsampling pass
MIN_SCORE = 0.25  # spec §4.1: keep detections with score >= 0.25
# The HOG window is 80x80 and one upsampling pass halves the smallest detectable face to 40 px;
# a smaller image cannot hold a detectable face.
MIN_IMAGE_SIDE = 40


@dataclasses.dataclass(frozen=True)
class Detection:
    """One detected face: box edges in frame pixels (right/bottom exclusive) and the detector score."""

    left: float
    top: float
    right: float
    bottom: float
    score: float = math.nan

    @property
    def xyxy(self) -> np.ndarray:
        """The box as a float32 array ``[left, top, right, bottom]``."""
        return np.array([self.left, self.top, self.right, self.bottom], dtype=np.float32)

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    @classmethod
    def from_xyxy(cls, xyxy, score: float = math.nan) -> "Detection":
        left, top, right, bottom = (float(v) for v in np.asarray(xyxy, dtype=np.float64).reshape(4))
        return cls(left, top, right, bottom, float(score))


@functools.lru_cache(maxsize=1)
def get_detector():
    """The dlib HOG frontal face detector, created once on first use."""
    import dlib

    return dlib.get_frontal_face_detector()


def to_dlib_rect(box):
    """A dlib.rectangle (inclusive edges) from a ``[left, top, right, bottom]`` box (exclusive edges)."""
    import dlib

    left, top, right, bottom = (int(round(float(v))) for v in np.asarray(box).reshape(4))
    return dlib.rectangle(left, top, max(left, right - 1), max(top, bottom - 1))


def no_box(box) -> bool:
    """None, or Wav2Lip's ``-1 -1 -1 -1``: no box hint."""
    return box is None or (len(box) == 4 and all(float(v) == -1 for v in box))


def box_from_tblr(box) -> np.ndarray:
    """Convert a Wav2Lip-style hint ``(top, bottom, left, right)`` to ``[left, top, right, bottom]``."""
    values = [float(v) for v in box]
    if len(values) != 4:
        raise ValueError(f"box needs 4 values (top, bottom, left, right). Received: box={box!r}")
    top, bottom, left, right = values
    if bottom <= top or right <= left:
        raise ValueError(f"box must have bottom > top and right > left (order: top bottom left right). "
                         f"Received: box={box!r}")
    return np.array([left, top, right, bottom], dtype=np.float32)


def check_box(box, width: int, height: int, source: str = "image") -> None:
    """Refuse a box hint that misses a `width`×`height` frame (no hint, or Wav2Lip's -1s, passes)."""
    if no_box(box):
        return
    left, top, right, bottom = box_from_tblr(box)
    if right <= 0 or bottom <= 0 or left >= width or top >= height:
        raise ImageError(f"{source}: the box (top bottom left right) {' '.join(f'{float(v):g}' for v in box)} lies "
                         f"outside the {width}×{height} image")


def iou(a, b) -> float:
    """Intersection over union of two ``[left, top, right, bottom]`` boxes."""
    a = np.asarray(a, dtype=np.float64).reshape(4)
    b = np.asarray(b, dtype=np.float64).reshape(4)
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def as_gray(image: np.ndarray) -> np.ndarray:
    """A uint8 (H, W) luminance image from RGB/RGBA/gray uint8 or float in [0, 1]."""
    import cv2

    image = as_uint8(image)
    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[:, :, 0]
    return cv2.cvtColor(np.ascontiguousarray(image[:, :, :3]), cv2.COLOR_RGB2GRAY)


def as_rgb(image: np.ndarray) -> np.ndarray:
    """A uint8 (H, W, 3) RGB image from gray/RGB/RGBA uint8 or float in [0, 1]."""
    image = as_uint8(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image[:, :, :3]


def as_uint8(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ValueError(f"expected an image of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4). "
                         f"Received: shape={image.shape}")
    if image.dtype == np.uint8:
        return image
    if np.issubdtype(image.dtype, np.floating):  # the package convention: float images are in [0, 1]
        return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    raise ValueError(f"expected a uint8 or float image. Received: dtype={image.dtype}")


def check_image_size(image: np.ndarray, source: str = "image") -> None:
    """Raise `ImageError` when the image is too small to hold a detectable face."""
    h, w = np.asarray(image).shape[:2]
    if min(h, w) < MIN_IMAGE_SIDE:
        raise ImageError(f"{source}: image is {w}x{h} pixels, too small for face detection "
                         f"(need at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE})")


def detect_faces(image: np.ndarray, upsample: int = UPSAMPLE, min_score: float = MIN_SCORE,
                 max_side: int | None = None) -> list[Detection]:
    """All faces the dlib HOG detector finds, largest first.

    Args:
      image: RGB or gray image, uint8 (or float in [0, 1]).
      upsample: dlib's number of upsampling passes (1 in the original; each pass doubles the cost
        and halves the smallest detectable face, 80 px at 0).
      min_score: keep detections whose score is at least this (0.25 in the original).
      max_side: if set, detect on a copy shrunk (INTER_AREA) so that its longer side is at most this;
        the boxes are mapped back to `image` pixels. This is how the video tracker stays fast.

    Returns:
      `Detection`s sorted by decreasing area; an empty list when there is no face.
    """
    import cv2

    gray = as_gray(image)
    if upsample < 0:
        raise ValueError(f"upsample must be >= 0. Received: upsample={upsample}")
    scale = 1.0
    if max_side is not None and max(gray.shape) > max_side:
        scale = max_side / max(gray.shape)
        size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        scale = gray.shape[1] / image.shape[1]
    rects, scores, _ = get_detector().run(np.ascontiguousarray(gray), int(upsample), min(0.0, float(min_score)))
    found = []
    for rect, score in zip(rects, scores):
        if score < min_score:
            continue
        # dlib rectangles are inclusive: right = left + width - 1
        found.append(Detection(rect.left() / scale, rect.top() / scale, (rect.right() + 1) / scale,
                               (rect.bottom() + 1) / scale, float(score)))
    found.sort(key=lambda d: d.area, reverse=True)
    return found


def select_face(detections: list[Detection], box=None, source: str = "image") -> Detection:
    """Choose one face by the policy in the module docstring.

    Args:
      detections: the output of `detect_faces`.
      box: optional hint ``(top, bottom, left, right)`` (Wav2Lip order).
      source: a name for error messages (usually the file path).

    Raises:
      NoFaceError: there is no detection and no hint.
    """
    if not no_box(box):
        hint = box_from_tblr(box)
        if detections:
            overlaps = [iou(d.xyxy, hint) for d in detections]
            best = int(np.argmax(overlaps))
            if overlaps[best] > 0.0:
                return detections[best]
        return Detection.from_xyxy(hint)
    if not detections:
        raise NoFaceError(f"{source}: no face found")
    return max(detections, key=lambda d: d.area)


def find_face(image: np.ndarray, box=None, source: str = "image", upsample: int = UPSAMPLE,
              min_score: float = MIN_SCORE) -> Detection:
    """Detect and select the one face of a still image.

    Raises:
      ImageError: the image is smaller than `MIN_IMAGE_SIDE` pixels on a side.
      NoFaceError: no face was found (and no `box` hint was given); the message names `source`.
    """
    check_image_size(image, source)
    check_box(box, image.shape[1], image.shape[0], source)
    return select_face(detect_faces(image, upsample=upsample, min_score=min_score), box=box, source=source)
