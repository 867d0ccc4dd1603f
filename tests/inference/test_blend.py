"""Blend masks and paste-back geometry, without models (fast, no dlib: canonical landmarks)."""

import numpy as np
import pytest

from keras_speech2vid.face import canonical_landmarks, inverse_matrix, transform_points, warp_face
from keras_speech2vid.face.align import compose, target_crop
from keras_speech2vid.inference.blend import (
    ERODE,
    EYE_MARGIN,
    blend_images,
    face_width,
    paste_face,
    region_mask,
    region_polygon,
)


def similarity(scale, angle_deg, tx, ty):
    """A frame → aligned-112 matrix: the face sits in the frame rotated/scaled/shifted."""
    a = np.deg2rad(angle_deg)
    rot = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return np.hstack([rot, [[tx], [ty]]])


def face_in_frame(matrix):
    """68 landmarks in frame pixels for a face whose aligned position is the canonical one."""
    points112 = canonical_landmarks(112)  # 67 points (avglm has no 68th)
    return transform_points(inverse_matrix(matrix), points112)


def textured_frame(h=240, w=320):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 127 + 100 * np.sin(x / 7.0) * np.cos(y / 9.0)
    g = 127 + 100 * np.sin((x + y) / 11.0)
    b = 127 + 100 * np.cos((x - 2 * y) / 13.0)
    return np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)


MATRICES = [similarity(0.8, 0, -60, -40), similarity(0.7, 20, -40, -70), similarity(1.3, -15, -150, -90)]


@pytest.mark.parametrize("matrix", MATRICES)
def test_lower_region_is_below_the_eyes_and_covers_the_mouth(matrix):
    frame_size = (240, 320)
    landmarks = face_in_frame(matrix)
    mask = region_mask(landmarks, matrix, frame_size, "lower")
    assert mask.dtype == np.uint8 and mask.shape == frame_size and mask.any()
    ys, xs = np.nonzero(mask)
    aligned = transform_points(matrix, np.stack([xs, ys], 1))  # mask pixels in the aligned face
    eye_line = transform_points(matrix, landmarks)[36:48, 1].max()
    assert aligned[:, 1].min() >= eye_line + EYE_MARGIN - 1.0  # follows the head rotation
    scale = 112.0 / face_width(matrix)
    erosion = ERODE * 112 + 0.5 * scale  # the erosion ring, in aligned pixels (radius rounded to whole px)
    assert aligned[:, 1].min() <= eye_line + EYE_MARGIN + erosion + 1.5  # starts just below the eyes
    mouth = landmarks[48:].mean(0)
    assert mask[int(round(mouth[1])), int(round(mouth[0]))] == 255
    # never beyond the generated square
    assert aligned.min() >= 1 and aligned.max() <= 110
    full = region_mask(landmarks, matrix, frame_size, "full")
    assert (full[mask > 0] > 0).mean() > 0.97  # "full" contains "lower" (up to the erosion ring)
    assert (full > 0).sum() > 1.3 * (mask > 0).sum()  # the eyes and brows on top
    for eye in (landmarks[36:42].mean(0), landmarks[42:48].mean(0)):
        assert full[int(round(eye[1])), int(round(eye[0]))] == 255
        assert mask[int(round(eye[1])), int(round(eye[0]))] == 0


def test_region_polygon_in_aligned_space():
    matrix = similarity(1.0, 0, 0, 0)
    poly = region_polygon(canonical_landmarks(112), matrix, "lower")
    assert len(poly) >= 4
    with pytest.raises(ValueError, match="region"):
        region_polygon(canonical_landmarks(112), matrix, "upper")


def test_mask_keeps_off_the_frame_border():
    matrix = similarity(0.5, 0, 0, 0)  # the face fills the top-left corner and beyond
    mask = region_mask(face_in_frame(matrix), matrix, (120, 120), "full")
    assert mask.any()
    assert not mask[:2].any() and not mask[:, :2].any()


