"""`speech2vid demo` with the bundled weights: a face video with audio whose mouth moves and whose upper face stays.

Skipped while no trained weights are bundled (weights/manifest.json); the demo then says so plainly,
which tests/inference/test_generate.py::test_bundled_weights_missing_says_so checks.
"""

import numpy as np
import pytest

from keras_speech2vid import io
from keras_speech2vid.weights import default_weights_dir


@pytest.fixture(scope="module")
def bundled():
    if not (default_weights_dir() / "manifest.json").exists():
        pytest.skip("no trained weights bundled in weights/ yet")
    from keras_speech2vid import Speech2Vid

    return Speech2Vid.load()


def test_demo_writes_a_face_video_with_audio(bundled, tmp_path):
    from keras_speech2vid.cli import main

    out = tmp_path / "demo.mp4"
    assert main(["demo", "--outfile", str(out)]) == 0
    info = io.probe(out)
    assert info.has_video and info.has_audio and abs(info.duration - 5.12) < 0.1


def test_mouth_moves_and_upper_face_stays(bundled):
    from keras_speech2vid.inference.generate import demo_files

    face, speech = demo_files()
    frames = np.stack(list(bundled.generate(face, speech))).astype(np.float32)  # (T, 109, 109, 3)
    motion = frames.std(axis=0).mean(axis=-1)  # per-pixel temporal std
    mouth = motion[62:96, 25:85].mean()  # canonical mouth box (see evaluation.metrics.mouth_box)
    upper = motion[5:35, 15:95].mean()  # brows and eyes
    assert mouth > 1.0 and mouth > 2.0 * upper, (mouth, upper)
