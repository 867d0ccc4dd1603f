"""Export for serving: a TF Serving SavedModel with named signatures, and ONNX files.

Library functions take Keras models (`export_saved_model`, `export_onnx`); `export_weights` loads a
weights folder first and is what ``speech2vid export`` runs. See `saved_model` for the signatures and
`onnx` for the ONNX files and what tf2onnx needs.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from keras_speech2vid.errors import Speech2VidError

from keras_speech2vid.export.onnx import export_onnx, keras_to_onnx
from keras_speech2vid.export.saved_model import (
    DEFAULT_NAME,
    FRAMES,
    SIGNATURES,
    Speech2VidModule,
    export_saved_model,
    next_version,
)

FORMATS = ("savedmodel", "onnx")


@dataclasses.dataclass
class ExportResult:
    """What `export_weights` wrote: the SavedModel version folder or the ONNX files, and notes for the user."""

    format: str
    paths: list[Path]
    deblurred: bool
    notes: list[str] = dataclasses.field(default_factory=list)
    max_abs_diff: dict[str, float] = dataclasses.field(default_factory=dict)
    psnr: dict[str, float] = dataclasses.field(default_factory=dict)


def load_models(weights_dir):
    """(generator, deblurrer or None) from a weights folder (`keras_speech2vid.weights.load_models`)."""
    import keras_speech2vid.models  # noqa: F401 - registers the custom layers before any .keras load
    from keras_speech2vid.weights import load_models as load

    models = load(weights_dir)
    return models.generator, models.deblurrer


def export_weights(weights_dir, export_dir, *, format: str = "savedmodel", name: str = DEFAULT_NAME,
                   version: int | None = None, precision: str = "fp32", **kwargs) -> ExportResult:
    """Load `weights_dir` and export it: SavedModel to ``export_dir/name/version`` or ONNX files into
    `export_dir`. Extra keyword arguments go to `export_saved_model` / `export_onnx`. ``precision="int8"``
    (ONNX only) writes the identity encoder and the int8 per-frame graph instead (`int8.export_int8`).

    The backend of ``speech2vid export``: user errors (format, name, version, weights) raise
    `Speech2VidError` subclasses with a one-line message, checked before the weights are loaded.
    """
    if format not in FORMATS:
        raise Speech2VidError(f"format must be one of {FORMATS}, not {format!r}")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise Speech2VidError(f"name must be letters, digits, '_', '.' or '-', not {name!r}")
    if version is not None and int(version) < 1:
        raise Speech2VidError(f"version must be a positive integer, not {version}")
    if precision not in ("fp32", "int8"):
        raise Speech2VidError(f"precision must be fp32 or int8, not {precision!r}")
    if precision == "int8" and format != "onnx":
        raise Speech2VidError("--precision int8 is exported as ONNX only: add --format onnx")
    if format == "savedmodel" and version is not None and (Path(export_dir) / name / str(int(version))).exists():
        raise Speech2VidError(f"{Path(export_dir) / name / str(int(version))}: already exists; pick another --version")
    generator, deblurrer = load_models(weights_dir)
    notes = []
    if deblurrer is None:
        notes.append(f"{weights_dir}: no deblurrer, exporting without deblurring (frames are the generator's)")
    if format == "savedmodel":
        path = export_saved_model(generator, export_dir, deblurrer, name=name, version=version, **kwargs)
        return ExportResult(format, [path], deblurrer is not None, notes)
    if precision == "int8":
        from keras_speech2vid.export.int8 import export_int8

        results = export_int8(generator, deblurrer, export_dir)
        return ExportResult(format, [r["path"] for r in results.values()], deblurrer is not None, notes,
                            psnr={k: r["psnr"] for k, r in results.items() if "psnr" in r})
    results = export_onnx(generator, export_dir, deblurrer, **kwargs)
    return ExportResult(format, [r["path"] for r in results.values()], deblurrer is not None, notes,
                        {k: r["max_abs_diff"] for k, r in results.items() if r["max_abs_diff"] is not None})


__all__ = [
    "DEFAULT_NAME",
    "FORMATS",
    "FRAMES",
    "SIGNATURES",
    "ExportResult",
    "Speech2VidModule",
    "export_onnx",
    "export_saved_model",
    "export_weights",
    "keras_to_onnx",
    "load_models",
    "next_version",
]
