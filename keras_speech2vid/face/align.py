"""Similarity alignment of a face to the Speech2Vid 112×112 crop, exactly as the original (spec §4.2–4.4).

The pipeline (`baseface.m`, in 0-based pixels, spec §4.3):

  1. Fit a similarity (Umeyama / MATLAB ``procrustes`` with scaling, no reflection) from the detected
     landmarks 27..47 to the canonical landmarks (`canonical_landmarks`, 240-canvas, MATLAB 1-based).
  2. Warp the frame bilinearly onto the 240×240 canvas, fill 110 outside the frame, with the 1-pixel
     correction that comes from MATLAB's 1-based ``imtransform``:  o0 = A·(p0 + 1) + c − 1.
  3. Crop canvas rows/cols 21..217 (0-based, 197 px).
  4. Resize 197 → 112 with MATLAB ``imresize`` defaults: Keys bicubic (a = −0.5) with antialiasing,
     implemented here in numpy (`imresize`).

Steps 2 and 3 are done by one ``cv2.warpAffine`` straight into the 197×197 crop: the crop is an integer
translation of the canvas, so this is the same computation, not an approximation. The resize is two small
matrix products. Together they take well under 1 ms, so there is no separate "fast" path by default;
`warp_face(..., exact=False)` (one bilinear warpAffine straight to 112) exists for comparison only and
differs visibly when the face is downscaled (no antialiasing): see bench/bench_face.py.

A consequence of step 2 worth knowing: because the fit uses 0-based landmarks but the warp 1-based pixels,
the face lands one *source* pixel right and down of avglm's nominal positions, i.e. at
``canonical_landmarks(112) + M[:, :2] @ [1, 1]`` in the crop (1.2 px on obama.jpg, 1.0 px on a GRID
frame; less for high-resolution sources). We keep it: it is what the original's crops look like. The
re-detected landmarks of the authors' faceimg.mat crops sit 0.1/0.2 px (x/y) off the nominal positions on
average, 1.6 px RMS (tests/face/test_align.py).

Every aligned face comes with the 2×3 matrix that maps **frame pixels → 112-crop pixels** (0-based pixel
centres, column vectors: ``[x112, y112] = M @ [x, y, 1]``). Its inverse (`inverse_matrix`) maps the crop back
into the frame for paste-back (`warp_to_frame`). The generator's 109×109 output is the crop ``[1:110, 1:110]``
of the 112 face (spec §4.6): see `target_crop` and `target_matrix`.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from keras_speech2vid.errors import Speech2VidError
from keras_speech2vid.face.detect import (
    MIN_SCORE,
    UPSAMPLE,
    Detection,
    as_gray,
    as_rgb,
    detect_faces,
    find_face,
    iou,
)
from keras_speech2vid.face.canonical import (  # the geometry lives in face.canonical
    CROP_SIZE,
    CROP_START,
    FACE_SIZE,
    FILL_VALUE,
    TARGET_OFFSET,
    TARGET_SIZE,
    canonical_landmarks,
)
from keras_speech2vid.face.landmarks import ALIGN_INDICES, predict_landmarks

_S = FACE_SIZE / CROP_SIZE
# 197-crop pixel centres -> 112 pixel centres: x112 = (x197 + 0.5) * 112/197 - 0.5
_CROP_TO_FACE = np.array([[_S, 0.0, 0.5 * _S - 0.5], [0.0, _S, 0.5 * _S - 0.5]])


# ----------------------------------------------------------------------------------------------------------
# geometry


def similarity_fit(src, dst) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection) mapping src → dst.

    Umeyama (1991); the same fit as MATLAB ``procrustes(dst, src, 'scaling', true, 'reflection', false)``.

    Returns:
      (2, 3) float64 matrix M with ``dst ≈ M[:, :2] @ src + M[:, 2]``.
    """
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    if src.shape != dst.shape or len(src) < 2:
        raise ValueError(f"similarity_fit needs two equal sets of >= 2 points. "
                         f"Received: src {src.shape}, dst {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / len(src)
    u, d, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rot = u @ np.diag(sign) @ vt
    var_s = (xs ** 2).sum(1).mean()
    scale = float((d * sign).sum() / var_s) if var_s > 0 else 1.0
    m = np.empty((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def compose(outer, inner) -> np.ndarray:
    """The 2×3 matrix of ``outer ∘ inner`` (apply `inner` first)."""
    outer = np.asarray(outer, dtype=np.float64)
    inner = np.asarray(inner, dtype=np.float64)
    return np.hstack([outer[:, :2] @ inner[:, :2], (outer[:, :2] @ inner[:, 2] + outer[:, 2])[:, None]])


def inverse_matrix(matrix) -> np.ndarray:
    """Inverse of a 2×3 affine matrix (e.g. 112-crop pixels → frame pixels, for paste-back)."""
    m = np.asarray(matrix, dtype=np.float64)
    a_inv = np.linalg.inv(m[:, :2])
    return np.hstack([a_inv, (-a_inv @ m[:, 2])[:, None]])


def transform_points(matrix, points) -> np.ndarray:
    """Apply a 2×3 matrix to (N, 2) points."""
    m = np.asarray(matrix, dtype=np.float64)
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return p @ m[:, :2].T + m[:, 2]


def canvas_matrix(landmarks) -> np.ndarray:
    """Frame pixels → 240-canvas pixels (both 0-based), with the 1-pixel MATLAB correction (spec §4.3).

    Args:
      landmarks: (68, 2) or (67, 2) dlib landmarks of one face (only 27..47 are used).
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    fit = similarity_fit(landmarks[ALIGN_INDICES], canonical_landmarks("canvas")[ALIGN_INDICES])
    a = fit[:, :2]
    # imtransform works on 1-based pixels on both sides: o0 + 1 = A (p0 + 1) + c
    return np.hstack([a, (fit[:, 2] + a @ np.ones(2) - 1.0)[:, None]])


def face_matrix(landmarks) -> np.ndarray:
    """Frame pixels → aligned 112-crop pixels (0-based pixel centres), a 2×3 similarity matrix."""
    canvas = canvas_matrix(landmarks)
    canvas[:, 2] -= CROP_START
    return compose(_CROP_TO_FACE, canvas)


def target_matrix(matrix) -> np.ndarray:
    """Frame → 109×109 generator-output pixels, from the frame → 112 matrix (the crop [1:110], spec §4.6)."""
    m = np.array(matrix, dtype=np.float64)
    m[:, 2] -= TARGET_OFFSET
    return m


def target_crop(face: np.ndarray) -> np.ndarray:
    """The 109×109 training target of an aligned 112 face: ``face[..., 1:110, 1:110, :]`` (spec §4.6).

    Works on one (112, 112, C) image or a batch (..., 112, 112, C).
    """
    face = np.asarray(face) if not hasattr(face, "shape") else face
    if tuple(face.shape[-3:-1]) != (FACE_SIZE, FACE_SIZE):
        raise ValueError(f"expected (..., 112, 112, C) faces. Received: shape={tuple(face.shape)}")
    end = TARGET_OFFSET + TARGET_SIZE
    return face[..., TARGET_OFFSET:end, TARGET_OFFSET:end, :]


# ----------------------------------------------------------------------------------------------------------
# MATLAB imresize (bicubic, antialiasing)


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = −0.5 (MATLAB's 'cubic')."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return ((1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2)))


@functools.lru_cache(maxsize=32)
def imresize_weights(in_size: int, out_size: int, antialias: bool = True) -> np.ndarray:
    """The (out_size, in_size) matrix of MATLAB ``imresize`` along one axis (bicubic, symmetric borders).

    Output pixel x (1-based) samples input u = x/s + (1 − 1/s)/2, s = out/in. When shrinking with
    antialiasing, the kernel is stretched by 1/s (h(x) = s·cubic(s·x)). Weights are normalised to sum 1;
    taps outside the image are mirrored (…, 2, 1, 1, 2, …).
    """
    scale = out_size / in_size
    if scale < 1 and antialias:
        width = 4.0 / scale

        def kernel(x):
            return scale * _cubic(scale * x)
    else:
        width = 4.0
        kernel = _cubic
    x = np.arange(1, out_size + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = int(np.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]  # 1-based input indices
    w = kernel(u[:, None] - idx)
    w /= w.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_size), np.arange(in_size)[::-1]])  # 0-based
    idx0 = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_size)]
    weights = np.zeros((out_size, in_size))
    rows = np.repeat(np.arange(out_size), taps)
    np.add.at(weights, (rows, idx0.ravel()), w.ravel())
    return weights


def _round_uint8(x: np.ndarray) -> np.ndarray:
    # MATLAB double -> uint8: round half away from zero, saturate
    return np.floor(np.clip(x, 0.0, 255.0) + 0.5).astype(np.uint8)


def imresize(image: np.ndarray, size: tuple[int, int], antialias: bool = True) -> np.ndarray:
    """MATLAB ``imresize(image, [h w])`` with its defaults (bicubic, antialiasing when shrinking).

    Rows are resized first, then columns (MATLAB's order for equal scales). For uint8 input the
    intermediate result is rounded to uint8 too, as MATLAB keeps the class between passes; float input
    stays float.
    """
    image = np.asarray(image)
    out_h, out_w = int(size[0]), int(size[1])
    is_uint8 = image.dtype == np.uint8
    x = image.astype(np.float64)
    wr = imresize_weights(image.shape[0], out_h, antialias)
    wc = imresize_weights(image.shape[1], out_w, antialias)
    x = np.tensordot(wr, x, axes=(1, 0))  # (out_h, W, ...)
    if is_uint8:
        x = _round_uint8(x).astype(np.float64)
    x = np.moveaxis(np.tensordot(wc, x, axes=(1, 1)), 0, 1)  # (out_h, out_w, ...)
    return _round_uint8(x) if is_uint8 else x.astype(image.dtype if image.dtype.kind == "f" else np.float64)


# ----------------------------------------------------------------------------------------------------------
# warping


def warp_face(image: np.ndarray, matrix, exact: bool = True) -> np.ndarray:
    """The aligned 112×112×3 uint8 face of `image` under a frame → 112 `matrix` (e.g. `face_matrix`).

    exact=True (default): bilinear warp into the 197 canvas crop (fill 110), then MATLAB imresize to 112.
    exact=False: one bilinear ``cv2.warpAffine`` straight to 112 (no antialiasing), for comparison only.
    """
    import cv2

    image = np.ascontiguousarray(as_rgb(image))
    matrix = np.asarray(matrix, dtype=np.float64)
    fill = (FILL_VALUE,) * 3
    if not exact:
        return cv2.warpAffine(image, matrix, (FACE_SIZE, FACE_SIZE), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
    crop_matrix = compose(inverse_matrix(_CROP_TO_FACE), matrix)  # frame -> 197 crop
    crop = cv2.warpAffine(image, crop_matrix, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
    return imresize(crop, (FACE_SIZE, FACE_SIZE))


def warp_to_frame(face: np.ndarray, matrix, frame_size: tuple[int, int], interpolation: int | None = None):
    """Warp an aligned face back into frame coordinates (for paste-back).

    Args:
      face: (112, 112, C) aligned face (or the (109, 109, C) output with `target_matrix(matrix)`).
      matrix: the frame → face matrix the face was aligned with (not its inverse).
      frame_size: (height, width) of the frame.
      interpolation: a cv2 flag; default bicubic.

    Returns:
      (image, mask): the face in frame coordinates (same dtype as `face`; 0 outside), and a float32
      (H, W) mask that is 1 where the face covers the frame pixel and falls off to 0 at its edge.
    """
    import cv2

    face = np.asarray(face)
    flags = (cv2.INTER_CUBIC if interpolation is None else interpolation) | cv2.WARP_INVERSE_MAP
    h, w = int(frame_size[0]), int(frame_size[1])
    m = np.asarray(matrix, dtype=np.float64)
    image = cv2.warpAffine(np.ascontiguousarray(face), m, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT,
                           borderValue=0)
    ones = np.ones(face.shape[:2], dtype=np.float32)
    mask = cv2.warpAffine(ones, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return image, mask


# ----------------------------------------------------------------------------------------------------------
# still images


@dataclasses.dataclass(frozen=True, eq=False)
class AlignedFace:
    """One aligned face of a still image.

    Attributes:
      face: (112, 112, 3) uint8 RGB aligned crop (the network's identity-image format).
      matrix: (2, 3) float64, frame pixels → 112-crop pixels.
      landmarks: (68, 2) float32 dlib landmarks in frame pixels.
      box: (4,) float32 ``[left, top, right, bottom]`` face box in frame pixels.
      score: detector score (NaN when the box came from a user hint).
    """

    face: np.ndarray
    matrix: np.ndarray
    landmarks: np.ndarray
    box: np.ndarray
    score: float

    @property
    def inverse(self) -> np.ndarray:
        """112-crop pixels → frame pixels."""
        return inverse_matrix(self.matrix)

    @property
    def target(self) -> np.ndarray:
        """The 109×109 crop of `face` (spec §4.6)."""
        return target_crop(self.face)


def align_face(image: np.ndarray, detection: Detection | np.ndarray) -> AlignedFace:
    """Landmarks + alignment of the face in `detection` (a `Detection` or a ``[l, t, r, b]`` box)."""
    if not isinstance(detection, Detection):
        detection = Detection.from_xyxy(detection)
    gray = as_gray(image)
    landmarks = predict_landmarks(gray, detection.xyxy)
    matrix = face_matrix(landmarks)
    return AlignedFace(face=warp_face(image, matrix), matrix=matrix, landmarks=landmarks, box=detection.xyxy,
                       score=detection.score)


def align_image(image: np.ndarray, box=None, source: str = "image", upsample: int = UPSAMPLE,
                min_score: float = MIN_SCORE) -> AlignedFace:
    """Detect, choose (largest, or nearest the `box` hint ``(top, bottom, left, right)``) and align one face.

    Raises:
      ImageError: the image is too small for the detector.
      NoFaceError: no face (message names `source`).
    """
    detection = find_face(image, box=box, source=source, upsample=upsample, min_score=min_score)
    return align_face(image, detection)


def align_images(images: Iterable, outdir, box=None) -> Iterator[tuple[Path, Path]]:
    """Align each image and write ``<outdir>/<stem>_aligned.png`` (112×112 RGB, written atomically).

    The backend of ``speech2vid align IMAGE... --outdir DIR [--box T B L R]``. A generator: each pair
    ``(source, written file)`` is yielded once that file exists. `outdir` is created if needed.

    Raises:
      ImageError: an image is missing, corrupt or too small.
      NoFaceError: an image has no face (images before it have been written).
      Speech2VidError: two inputs share a stem (their outputs would collide).
    """
    from keras_speech2vid.io import read_image, write_png

    images = [Path(p) for p in images]
    outdir = Path(outdir)
    seen: dict[str, Path] = {}
    for src in images:
        if src.stem in seen and seen[src.stem] != src:
            raise Speech2VidError(f"{src}: output name {src.stem}_aligned.png clashes with {seen[src.stem]}")
        seen[src.stem] = src
    outdir.mkdir(parents=True, exist_ok=True)
    for src in images:
        image = read_image(src)
        aligned = align_image(image, box=box, source=str(src))
        dst = outdir / f"{src.stem}_aligned.png"
        write_png(dst, aligned.face)
        yield src, dst


# ----------------------------------------------------------------------------------------------------------
# landmarks of an already aligned face


def _canonical_box_112() -> np.ndarray:
    # A dlib-like box for a face already at the canonical position: the detector's boxes on aligned
    # faces span roughly the jaw's x-range and brows-to-chin's y-range (checked on faceimg.mat).
    c = canonical_landmarks(112)
    return np.array([c[0:17, 0].min(), c[17:27, 1].min(), c[0:17, 0].max(), c[0:17, 1].max()],
                    dtype=np.float32)


# landmark RMS (px, in the 112 crop) from the canonical ones: aligned crops give 1.5-2.6, thumbnails
# of whole frames 23-28 (tests/face/test_align.py)
ALIGNED_RMS = 8.0


def _padded_detections(face: np.ndarray, pad: int, upsample: int, detect: bool = True):
    """The crop padded with the fill value 110 on every side (so that the HOG detector sees the whole face
    with some context), the canonical face box in it, and the detections with their IoU with that box."""
    import cv2

    rgb = as_rgb(face)
    padded = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(FILL_VALUE,) * 3)
    expected = _canonical_box_112() * (rgb.shape[0] / FACE_SIZE) + pad
    dets = detect_faces(padded, upsample=upsample) if detect else []
    return padded, expected, [(d, iou(d.xyxy, expected)) for d in dets]


def looks_aligned(face: np.ndarray, upsample: int = UPSAMPLE) -> bool:
    """Whether a 112×112 crop holds a face at the canonical position (an aligned crop), not, say, a
    thumbnail of a whole photo: a face is detected (every aligned crop tried was) and its landmarks lie
    within `ALIGNED_RMS` of the canonical ones."""
    pad = 56
    padded, _, found = _padded_detections(face, pad, upsample)
    if not found:
        return False
    best, overlap = max(found, key=lambda f: f[1])
    if overlap <= 0.3:
        return False  # a face, away from the aligned position
    points = predict_landmarks(padded, best.xyxy)[ALIGN_INDICES] - pad
    error = np.sqrt(((points - canonical_landmarks(FACE_SIZE)[ALIGN_INDICES]) ** 2).sum(1).mean())
    return bool(error < ALIGNED_RMS * face.shape[0] / FACE_SIZE)


def aligned_landmarks(face: np.ndarray, pad: int = 56, upsample: int = UPSAMPLE, detect: bool = True):
    """The 68 landmarks of an aligned face, in its own pixel coordinates.

    The detection that overlaps the canonical face position most is used (see `_padded_detections`); when
    there is none (or `detect` is False) the canonical box is used, so this always returns landmarks.

    Returns:
      ((68, 2) float32 landmarks, detected: bool).
    """
    padded, expected, found = _padded_detections(face, pad, upsample, detect)
    box, detected = expected, False
    if found:
        best, overlap = max(found, key=lambda f: f[1])
        if overlap > 0.3:
            box, detected = best.xyxy, True
    points = predict_landmarks(padded, box) - pad
    return points.astype(np.float32), detected
