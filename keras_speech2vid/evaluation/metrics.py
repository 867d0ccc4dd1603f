"""Image and lip-motion metrics of generated faces against ground truth, in NumPy.

Image metrics (on 109×109 RGB crops, uint8 or float, ``max_val`` 255 by default)
  `psnr`: 10·log10(max_val² / MSE), the MSE over all pixels and channels of one image; +inf when the two
    images are identical. Per image; the caller averages the per-frame values (the usual "mean PSNR").
  `ssim`: Wang et al. (2004) with the standard settings, as `tf.image.ssim`: an 11×11 Gaussian window
    (σ = 1.5, normalised to sum 1), ``valid`` filtering (no padding), K1 = 0.01, K2 = 0.03,
    C1 = (K1·max_val)², C2 = (K2·max_val)²; the SSIM map of each channel is averaged over the image and
    the channels are averaged. Computed in float64.
  Both take one image (H, W, C) or a batch (..., H, W, C) and return a float or an array of the batch shape.

Regions
  The whole face is the 109×109 crop. The mouth region is one fixed box for every face (`mouth_box`):
  the bounding box of the canonical mouth landmarks 48..66 (`face.canonical_landmarks(112)`; the
  average face has no point 67) widened by ``margin`` × the canonical mouth width (42.1 px) on every side,
  rounded outwards to whole pixels, in 109 coordinates (112 coordinates − 1). With the default margin 0.25
  it is rows 61..97 and columns 24..88 of the 109 crop (37×65 px): room for an open jaw and for the
  tracker's small misalignments.

Landmarks (`face_landmarks`)
  dlib's 68 points of a face, always in **aligned-112 coordinates**: a 109×109 face (the generator's output
  or a ground-truth target) is put back into a 112×112 canvas at offset (1, 1), the 112 crop's own
  position (spec §4.6), the 3 missing rows/columns filled by repeating the edge pixels, and
  `face.aligned_landmarks` runs on that canvas. Generated and true faces go through exactly the same
  function, so identical images give identical landmarks.

Lip motion
  `lmd`: the mean Euclidean distance of the 20 mouth landmarks 48..67 of two faces (112 px).
  `mouth_aperture`: the inner-lip opening, the mean distance of the pairs 61–67, 62–66, 63–65, divided by
    the inter-ocular distance (between the centres of the eyes 36..41 and 42..47) of the same face: a
    face-size-free number (about 0.0 closed, 0.2–0.4 wide open).
  `pearson_r`: Pearson correlation of two series. A series that is constant (e.g. the static baseline's
    aperture) makes r undefined (0/0): it is reported as **0** with ``defined=False``.
  `lag_correlations` / `av_offset`: r between the generated series shifted by a lag and the true one, for
    every lag in ±max_lag; the estimated audio-visual offset is the lag with the largest r (ties go to the
    smallest |lag|). A positive lag means the generated mouth moves *later* than the true one
    (generated[t + lag] matches truth[t]).
"""

from __future__ import annotations

import functools

import numpy as np

from keras_speech2vid.face.canonical import (  # noqa: F401  (MOUTH_MARGIN, mouth_box: part of this module's API)
    INNER_LIP_PAIRS_68,
    LEFT_EYE,
    MOUTH_INDICES,
    MOUTH_MARGIN,
    RIGHT_EYE,
    SIZES,
    TARGET_SIZE,
    box_at,
    mouth_box,
)

MOUTH = MOUTH_INDICES  # dlib mouth points: outer lip 48..59, inner lip 60..67
SSIM_FILTER_SIZE = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


# ----------------------------------------------------------------------------------------------------------
# image metrics


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"images must have the same shape. Received: {a.shape} and {b.shape}")
    if a.ndim < 3:
        raise ValueError(f"images must be (..., H, W, C). Received: shape={a.shape}")
    return a, b


def psnr(a, b, max_val: float = 255.0):
    """Peak signal-to-noise ratio in dB of (..., H, W, C) images; +inf for identical images."""
    a, b = _pair(a, b)
    mse = np.mean((a - b) ** 2, axis=(-3, -2, -1))
    with np.errstate(divide="ignore"):
        value = 10.0 * np.log10(float(max_val) ** 2 / mse)
    return float(value) if np.ndim(value) == 0 else value


