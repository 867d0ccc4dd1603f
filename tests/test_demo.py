"""`speech2vid demo` with the bundled weights: a face video with audio whose mouth moves with the speech
and whose upper face stays.

Skipped while no trained weights are bundled (weights/manifest.json); the demo then says so plainly,
which tests/inference/test_generate.py::test_bundled_weights_missing_says_so checks.
"""

from pathlib import Path

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


@pytest.fixture(scope="module")
def demo_frames(bundled):
    from keras_speech2vid.inference.demo import demo_files

    face, speech = demo_files()
    return np.stack(list(bundled.generate(face, speech))), speech  # (T, 109, 109, 3) uint8


def test_demo_frames_are_those_of_before_the_refactors(demo_frames):
    """Frame for frame the output of commit d5e9120 (tests/data/SOURCES.md); identical on the development machine
    (sha256 57fe1666…a223), and within one grey level where another CPU rounds a float differently."""
    import hashlib

    from tests.conftest import DATA

    frames = demo_frames[0]
    with np.load(DATA / "demo_frames_d5e9120.npz") as ref:
        every, before = int(ref["every"]), ref["frames"]
    assert frames.shape == (128, 109, 109, 3) and frames[::every].shape == before.shape
    diff = np.abs(frames[::every].astype(int) - before)
    digest = hashlib.sha256(frames.tobytes()).hexdigest()
    assert diff.max() <= 1 and (diff == 0).mean() >= 0.999, (diff.max(), (diff == 0).mean(), digest)


def readme_demo_line() -> str:
    """The line the README says `speech2vid demo --outfile demo.mp4` ends with."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    return next(line for line in readme.splitlines() if line.startswith("demo.mp4: "))


def check_demo_line(line: str, out: Path) -> None:
    """`line` is the README's, for output `out`; the mouth-motion figures within 0.2 (another CPU rounds
    a float differently)."""
    import re

    pattern = r"(.*): (\d+) frames, ([\d.]+) s at (\d+) fps; mouth motion ([\d.]+) grey levels, ([\d.]+)x"
    got, want = re.match(pattern, line), re.match(pattern, readme_demo_line())
    assert got and want, (line, readme_demo_line())
    assert got.group(1) == str(out) and got.groups()[1:4] == want.groups()[1:4]
    assert abs(float(got.group(5)) - float(want.group(5))) <= 0.2
    assert abs(float(got.group(6)) - float(want.group(6))) <= 0.5


def test_demo_writes_a_face_video_with_audio_and_the_readmes_line(bundled, tmp_path, capsys):
    from keras_speech2vid.cli import main

    out = tmp_path / "demo.mp4"
    assert main(["demo", "--outfile", str(out)]) == 0
    check_demo_line(capsys.readouterr().out.strip().splitlines()[-1], out)
    info = io.probe(out)
    assert info.has_video and info.has_audio and abs(info.duration - 5.12) < 0.1
    assert sum(1 for _ in io.iter_frames(out)) == 128  # the README's frame count


def test_mouth_motion_counts_the_mouth_box_and_the_upper_face():
    from keras_speech2vid.evaluation.metrics import mouth_motion
    from keras_speech2vid.face.canonical import mouth_box

    faces = np.full((20, 109, 109, 3), 100.0, np.float32)
    top, bottom, left, right = mouth_box(size=109)
    faces[:, top:bottom, left:right] += np.tile([10.0, -10.0], 10)[:, None, None, None]  # the mouth flickers by ±10
    mouth, upper = mouth_motion(faces)
    assert abs(mouth - 10.0) < 1e-4 and upper == 0.0
    with pytest.raises(ValueError, match="aligned"):
        mouth_motion(faces[:, :100, :100])


def test_mouth_moves_and_upper_face_stays(demo_frames):
    from keras_speech2vid.evaluation.metrics import mouth_motion

    mouth, upper = mouth_motion(demo_frames[0])
    assert mouth > 1.0 and mouth > 2.0 * upper, (mouth, upper)


def _aperture_and_loudness(bundled, face, speech):
    """dlib's inner-lip opening of each generated frame and the speech's log loudness in that frame."""
    from keras_speech2vid.evaluation.metrics import face_landmarks, mouth_aperture

    frames = np.stack(list(bundled.generate(face, speech)))
    aperture = np.array([mouth_aperture(face_landmarks(f)[0]) for f in frames])
    wav = io.decode_audio(speech)
    hop = 16000 // 25
    loudness = np.array([np.log(np.mean(wav[i * hop:(i + 1) * hop] ** 2) + 1e-8) for i in range(len(frames))])
    return aperture, loudness


def _z(x):
    return (x - x.mean()) / (x.std() + 1e-12)


@pytest.mark.xfail(strict=True, reason="known limitation of the shipped weights (weights/MODEL_CARD.md): on the demo "
                   "face the opening runs against the loudness, pooled r -0.10 (held-out clips: r 0.21 with the truth)")
def test_mouth_opens_with_the_speech(bundled):
    """The demo face driven by every bundled speech clip (about 35 s, 870 frames): its mouth opening
    follows the speech's loudness, and follows it better than the same loudness played backwards.

    Pooled over clips because one 5 s clip (128 frames) gives r with a standard error of about 0.09;
    with 870 frames it is about 0.034, so r > 0.1 is three standard errors from none.
    """
    from keras_speech2vid.inference.demo import demo_files

    face, demo_speech = demo_files()
    data = Path(__file__).parent / "data"
    speech = [demo_speech, data / "tmp.wav", data / "transcript.mp3", data / "vox2_00086_man_suit_red_bg.mp4",
              data / "grid_bbaf2n_man_denim.mpg", data / "grid_lbbc2a_woman_pink_top.mpg"]
    apertures, loud, backwards = [], [], []
    for clip in speech:
        aperture, loudness = _aperture_and_loudness(bundled, face, clip)
        apertures.append(_z(aperture))
        loud.append(_z(loudness))
        backwards.append(_z(loudness[::-1]))
    aperture = np.concatenate(apertures)
    assert len(aperture) > 800
    r = np.corrcoef(aperture, np.concatenate(loud))[0, 1]
    r_backwards = np.corrcoef(aperture, np.concatenate(backwards))[0, 1]
    assert r > 0.1 and r > r_backwards + 0.1, (r, r_backwards)
