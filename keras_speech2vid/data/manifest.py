"""The manifest of a prepared folder (written by `prepare`), read by every consumer of the folder."""

from __future__ import annotations

import json
from pathlib import Path

from keras_speech2vid.errors import Speech2VidError


def read_manifest(data_dir) -> dict:
    path = Path(data_dir) / "manifest.json"
    if not path.is_file():
        raise Speech2VidError(f"{data_dir}: no manifest.json; run `speech2vid prepare` first")
    return json.loads(path.read_text())


def dropped_tracks(manifest: dict, video: dict) -> set[int]:
    """The tracks of `video` that training skips: those SyncNet marked inactive, when the manifest drops them."""
    if manifest.get("inactive", "drop") != "drop":
        return set()
    return {t["track"] for t in video["tracks"] if t.get("active") is False}