@functools.lru_cache(maxsize=8)
def gaussian_kernel(size: int = SSIM_FILTER_SIZE, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """The normalised 1-D Gaussian (size,) whose outer product is SSIM's 2-D window."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def _filter_valid(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable 'valid' filtering of (..., H, W, C) over H and W."""
    k = len(kernel)
    rows = np.lib.stride_tricks.sliding_window_view(x, k, axis=-3)  # (..., H-k+1, W, C, k)
    x = rows @ kernel
    cols = np.lib.stride_tricks.sliding_window_view(x, k, axis=-2)  # (..., H-k+1, W-k+1, C, k)
    return cols @ kernel


def ssim(a, b, max_val: float = 255.0, filter_size: int = SSIM_FILTER_SIZE, sigma: float = SSIM_SIGMA,
         k1: float = SSIM_K1, k2: float = SSIM_K2):
    """Structural similarity of (..., H, W, C) images (see the module doc); 1.0 for identical images."""
    a, b = _pair(a, b)
    if a.shape[-3] < filter_size or a.shape[-2] < filter_size:
        raise ValueError(f"images must be at least {filter_size}×{filter_size}. Received: shape={a.shape}")
    kernel = gaussian_kernel(int(filter_size), float(sigma))
    c1 = (k1 * max_val) ** 2
    c2 = (k2 * max_val) ** 2
    mu_a, mu_b = _filter_valid(a, kernel), _filter_valid(b, kernel)
    aa, bb, ab = _filter_valid(a * a, kernel), _filter_valid(b * b, kernel), _filter_valid(a * b, kernel)
    mu_ab = mu_a * mu_b
    mu_sq = mu_a ** 2 + mu_b ** 2
    luminance = (2.0 * mu_ab + c1) / (mu_sq + c1)
    contrast_structure = (2.0 * (ab - mu_ab) + c2) / (aa + bb - mu_sq + c2)
    value = np.mean(luminance * contrast_structure, axis=(-3, -2, -1))
    return float(value) if np.ndim(value) == 0 else value


# ----------------------------------------------------------------------------------------------------------
# regions


def crop_box(images, box) -> np.ndarray:
    """``images[..., top:bottom, left:right, :]`` for a ``(top, bottom, left, right)`` box."""
    top, bottom, left, right = box
    return np.asarray(images)[..., top:bottom, left:right, :]


def grey(face) -> np.ndarray:
    """(H, W) uint8 mean of the RGB channels: what `audio_effect` compares (a third of the memory)."""
    return np.asarray(face, np.float32).mean(axis=-1).round().astype(np.uint8)


UPPER_FACE_BOX_109 = (5, 35, 15, 95)  # brows and eyes, in a 109 output face (top, bottom, left, right)


def mouth_motion(faces) -> tuple[float, float]:
    """(mouth, upper face): the mean per-pixel temporal std, in grey levels, of a run of aligned faces
    (T, S, S, 3), S = 109 or 112, inside the canonical mouth box and over the brows and eyes. A mouth
    that speaks moves; an upper face that stays still does not."""
    faces = np.asarray(faces, np.float32).mean(axis=-1)  # (T, S, S)
    size = faces.shape[1]
    if size not in SIZES or faces.shape[2] != size or len(faces) < 2:
        raise ValueError(f"faces must be at least 2 aligned 109 or 112 faces. Received: shape={faces.shape}")
    motion = faces.std(axis=0)
    top, bottom, left, right = mouth_box(size=size)
    u_top, u_bottom, u_left, u_right = box_at(UPPER_FACE_BOX_109, size, TARGET_SIZE)
    return float(motion[top:bottom, left:right].mean()), float(motion[u_top:u_bottom, u_left:u_right].mean())


def audio_effect(faces_a, faces_b, box) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame mean absolute grey-level difference (0–255) between two renderings of the same frames,
    inside the ``(top, bottom, left, right)`` box and outside it: how much a change of audio moves
    the mouth, against how much it moves the rest of the face."""
    a = np.asarray(faces_a, np.float32)
    b = np.asarray(faces_b, np.float32)
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"expected two (N, H, W) grey stacks of one shape. Received: {a.shape} and {b.shape}")
    diff = np.abs(a - b)
    inside = np.zeros(a.shape[1:], bool)
    top, bottom, left, right = box
    inside[top:bottom, left:right] = True
    return diff[:, inside].mean(axis=1), diff[:, ~inside].mean(axis=1)


# ----------------------------------------------------------------------------------------------------------
# landmarks


def to_canvas_112(face109: np.ndarray) -> np.ndarray:
    """A 109×109 face placed into a 112×112 canvas at offset (1, 1), the border repeated from the edge."""
    import cv2

    from keras_speech2vid.face import FACE_SIZE, TARGET_OFFSET, TARGET_SIZE

    face109 = np.ascontiguousarray(face109)
    if face109.shape[:2] != (TARGET_SIZE, TARGET_SIZE):
        raise ValueError(f"expected a 109×109 face. Received: shape={face109.shape}")
    after = FACE_SIZE - TARGET_SIZE - TARGET_OFFSET
    return cv2.copyMakeBorder(face109, TARGET_OFFSET, after, TARGET_OFFSET, after, cv2.BORDER_REPLICATE)


def face_landmarks(face: np.ndarray) -> tuple[np.ndarray, bool]:
    """dlib's 68 landmarks of a 109×109 (or aligned 112×112) RGB uint8 face, in aligned-112 coordinates.

    Returns ((68, 2) float64, detected): `detected` is False when the HOG detector found no face and the
    canonical box was used instead (see `face.aligned_landmarks`).
    """
    from keras_speech2vid.face import FACE_SIZE, aligned_landmarks

    face = np.asarray(face)
    if face.dtype != np.uint8:
        face = (np.clip(face, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if face.shape[:2] != (FACE_SIZE, FACE_SIZE):
        face = to_canvas_112(face)
    points, detected = aligned_landmarks(face)
    return np.asarray(points, dtype=np.float64), bool(detected)


def lmd(landmarks_a, landmarks_b, indices=MOUTH):
    """Mean distance of the `indices` (default: the 20 mouth points) between (..., 68, 2) landmark sets."""
    a = np.asarray(landmarks_a, dtype=np.float64)[..., indices, :]
    b = np.asarray(landmarks_b, dtype=np.float64)[..., indices, :]
    value = np.linalg.norm(a - b, axis=-1).mean(axis=-1)
    return float(value) if np.ndim(value) == 0 else value


def inter_ocular(landmarks):
    """Distance between the eye centres (means of 36..41 and 42..47) of (..., 68, 2) landmarks."""
    p = np.asarray(landmarks, dtype=np.float64)
    value = np.linalg.norm(p[..., LEFT_EYE, :].mean(-2) - p[..., RIGHT_EYE, :].mean(-2), axis=-1)
    return float(value) if np.ndim(value) == 0 else value


def mouth_aperture(landmarks):
    """Inner-lip opening / inter-ocular distance of (..., 68, 2) landmarks (see the module doc)."""
    p = np.asarray(landmarks, dtype=np.float64)
    upper = p[..., [i for i, _ in INNER_LIP_PAIRS_68], :]
    lower = p[..., [j for _, j in INNER_LIP_PAIRS_68], :]
    opening = np.linalg.norm(upper - lower, axis=-1).mean(axis=-1)
    value = opening / np.maximum(inter_ocular(p), 1e-9)
    return float(value) if np.ndim(value) == 0 else value


# ----------------------------------------------------------------------------------------------------------
# correlation over time


def _is_constant(x: np.ndarray) -> bool:
    return x.size == 0 or float(np.ptp(x)) <= 1e-12 * max(1.0, float(np.max(np.abs(x))))


def pearson_r(x, y) -> tuple[float, bool]:
    """(r, defined): Pearson's r of two equal-length series; (0.0, False) when a series is constant or
    shorter than 2 (r would be 0/0)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"series must have the same length. Received: {x.size} and {y.size}")
    if x.size < 2 or _is_constant(x) or _is_constant(y):
        return 0.0, False
    xc, yc = x - x.mean(), y - y.mean()
    r = float(np.sum(xc * yc) / np.sqrt(np.sum(xc * xc) * np.sum(yc * yc)))
    return float(np.clip(r, -1.0, 1.0)), True


