"""Paste a generated 109×109 face back into a frame: blend masks, Poisson / alpha blending.

Geometry
    Every face comes with its 2×3 matrix ``M`` (frame pixels → aligned 112-crop pixels, see
    `keras_speech2vid.face.align`). The generator's 109×109 output is the crop ``[1:110, 1:110]`` of the
    112 face (spec §4.6), so it goes back into the frame through ``target_matrix(M)`` (the 1-pixel
    109 ↔ 112 offset) and ``cv2.warpAffine(..., WARP_INVERSE_MAP)`` (`warp_to_frame`).

Blend mask (`region_mask`), built in the aligned 112 space so that it follows head rotation:
    1. The 68 frame landmarks are mapped into the aligned space with ``M``.
    2. ``region="lower"`` (the re-dubbing default): the convex hull of the jaw points 1–15, the nose
       28–35 and the mouth 48–67, cut by the horizontal line `EYE_MARGIN` (4) aligned pixels below the
       lowest eye landmark (36–47): the lower face, from just below the eyes down to the chin (as far as
       the generated square reaches).
       ``region="full"``: the hull of the jaw 0–16 and the brows 17–26 (the whole face).
    3. The polygon is clipped to the generated square inset by `EDGE_MARGIN` (3) aligned pixels (the
       generator's border pixels are never used).
    4. It is mapped to the frame with ``M⁻¹`` and rasterised with sub-pixel precision, then eroded by
       `ERODE` (2 %) of the face width in frame pixels (the aligned 112 crop's width, ``112 / scale(M)``),
       so the seam lies inside the face, and kept 2 pixels away from the frame border (as
       ``cv2.seamlessClone`` needs).

Blending (`paste_face`), all of which leave every pixel outside the mask exactly as it was:
    * ``"poisson"``: ``cv2.seamlessClone(NORMAL_CLONE)``: the generated gradients inside the mask with the
      frame's values on its boundary (the paper's choice [P]). OpenCV solves over the mask's bounding box
      and only approximately reproduces the frame outside the mask, so its result is used inside the mask
      only.
    * ``"alpha"``: a linear ramp from 0 at the mask edge to 1 at `FEATHER` (8 %) of the face width inside
      it (a distance transform), then ``alpha·face + (1 − alpha)·frame``.
    * ``"none"``: the generated pixels inside the mask, the frame outside (hard edge).
"""

from __future__ import annotations

import numpy as np

from keras_speech2vid.face.align import inverse_matrix, target_matrix, transform_points, warp_to_frame
from keras_speech2vid.face.canonical import FACE_SIZE, TARGET_OFFSET, TARGET_SIZE

REGIONS = ("lower", "full")
BLENDS = ("poisson", "alpha", "none")

EYE_MARGIN = 4.0  # aligned-112 pixels below the lowest eye landmark where the "lower" region starts
EDGE_MARGIN = 3.0  # aligned-112 pixels kept off the generated square's border
ERODE = 0.02  # mask erosion, fraction of the face width in frame pixels
FEATHER = 0.08  # alpha ramp width, fraction of the face width in frame pixels
BORDER = 2  # frame pixels the mask keeps away from the frame border

JAW = np.arange(0, 17)
BROWS = np.arange(17, 27)
NOSE = np.arange(28, 36)
EYES = np.arange(36, 48)


def _check(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}. Received: {name}={value!r}")


