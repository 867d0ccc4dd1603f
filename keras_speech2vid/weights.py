"""Weights folders: compact, checksummed, loaded without pickle.

A weights folder holds `manifest.json` and one `.npz` per model. The manifest names each model's
kind ("generator", "deblurrer", "syncnet" or "whisper_encoder"), its config (`ModelConfig`, or
`SyncNetConfig` for a SyncNet, `WhisperConfig` for a Whisper encoder), its file and the file's SHA-256,
and any further fields its writer gave (e.g. a converted model's provenance and licence). Kernels are
stored as float16 (halving the size of the 28 M-parameter generator; imported models keep float32) and
loaded as float32; biases and BatchNorm statistics stay float32. Files are read with `np.load(allow_pickle=False)`.

A folder of Keras files (`generator.keras`, `deblurrer.keras`, as training writes them) is accepted
too and loaded with `safe_mode=True`.

The bundled demo weights live in the repository's `weights/` folder, which a wheel carries as
`keras_speech2vid/bundled_weights/` (setup.py); they are the preset "demo". `SPEECH2VID_WEIGHTS` overrides.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np

from keras_speech2vid.config import ModelConfig, SyncNetConfig
from keras_speech2vid.errors import WeightsError
from keras_speech2vid.io import atomic_path, sha256, write_text  # noqa: F401  (sha256 re-exported)

# the checkout's weights/ (a source tree or an editable install), else the copy a wheel carries (setup.py)
_CHECKOUT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
_PACKAGED_WEIGHTS = Path(__file__).resolve().parent / "bundled_weights"
BUNDLED_WEIGHTS = _CHECKOUT_WEIGHTS if (_CHECKOUT_WEIGHTS / "manifest.json").is_file() else _PACKAGED_WEIGHTS
PRESETS = {"demo": BUNDLED_WEIGHTS}  # named weights folders (`Speech2Vid.from_preset`)
MANIFEST = "manifest.json"
KINDS = ("generator", "deblurrer", "syncnet", "whisper_encoder")
GENERATION_KINDS = ("generator", "deblurrer")
_ENTRY_FIELDS = {"kind", "file", "sha256", "bytes", "config", "more_files"}  # written by save_weights_dir


def default_weights_dir() -> Path:
    return Path(os.environ.get("SPEECH2VID_WEIGHTS", BUNDLED_WEIGHTS))


def preset_dir(preset) -> Path:
    """The weights folder of a preset name ("demo") or of a folder path."""
    if isinstance(preset, str) and preset in PRESETS:
        return PRESETS[preset]
    folder = Path(preset)
    if not folder.exists() and isinstance(preset, str) and os.sep not in preset and "." not in preset:
        raise WeightsError(f"unknown weights preset {preset!r}; presets: {', '.join(sorted(PRESETS))}, or a folder")
    return folder


def _builder(kind: str):
    from keras_speech2vid.models import build_deblurrer, build_generator, build_syncnet, build_whisper_encoder

    return {"generator": build_generator, "deblurrer": build_deblurrer, "syncnet": build_syncnet,
            "whisper_encoder": build_whisper_encoder}[kind]


def _config_class(kind: str):
    if kind == "whisper_encoder":
        from keras_speech2vid.models.whisper import WhisperConfig

        return WhisperConfig
    return SyncNetConfig if kind == "syncnet" else ModelConfig


def _split_arrays(arrays: dict, limit: int) -> list[dict]:
    """Group {path: array} into dicts of at most `limit` raw bytes; a larger array goes in row blocks
    named ``PATH@j/m`` (joined again by `_read_arrays`)."""
    pieces = []
    for path, value in arrays.items():
        m = max(1, -(-value.nbytes // (limit - 1024))) if value.ndim >= 1 and len(value) > 1 else 1
        if m == 1:
            pieces.append((path, value))
        else:
            pieces += [(f"{path}@{j}/{m}", block) for j, block in enumerate(np.array_split(value, m))]
    groups, size = [{}], 0
    for path, value in pieces:
        nbytes = value.nbytes + 512  # with the array's npy header and zip entry
        if groups[-1] and size + nbytes > limit:
            groups.append({})
            size = 0
        groups[-1][path] = value
        size += nbytes
    return groups


def _read_arrays(data) -> dict:
    """{path: array} of the opened .npz files `data`, row blocks joined."""
    arrays, blocks = {}, {}
    for d in data:
        for key in d.files:
            if "@" in key:
                path, jm = key.rsplit("@", 1)
                j, m = map(int, jm.split("/"))
                blocks.setdefault(path, [None] * m)[j] = d[key]
            else:
                arrays[key] = d[key]
    for path, parts in blocks.items():
        if any(p is None for p in parts):
            raise WeightsError(f"{path}: row blocks missing from the weights files")
        arrays[path] = np.concatenate(parts)
    return arrays


def save_weights_dir(out_dir, models: dict[str, tuple[str, keras.Model, object]], extra: dict | None = None,
                     keep: bool = False, max_file_mib: float | None = None,
                     details: dict[str, dict] | None = None, full_precision: bool = False) -> Path:
    """Write `models` {name: (kind, model, config)} as a compact weights folder; returns the manifest path.

    `config` is the kind's config dataclass (`ModelConfig`, `SyncNetConfig`, `WhisperConfig`); `extra`
    adds top-level manifest fields. With `keep`, the models already listed in the folder's manifest stay
    (a model of the same name is replaced). With `max_file_mib`, each model is split over files
    `<name>.npz`, `<name>-1.npz`, … of at most that size (for transfers with a per-file limit: the GPU
    machine returns files under 16 MiB). `details` {name: fields} adds fields to a model's manifest entry
    (provenance, licence, …), after the ones written here; they cannot replace those. With
    `full_precision`, kernels stay float32 too (an imported model keeps its exact values).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = {"format": "keras_speech2vid-weights-1", "models": {}}
    if keep and (out_dir / MANIFEST).is_file():
        manifest = read_manifest(out_dir)
    manifest.update(extra or {})
    details = details or {}
    if set(details) - set(models):
        raise ValueError(f"details must name models being written. Received: {sorted(set(details) - set(models))}")
    for name, fields in details.items():
        if set(fields) & _ENTRY_FIELDS:
            raise ValueError(f"details may not replace the fields {sorted(_ENTRY_FIELDS)}. "
                             f"Received: {name!r}: {sorted(set(fields) & _ENTRY_FIELDS)}")
    for name, (kind, model, config) in models.items():
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}. Received: kind={kind!r}")
        arrays = {}
        for v in model.weights:
            value = np.asarray(v.numpy())
            half = value.ndim >= 2 and not full_precision
            arrays[v.path] = value.astype(np.float16) if half else value.astype(np.float32)
        # raw bytes bound the compressed file's size
        groups = _split_arrays(arrays, int(max_file_mib * (1 << 20))) if max_file_mib else [arrays]
        files = []
        for i, group in enumerate(groups):
            target = out_dir / (f"{name}.npz" if i == 0 else f"{name}-{i}.npz")
            with atomic_path(target) as tmp:
                with open(tmp, "wb") as f:
                    np.savez_compressed(f, **group)
            files.append({"file": target.name, "sha256": sha256(target), "bytes": target.stat().st_size})
        entry = {"kind": kind, **files[0], "config": config.to_dict()}
        if len(files) > 1:
            entry["more_files"] = files[1:]
        manifest["models"][name] = {**entry, **details.get(name, {})}
    return write_text(out_dir / MANIFEST, json.dumps(manifest, indent=2) + "\n")


