"""Fixtures of the bad-input matrix: one folder of good and bad input files (hashed before and after every
case), a tiny weights folder, a tiny SavedModel export and the serving client."""

import hashlib
import shutil
import struct
import subprocess

import numpy as np
import pytest

from tests.conftest import CLIPS, DATA
from tests.export.conftest import client, tiny_export, tiny_models  # noqa: F401 (fixtures)
from tests.inference.conftest import tiny_weights  # noqa: F401 (fixture)


def _float_wav(path, samples, rate=16000):
    """A mono IEEE-float WAV (format 3), which can hold NaN and Inf."""
    data = np.asarray(samples, "<f4").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 3, 1, rate, rate * 4, 4, 32) + b"data" + struct.pack("<I", len(data))
    path.write_bytes(header + data)


@pytest.fixture(scope="session")
def inputs(tmp_path_factory, tiny_weights):  # noqa: F811
    """The input files every case reads; none of them may change."""
    import cv2

    from keras_speech2vid.io import ffmpeg_exe

    d = tmp_path_factory.mktemp("inputs")
    shutil.copy(DATA / "obama.jpg", d / "face.jpg")
    shutil.copy(DATA / "tmp.wav", d / "speech.wav")
    shutil.copy(CLIPS[2], d / "video.mp4")
    for name in ("empty.jpg", "empty.wav", "empty.mp4"):
        (d / name).write_bytes(b"")
    for name in ("text.jpg", "text.wav", "text.mp4"):
        (d / name).write_text("hello, this is not media\n")
    (d / "truncated.jpg").write_bytes((DATA / "obama.jpg").read_bytes()[:1500])
    (d / "truncated.mp4").write_bytes(CLIPS[2].read_bytes()[:4000])
    cv2.imwrite(str(d / "blank.png"), np.full((200, 200, 3), 120, np.uint8))
    cv2.imwrite(str(d / "small.png"), np.full((20, 20, 3), 120, np.uint8))
    wave = np.sin(np.arange(16000) / 7.0).astype(np.float32) * 0.3
    wave[8000] = np.nan
    _float_wav(d / "nan.wav", wave)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(CLIPS[2]), "-an", "-c:v", "copy", str(d / "mute.mp4")],
                   check=True)
    (d / "notes.txt").write_text("a file where a folder is expected\n")
    (d / "empty_dir").mkdir()
    (d / "link.jpg").hardlink_to(d / "face.jpg")
    shutil.copytree(tiny_weights, d / "weights")
    bad = d / "weights_truncated"
    shutil.copytree(tiny_weights, bad)
    npz = bad / "generator.npz"
    npz.write_bytes(npz.read_bytes()[:2000])
    return d


def tree_hashes(folder) -> dict:
    """{relative path: SHA-256} of every file under `folder` (dotfiles too: a temporary left is a change)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}