def face_width(matrix) -> float:
    """Width in frame pixels of the aligned 112 crop described by a frame → 112 `matrix`."""
    m = np.asarray(matrix, dtype=np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    return FACE_SIZE / max(scale, 1e-9)


def _clip_half_plane(poly: np.ndarray, normal, offset: float) -> np.ndarray:
    """Sutherland–Hodgman: the part of convex `poly` with ``normal · p >= offset``."""
    normal = np.asarray(normal, dtype=np.float64)
    out = []
    for i in range(len(poly)):
        p, q = poly[i], poly[(i + 1) % len(poly)]
        dp, dq = float(normal @ p - offset), float(normal @ q - offset)
        if dp >= 0:
            out.append(p)
        if (dp >= 0) != (dq >= 0):
            out.append(p + dp / (dp - dq) * (q - p))
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


def region_polygon(landmarks, matrix, region: str = "lower") -> np.ndarray:
    """The blend region (steps 1–3 of the module doc) as a convex polygon in **aligned-112** pixels.

    Args:
      landmarks: (68, 2) (or 67) dlib landmarks in frame pixels.
      matrix: (2, 3) frame → aligned-112 matrix of the same face.
      region: ``"lower"`` or ``"full"``.

    Returns:
      (K, 2) float64 vertices (K may be 0 when nothing is left).
    """
    import cv2

    _check("region", region, REGIONS)
    points = transform_points(matrix, landmarks)  # (68, 2) aligned-112
    mouth = np.arange(48, len(points))
    if region == "lower":
        chosen = points[np.concatenate([JAW[1:16], NOSE, mouth])]
    else:
        chosen = points[np.concatenate([JAW, BROWS])]
    hull = cv2.convexHull(chosen.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    if region == "lower":
        eye_line = float(points[EYES, 1].max()) + EYE_MARGIN
        hull = _clip_half_plane(hull, (0.0, 1.0), eye_line)
    lo = TARGET_OFFSET - 0.5 + EDGE_MARGIN
    hi = TARGET_OFFSET + TARGET_SIZE - 0.5 - EDGE_MARGIN
    for normal, offset in (((1.0, 0.0), lo), ((0.0, 1.0), lo), ((-1.0, 0.0), -hi), ((0.0, -1.0), -hi)):
        if len(hull) == 0:
            break
        hull = _clip_half_plane(hull, normal, offset)
    return hull


def region_mask(landmarks, matrix, frame_size, region: str = "lower", erode: float = ERODE) -> np.ndarray:
    """The binary blend mask of one face: (H, W) uint8, 255 inside (see the module doc).

    Args:
      landmarks: (68, 2) frame landmarks; matrix: frame → aligned-112 matrix; frame_size: (height, width).
      region: ``"lower"`` or ``"full"``.
      erode: erosion as a fraction of the face width in frame pixels (0 for none).
    """
    import cv2

    h, w = int(frame_size[0]), int(frame_size[1])
    mask = np.zeros((h, w), dtype=np.uint8)
    poly = region_polygon(landmarks, matrix, region)
    if len(poly) < 3:
        return mask
    frame_poly = transform_points(inverse_matrix(matrix), poly)
    shift = 4
    cv2.fillConvexPoly(mask, np.round(frame_poly * (1 << shift)).astype(np.int32), 255, cv2.LINE_8, shift)
    radius = int(round(erode * face_width(matrix)))
    if radius > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        mask = cv2.erode(mask, kernel)
    mask[:BORDER], mask[h - BORDER:], mask[:, :BORDER], mask[:, w - BORDER:] = 0, 0, 0, 0
    return mask


def alpha_from_mask(mask: np.ndarray, feather_px: float) -> np.ndarray:
    """(H, W) float32 alpha: 0 outside `mask`, rising linearly to 1 at `feather_px` inside it."""
    import cv2

    binary = (np.asarray(mask) > 0).astype(np.uint8)
    if feather_px <= 0:
        return binary.astype(np.float32)
    dist = cv2.distanceTransform(binary, cv2.DIST_L2, 3)
    return np.clip(dist / float(feather_px), 0.0, 1.0).astype(np.float32)


def blend_images(frame: np.ndarray, warped: np.ndarray, mask: np.ndarray, method: str = "poisson",
          feather_px: float = 0.0) -> np.ndarray:
    """Blend `warped` (a face already in frame coordinates) into `frame` inside `mask`.

    Args:
      frame, warped: (H, W, 3) uint8 RGB; mask: (H, W) uint8 (non-zero inside).
      method: ``"poisson"``, ``"alpha"`` or ``"none"``; feather_px: the alpha ramp width.

    Returns:
      A new (H, W, 3) uint8 frame; pixels outside `mask` are exactly those of `frame`.
    """
    import cv2

    _check("blend", method, BLENDS)
    frame = np.ascontiguousarray(frame)
    binary = np.where(np.asarray(mask) > 0, 255, 0).astype(np.uint8)
    if not binary.any():
        return frame.copy()
    if method == "poisson":
        x, y, w, h = cv2.boundingRect(binary)
        if w < 3 or h < 3:
            return frame.copy()
        # the centre OpenCV uses to place the mask's bounding box: x + w//2 keeps it in place (checked
        # in tests); seamlessClone changes its mask argument, so it gets a copy
        cloned = cv2.seamlessClone(np.ascontiguousarray(warped), frame, binary.copy(), (x + w // 2, y + h // 2),
                                   cv2.NORMAL_CLONE)
        # OpenCV solves over the mask's whole bounding box and rebuilds the pixels outside the mask from
        # the frame's own gradients, which is not exact (errors of a few levels near the mask): keep the
        # clone inside the mask only
        out = frame.copy()
        inside = binary > 0
        out[inside] = cloned[inside]
        return out
    if method == "alpha":
        alpha = alpha_from_mask(binary, feather_px)[..., None]
        out = alpha * warped.astype(np.float32) + (1.0 - alpha) * frame.astype(np.float32)
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)
    out = frame.copy()
    inside = binary > 0
    out[inside] = warped[inside]
    return out


def paste_face(frame: np.ndarray, face: np.ndarray, matrix, mask: np.ndarray | None = None, *,
               landmarks=None, region: str = "lower", method: str = "poisson") -> np.ndarray:
    """Warp a generated 109×109 face back into `frame` and blend it inside the region mask.

    Args:
      frame: (H, W, 3) uint8 RGB frame.
      face: (109, 109, 3) uint8 (or float in [0, 1]) generator output for this frame.
      matrix: the frame → aligned-112 matrix the identity/target geometry refers to.
      mask: a precomputed `region_mask` (e.g. for a still background); else built from `landmarks`.
      landmarks, region: used when `mask` is None.
      method: ``"poisson"``, ``"alpha"`` or ``"none"``.

    Returns:
      (H, W, 3) uint8; every pixel outside the mask equals `frame`.
    """
    _check("blend", method, BLENDS)
    face = np.asarray(face)
    if face.dtype != np.uint8:
        face = (np.clip(face, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if face.shape[:2] != (TARGET_SIZE, TARGET_SIZE):
        raise ValueError(f"face must be the (109, 109, 3) generator output. Received: shape={face.shape}")
    h, w = frame.shape[:2]
    if mask is None:
        if landmarks is None:
            raise ValueError("paste_face needs a mask or the face's landmarks")
        mask = region_mask(landmarks, matrix, (h, w), region)
    warped, _ = warp_to_frame(face, target_matrix(matrix), (h, w))
    return blend_images(frame, warped, mask, method, feather_px=FEATHER * face_width(matrix))