@pytest.mark.parametrize("method", ["poisson", "alpha", "none"])
def test_pixels_outside_the_mask_never_change(method):
    import cv2

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    warped = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    mask = np.zeros((120, 160), np.uint8)
    # an ellipse: OpenCV's solver rebuilds the rest of the bounding box only approximately
    cv2.ellipse(mask, (61, 51), (29, 31), 20, 0, 360, 255, -1)
    mask_before = mask.copy()
    out = blend_images(frame, warped, mask, method, feather_px=6)
    assert np.array_equal(mask, mask_before)  # seamlessClone's in-place change does not leak out
    assert np.array_equal(out[mask == 0], frame[mask == 0])
    inner = out[40:62, 50:72].astype(int)
    assert np.abs(inner - frame[40:62, 50:72]).mean() > 20  # and the inside did change
    if method == "none":
        assert np.array_equal(out[mask > 0], warped[mask > 0])


def test_poisson_keeps_the_face_in_place():
    """seamlessClone's centre convention: the cloned gradients line up with the source, not shifted."""
    rng = np.random.default_rng(1)
    frame = np.full((120, 160, 3), 128, np.uint8)
    warped = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    for (y0, y1, x0, x1) in [(20, 80, 30, 90), (21, 80, 31, 91), (20, 81, 30, 91), (21, 82, 33, 90)]:
        mask = np.zeros((120, 160), np.uint8)
        mask[y0:y1, x0:x1] = 255
        out = blend_images(frame, warped, mask, "poisson").astype(int)
        inner = (slice(y0 + 4, y1 - 4), slice(x0 + 4, x1 - 4))
        shifted = (slice(y0 + 3, y1 - 5), slice(x0 + 3, x1 - 5))
        aligned_err = np.std(out[inner] - warped[inner])
        shifted_err = np.std(out[inner] - warped[shifted])
        assert aligned_err < 0.3 * shifted_err, (y0, x0)


def test_self_clone_is_identity():
    frame = textured_frame()
    mask = np.zeros(frame.shape[:2], np.uint8)
    mask[50:150, 80:200] = 255
    out = blend_images(frame, frame, mask, "poisson")
    assert np.abs(out.astype(int) - frame).max() <= 2


@pytest.mark.parametrize("matrix", MATRICES)
def test_paste_back_geometry_round_trip(matrix):
    """A 'generated' face that is the frame's own 109 crop pastes back onto itself (the 1-px offset).

    A one-pixel error in the 109 ↔ 112 mapping makes the error several times larger on this texture.
    """
    frame = textured_frame()
    landmarks = face_in_frame(matrix)
    face109 = target_crop(warp_face(frame, matrix))
    mask = region_mask(landmarks, matrix, frame.shape[:2], "full")
    out = paste_face(frame, face109, matrix, mask, method="none")
    err = np.abs(out.astype(int) - frame)[mask > 0].mean()
    # the same, one pixel off in the aligned face
    shifted = compose(np.array([[1.0, 0, 1.0], [0, 1.0, 1.0]]), matrix)
    wrong = paste_face(frame, target_crop(warp_face(frame, shifted)), matrix, mask, method="none")
    wrong_err = np.abs(wrong.astype(int) - frame)[mask > 0].mean()
    assert err < 0.5 * wrong_err, (err, wrong_err)
    assert err < 2


def test_face_width():
    assert face_width(similarity(0.5, 30, 3, 4)) == pytest.approx(224.0)


def test_bad_arguments():
    frame = np.zeros((50, 50, 3), np.uint8)
    with pytest.raises(ValueError, match="blend"):
        blend_images(frame, frame, np.zeros((50, 50), np.uint8), "seamless")
    with pytest.raises(ValueError, match="109"):
        paste_face(frame, np.zeros((112, 112, 3), np.uint8), similarity(1, 0, 0, 0), np.zeros((50, 50), np.uint8))
