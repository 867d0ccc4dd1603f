"""Detection, face choice and the bad-input outcomes of the still-image path."""

import math

import cv2
import numpy as np
import pytest

from tests.conftest import DATA
from keras_speech2vid.errors import ImageError, NoFaceError, Speech2VidError
from keras_speech2vid.face import Detection, align_image, align_images, box_from_tblr, detect_faces, select_face
from keras_speech2vid.face.landmarks import predictor_path
from keras_speech2vid.io import read_image

OBAMA = DATA / "obama.jpg"


@pytest.fixture(scope="module")
def obama():
    return read_image(OBAMA)


@pytest.fixture(scope="module")
def obama_faces(obama):
    return detect_faces(obama)


def test_predictor_is_found_without_importing_the_package():
    path = predictor_path()
    assert path.name == "shape_predictor_68_face_landmarks.dat"
    assert path.stat().st_size > 50_000_000


def test_obama_has_two_faces_largest_first(obama_faces):
    assert len(obama_faces) == 2
    big, small = obama_faces
    assert big.area > small.area
    assert all(d.score >= 0.25 for d in obama_faces)
    # Obama is on the right, the second person on his right (image left)
    assert (big.left + big.right) / 2 > (small.left + small.right) / 2
    assert 80 < big.width < 140 and 70 < small.width < 120


def test_default_policy_is_the_largest(obama_faces):
    assert select_face(obama_faces) is obama_faces[0]
    assert select_face(list(reversed(obama_faces))) is obama_faces[0]


def test_box_hint_picks_the_overlapping_face(obama_faces):
    small = obama_faces[1]
    hint = (small.top - 10, small.bottom + 5, small.left + 5, small.right + 10)  # top bottom left right
    assert select_face(obama_faces, box=hint) is small


def test_box_hint_without_overlap_is_used_as_the_box(obama_faces):
    chosen = select_face(obama_faces, box=(400, 500, 10, 100))
    np.testing.assert_array_equal(chosen.xyxy, [10, 400, 100, 500])
    assert math.isnan(chosen.score)
    assert select_face([], box=(400, 500, 10, 100)).xyxy.tolist() == [10, 400, 100, 500]


def test_box_hint_is_validated():
    with pytest.raises(ValueError, match="top bottom left right"):
        box_from_tblr((100, 50, 10, 20))
    with pytest.raises(ValueError, match="4 values"):
        box_from_tblr((1, 2, 3))


def test_no_detection_raises_naming_the_source():
    with pytest.raises(NoFaceError, match="clip.png: no face"):
        select_face([], source="clip.png")


def test_detection_on_a_shrunk_copy_maps_boxes_back(obama, obama_faces):
    shrunk = detect_faces(obama, max_side=400)
    assert shrunk, "the larger face must survive a 2x shrink"
    big = obama_faces[0]
    assert abs((shrunk[0].left + shrunk[0].right) / 2 - (big.left + big.right) / 2) < 12
    assert abs(shrunk[0].width - big.width) < 0.25 * big.width


def _write(path, rgb):
    ok, data = cv2.imencode(path.suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb)
    assert ok
    path.write_bytes(data.tobytes())
    return path


def test_image_without_face_raises_no_face_error_naming_the_file(tmp_path):
    yy, xx = np.mgrid[0:240, 0:320]
    sky = np.stack([xx % 256, yy % 256, (xx + yy) % 256], axis=2).astype(np.uint8)
    src = _write(tmp_path / "landscape.png", sky)
    with pytest.raises(NoFaceError) as info:
        list(align_images([src], tmp_path / "out"))
    assert str(src) in str(info.value)
    assert not list((tmp_path / "out").glob("*.png"))


def test_tiny_image_raises_image_error(tmp_path, obama):
    src = _write(tmp_path / "tiny.png", cv2.resize(obama, (20, 20), interpolation=cv2.INTER_AREA))
    with pytest.raises(ImageError, match=r"tiny.png: image is 20x20 pixels, too small"):
        list(align_images([src], tmp_path))
    with pytest.raises(ImageError):
        align_image(np.zeros((20, 20, 3), np.uint8))


def test_corrupt_empty_and_missing_images_raise_image_error(tmp_path):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg" * 20)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(OBAMA.read_bytes()[:300])
    for path in (corrupt, empty, truncated, tmp_path / "missing.png"):
        with pytest.raises(ImageError, match=path.name):
            list(align_images([path], tmp_path / "out"))


def test_grayscale_image_is_aligned(tmp_path, obama):
    gray = cv2.cvtColor(obama, cv2.COLOR_RGB2GRAY)
    src = _write(tmp_path / "obama_gray.png", gray)
    [(got_src, dst)] = list(align_images([src], tmp_path / "out"))
    face = read_image(dst)
    assert face.shape == (112, 112, 3)
    assert (face[..., 0] == face[..., 1]).all() and (face[..., 1] == face[..., 2]).all()
    # a 2-D array works too, and finds the same face
    from_array = align_image(gray)
    assert from_array.face.shape == (112, 112, 3)
    assert abs(from_array.box[0] - detect_faces(obama)[0].left) < 3


def test_output_name_clash_is_refused(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(Speech2VidError, match="clashes"):
        list(align_images([tmp_path / "a" / "x.png", tmp_path / "b" / "x.png"], tmp_path / "out"))


def test_detection_from_xyxy_round_trip():
    d = Detection.from_xyxy([1, 2, 11, 22], score=0.5)
    assert (d.width, d.height, d.area, d.score) == (10, 20, 200, 0.5)


def test_wav2lip_minus_one_box_means_none_and_a_box_off_the_image_is_refused():
    from keras_speech2vid.face import find_face
    from keras_speech2vid.face.track import FaceTracker

    image = read_image(DATA / "obama.jpg")
    h, w = image.shape[:2]
    np.testing.assert_array_equal(find_face(image, box=[-1, -1, -1, -1]).xyxy, find_face(image).xyxy)
    assert FaceTracker(box=(-1, -1, -1, -1)).hint is None
    with pytest.raises(ImageError, match="outside") as e:
        find_face(image, box=[h + 10, h + 50, 0, 40], source="obama.jpg")
    assert "obama.jpg" in str(e.value) and "\n" not in str(e.value)
    # a box that overlaps the image is still a hint
    assert find_face(image, box=[-5, 60, -5, 60]) is not None