def read_manifest(weights_dir=None) -> dict:
    weights_dir = Path(weights_dir) if weights_dir is not None else default_weights_dir()
    if not weights_dir.is_dir():
        raise WeightsError(f"{weights_dir}: no such weights folder")
    path = weights_dir / MANIFEST
    if not path.is_file():
        raise WeightsError(f"{weights_dir}: not a weights folder (no {MANIFEST}); train one or pass --weights")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise WeightsError(f"{path}: unreadable manifest ({e})") from None


def _checked_file(weights_dir: Path, entry: dict) -> Path:
    path = weights_dir / entry["file"]
    if not path.is_file():
        raise WeightsError(f"{path}: weights file missing")
    if "bytes" in entry and path.stat().st_size != entry["bytes"]:
        raise WeightsError(f"{path}: truncated or altered ({path.stat().st_size} bytes, expected {entry['bytes']})")
    if sha256(path) != entry["sha256"]:
        raise WeightsError(f"{path}: SHA-256 checksum mismatch (corrupt or altered file)")
    return path


def _load_npz_model(weights_dir: Path, name: str, entry: dict) -> tuple[keras.Model, ModelConfig]:
    paths = [_checked_file(weights_dir, e) for e in [entry, *entry.get("more_files", [])]]
    path = paths[0]
    if entry.get("kind") not in KINDS:
        raise WeightsError(f"{weights_dir / MANIFEST}: model {name!r} has unknown kind {entry.get('kind')!r}")
    config = _config_class(entry["kind"]).from_dict(entry["config"])
    model = _builder(entry["kind"])(config)
    try:
        opened = [np.load(p, allow_pickle=False) for p in paths]
        try:
            data = _read_arrays(opened)
        finally:
            for d in opened:
                d.close()
        for v in model.weights:
            if v.path not in data:
                raise WeightsError(f"{path}: no value for {v.path}; the file does not match its config")
            value = data[v.path]
            if tuple(value.shape) != tuple(v.shape):
                raise WeightsError(f"{path}: {v.path} has shape {value.shape}, the model needs {tuple(v.shape)}")
            v.assign(value.astype(np.float32))
    except WeightsError:
        raise
    except Exception as e:  # noqa: BLE001 - zip/npy errors all mean an unusable file
        raise WeightsError(f"{path}: unreadable weights ({type(e).__name__}: {e})") from None
    return model, config