def max_lag_for(length: int, max_lag: int) -> int:
    """The largest usable lag: at most `max_lag`, and every lag keeps at least half the series paired."""
    return int(max(0, min(int(max_lag), int(length) // 2)))


def lag_correlations(generated, truth, max_lag: int) -> dict[int, tuple[float, bool]]:
    """{lag: (r, defined)} for lag in −L..L (L = `max_lag_for`), pairing generated[t + lag] with truth[t]."""
    g = np.asarray(generated, dtype=np.float64).ravel()
    t = np.asarray(truth, dtype=np.float64).ravel()
    if g.shape != t.shape:
        raise ValueError(f"series must have the same length. Received: {g.size} and {t.size}")
    n = g.size
    lags = max_lag_for(n, max_lag)
    out = {}
    for lag in range(-lags, lags + 1):
        if lag >= 0:
            out[lag] = pearson_r(g[lag:], t[:n - lag])
        else:
            out[lag] = pearson_r(g[:n + lag], t[-lag:])
    return out


def av_offset(generated, truth, max_lag: int) -> tuple[int | None, float]:
    """(lag, r) of the best-correlated lag (see the module doc); (None, 0.0) when no lag has a defined r."""
    table = lag_correlations(generated, truth, max_lag)
    defined = [(r, -abs(lag), lag) for lag, (r, ok) in table.items() if ok]
    if not defined:
        return None, 0.0
    r, _, lag = max(defined)
    return int(lag), float(r)
