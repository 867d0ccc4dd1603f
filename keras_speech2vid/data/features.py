"""Pretrained audio features of a prepared folder: the Whisper encoder's, one file per video.

`add_whisper_features(DATA_DIR)` decodes each video's audio (its manifest "file") and writes
DATA_DIR/whisper/<video_id>.npy, (T, 384) float16 at 50 Hz (`whisper.whisper_features`; frame t centred at
0.02·t s of the file's audio), each file renamed into place when whole, so an interrupted run resumes where
it stopped. DATA_DIR/whisper/features.json names the encoder (its SHA-256): features made by another
encoder are made again. `dataset.make_dataset` reads them for a generator with the Whisper front end.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from keras_speech2vid.errors import Speech2VidError
from keras_speech2vid.io import atomic_path, write_text

FOLDER = "whisper"


def whisper_path(data_dir, video_id: str) -> Path:
    return Path(data_dir) / FOLDER / f"{video_id}.npy"


def add_whisper_features(data_dir, progress: bool = True) -> int:
    """Write the missing Whisper feature files of DATA_DIR (module doc); returns how many were written."""
    from keras_speech2vid import io
    from keras_speech2vid.data.manifest import read_manifest
    from keras_speech2vid.whisper import shared_encoder, shared_encoder_entry, whisper_features

    data_dir = Path(data_dir)
    manifest = read_manifest(data_dir)
    folder = data_dir / FOLDER
    folder.mkdir(exist_ok=True)
    record = {"encoder_sha256": shared_encoder_entry()[2]["sha256"], "rate": 50, "dtype": "float16"}
    meta = folder / "features.json"
    if meta.is_file() and json.loads(meta.read_text()) != record:
        for old in folder.glob("*.npy"):  # another encoder's features
            old.unlink()
    write_text(meta, json.dumps(record, indent=2) + "\n")
    encoder = shared_encoder()
    written = 0
    for i, video in enumerate(manifest["videos"]):
        path = whisper_path(data_dir, video["video_id"])
        if path.is_file():
            continue
        source = Path(video["file"])
        if not source.is_file():
            raise Speech2VidError(f"{source}: the source of {video['video_id']} is gone; its audio is needed for "
                                  "the Whisper features (run from the folder prepare ran in)")
        features = whisper_features(io.decode_audio(source), encoder).astype(np.float16)
        with atomic_path(path) as tmp:
            np.save(tmp, features)
        written += 1
        if progress and written % 25 == 0:
            print(f"whisper features: {i + 1}/{len(manifest['videos'])} videos", flush=True)
    return written
