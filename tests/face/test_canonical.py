import subprocess
import sys

import numpy as np
import pytest

from keras_speech2vid.face import canonical as C
from tests.conftest import ROOT


def test_imports_neither_dlib_nor_tensorflow():
    code = ("import sys; sys.path.insert(0, %r); import keras_speech2vid.face.canonical; "
            "print(sorted(m for m in ('dlib', 'tensorflow', 'cv2', 'keras') if m in sys.modules))" % str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_sizes_and_box_shifts():
    assert C.TARGET_SIZE + 2 * C.TARGET_OFFSET + 1 == C.FACE_SIZE  # the 109 crop is [1:110] of 112
    np.testing.assert_allclose(C.canonical_landmarks(109), C.canonical_landmarks(112) - 1)
    box = (10, 20, 30, 40)
    assert C.box_at(box, 109) == (9, 19, 29, 39)
    assert C.box_at(C.box_at(box, 109), 112, 109) == box
    assert C.mouth_box(size=112) == C.box_at(C.mouth_box(size=109), 112, 109)
    with pytest.raises(ValueError, match="Received"):
        C.mouth_box(size=110)
    with pytest.raises(ValueError, match="Received"):
        C.canonical_landmarks("109")  # sizes are ints


def test_inner_lip_pairs_are_one_definition_in_two_indexings():
    assert [(u + 48, lo + 48) for u, lo in C.INNER_LIP_PAIRS_MOUTH] == list(C.INNER_LIP_PAIRS_68)
    c = C.canonical_landmarks(112)
    for upper, lower in C.INNER_LIP_PAIRS_68[:2]:  # avglm has 67 points: 67 (0-based) is missing
        assert c[upper, 1] < c[lower, 1] if lower < len(c) else True


def test_fixed_boxes_hold_the_canonical_mouth():
    mouth = C.canonical_landmarks(112)[48:67]
    for box, size in ((C.EXPERT_BOX_109, 109), (C.SYNC_BOX_112, 112)):
        top, bottom, left, right = C.box_at(box, 112, size)
        assert top < mouth[:, 1].min() and mouth[:, 1].max() < bottom
        assert left < mouth[:, 0].min() and mouth[:, 0].max() < right