def load_keras_file(path) -> keras.Model:
    """Load a `.keras` file with safe_mode; clear WeightsError on failure."""
    import keras_speech2vid.models.layers  # noqa: F401 - registers the custom layers for deserialisation

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file missing")
    import zipfile

    if not zipfile.is_zipfile(path):  # Keras would say "File not found" of a truncated file
        raise WeightsError(f"{path}: not a Keras file (truncated or another format: no zip archive)")
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as e:  # noqa: BLE001
        raise WeightsError(f"{path}: unreadable Keras file ({type(e).__name__}: {e})") from None


def load_weights_dir(weights_dir=None, kinds=None) -> dict[str, tuple[str, keras.Model, ModelConfig | None]]:
    """Load the models of a weights folder (those of `kinds`, default all): {name: (kind, model, config)}.

    Compact folders are checked against their SHA-256 before loading. A folder of `.keras` files
    (training output) yields `generator` and, when present, `deblurrer`.
    """
    weights_dir = Path(weights_dir) if weights_dir is not None else default_weights_dir()
    if weights_dir.is_dir() and not (weights_dir / MANIFEST).exists() and (weights_dir / "generator.keras").exists():
        out = {}
        for kind in kinds or KINDS:
            path = weights_dir / f"{kind}.keras"
            if path.exists():
                out[kind] = (kind, load_keras_file(path), None)
        return out
    manifest = read_manifest(weights_dir)
    models = manifest.get("models") or {}
    if not models:
        raise WeightsError(f"{weights_dir / MANIFEST}: lists no models")
    return {name: (entry["kind"], *_load_npz_model(weights_dir, name, entry)) for name, entry in models.items()
            if kinds is None or entry.get("kind") in kinds}


class GenerationModels(NamedTuple):
    """The generation models of a weights folder: the main generator (the most identity images), the
    1-image generator when there is also one, and the deblurrer when there is one."""

    generator: keras.Model
    generator_1img: keras.Model | None
    deblurrer: keras.Model | None


def load_models(weights_dir=None) -> GenerationModels:
    """The generation models of a weights folder (None: the bundled one): one loader for generation,
    evaluation, export and serving.

    Raises:
      WeightsError: the folder is missing, unreadable, corrupt, or holds no generator; for the bundled
        folder, that no trained weights are bundled yet.
    """
    folder = Path(weights_dir) if weights_dir is not None else default_weights_dir()
    if weights_dir is None and not (folder / MANIFEST).exists() and not (folder / "generator.keras").exists():
        if os.environ.get("SPEECH2VID_WEIGHTS"):
            raise WeightsError(f"{folder}: SPEECH2VID_WEIGHTS names a folder with no weights "
                               f"({'missing' if not folder.exists() else 'no ' + MANIFEST}); fix or unset it")
        raise WeightsError(f"no trained Speech2Vid weights are bundled yet ({folder} holds none): "
                           f"train a model and pass its folder with --weights DIR")
    if folder.exists() and not folder.is_dir():
        raise WeightsError(f"{folder}: not a weights folder (a file)")
    try:
        models = load_weights_dir(folder, kinds=GENERATION_KINDS)
    except PermissionError as e:
        raise WeightsError(f"{folder}: unreadable weights folder ({e.strerror})") from None
    generators = [m for kind, m, _ in models.values() if kind == "generator"]
    deblurrers = [m for kind, m, _ in models.values() if kind == "deblurrer"]
    if not generators:
        raise WeightsError(f"{folder}: holds no generator")
    from keras_speech2vid.models.generator import identity_images

    by_count = {identity_images(m): m for m in generators}
    one = by_count.pop(1, None)
    main = by_count[max(by_count)] if by_count else None
    if main is None:
        main, one = one, None
    return GenerationModels(main, one, deblurrers[0] if deblurrers else None)


def pack_runs(run_dirs, out_dir, extra: dict | None = None, keep: bool = False,
              max_file_mib: float | None = None) -> Path:
    """Turn training RUN_DIRs (each `<task>.keras` + `run.json`) into one compact weights folder.

    A 5-image generator is stored as "generator", a 1-image one as "generator_1img", a deblurrer
    as "deblurrer", a SyncNet (`train-syncnet`) as "syncnet". With `keep`, models already in OUT that
    the runs do not replace stay. Returns the manifest path.
    """
    models = {}
    for run_dir in map(Path, run_dirs):
        path = run_dir / "run.json"
        if not path.is_file():
            raise WeightsError(f"{run_dir}: not a training run folder (no run.json)")
        run = json.loads(path.read_text())
        kind = run["task"]
        if kind not in KINDS:
            raise WeightsError(f"{path}: unknown task {kind!r}")
        config = _config_class(kind).from_dict(run["model"])
        model = load_keras_file(run_dir / f"{kind}.keras")
        name = kind if kind != "generator" or config.identity_images != 1 else "generator_1img"
        if name in models:
            raise WeightsError(f"{run_dir}: a second {name} among the runs")
        models[name] = (kind, model, config)
    return save_weights_dir(out_dir, models, extra, keep=keep, max_file_mib=max_file_mib)
