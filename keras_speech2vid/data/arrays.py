"""Prepared data as compact array chunks, for machines without TensorFlow (the JAX driver on a GPU machine).

`export_arrays(DATA_DIR, OUT)` (needs TensorFlow, to read the TFRecords) writes, per split, chunks
``<split>-0000.npz`` … of whole tracks, each at most `max_chunk_mib` (the GPU machine takes 64 MiB a call):

* ``jpeg`` (uint8, every stored frame's JPEG bytes end to end) and ``offsets`` (int64, N + 1);
* ``track`` (int32, N: the frame's track, numbered within the chunk) and ``frame_index`` (int32, N);
* ``targets`` (int64, M: the frames with frame_index % every == 0) and ``mfcc`` (float16, M × 12 × 35:
  their audio windows, cut by the same `audio.gather_windows` call as `dataset`, av_offset applied);
* ``video_id`` (str, T) and ``track_id`` (int32, T): where each track came from.

`arrays.json` (written last, so an interrupted export does not look finished) lists the chunks with their
sizes and SHA-256. Tracks marked inactive by SyncNet are left out when the manifest drops them, as
`dataset` does. A track larger than a chunk is cut into pieces, each sampled as a track of its own.

`ArrayData(OUT, split)` reads them back with NumPy and OpenCV only, and gives the batches of
`dataset.make_dataset` (``({"mfcc": (B, 12, 35, 1), "identity": (B, 112, 112, 3n)}, (B, 109, 109, 3))``),
with identities drawn by the same rule (`sampling.identity_positions`). A training batch depends only
on (seed, step), so a resumed run reads the batches it would have read.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from keras_speech2vid.data import sampling
from keras_speech2vid.errors import Speech2VidError
from keras_speech2vid.io import atomic_path, sha256, write_text

ARRAYS_JSON = "arrays.json"
FORMAT = "keras_speech2vid-arrays-1"
MIB = 1 << 20


class _ChunkWriter:
    """Collects tracks and writes a chunk whenever the next track would pass the size limit."""

    def __init__(self, out_dir: Path, split: str, limit: int):
        self.out_dir, self.split, self.limit = out_dir, split, limit
        self.tracks, self.size, self.chunks = [], 0, []

    @staticmethod
    def nbytes(track) -> int:
        # a conservative estimate of the .npz: payload plus the per-frame index arrays
        return sum(len(b) for b in track["jpeg"]) + track["mfcc"].nbytes + 24 * len(track["jpeg"]) + 256

    def add(self, track) -> None:
        size = self.nbytes(track)
        if self.tracks and self.size + size > self.limit - 4096:
            self.flush()
        self.tracks.append(track)
        self.size += size

    def flush(self) -> None:
        if not self.tracks:
            return
        blobs = [b for t in self.tracks for b in t["jpeg"]]
        lengths = [len(t["jpeg"]) for t in self.tracks]
        starts = np.cumsum([0] + lengths)[:-1]
        arrays = {
            "jpeg": np.frombuffer(b"".join(blobs), np.uint8),
            "offsets": np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64),
            "track": np.repeat(np.arange(len(lengths), dtype=np.int32), lengths),
            "frame_index": np.concatenate([t["frame_index"] for t in self.tracks]).astype(np.int32),
            "targets": np.concatenate([t["targets"] + s for t, s in zip(self.tracks, starts)]).astype(np.int64),
            "mfcc": np.concatenate([t["mfcc"] for t in self.tracks]).astype(np.float16),
            "video_id": np.array([t["video_id"] for t in self.tracks]),
            "track_id": np.array([t["track_id"] for t in self.tracks], np.int32),
        }
        path = self.out_dir / f"{self.split}-{len(self.chunks):04d}.npz"
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
        if path.stat().st_size > self.limit:
            raise Speech2VidError(f"{path}: {path.stat().st_size / MIB:.1f} MiB, over the {self.limit / MIB:g} MiB "
                                  "chunk limit (a bug in the size estimate)")
        self.chunks.append({"file": path.name, "bytes": path.stat().st_size, "sha256": sha256(path),
                            "frames": len(blobs), "targets": len(arrays["targets"]), "tracks": len(lengths)})
        self.tracks, self.size = [], 0


def _pieces(track, limit: int):
    """`track` itself, or consecutive pieces of it that each fit a chunk."""
    if _ChunkWriter.nbytes(track) <= limit - 4096:
        yield track
        return
    per_frame = max(1, _ChunkWriter.nbytes(track) // len(track["jpeg"]) + 1)
    step = max(1, (limit - 8192) // per_frame)
    for lo in range(0, len(track["jpeg"]), step):
        hi = lo + step
        keep = (track["targets"] >= lo) & (track["targets"] < hi)
        yield {**track, "jpeg": track["jpeg"][lo:hi], "frame_index": track["frame_index"][lo:hi],
               "targets": track["targets"][keep] - lo, "mfcc": track["mfcc"][keep]}


def export_arrays(data_dir, out_dir, splits=("train", "val"), max_chunk_mib: float = 60, every: int | None = None,
                  quality: int | None = None, audio_config=None, progress: bool = True) -> dict:
    """DATA_DIR (from `speech2vid prepare`) → OUT_DIR of array chunks (module doc); returns arrays.json's content.

    `every` defaults to the manifest's; `quality` re-encodes the JPEGs (smaller chunks, e.g. 85)."""
    import cv2
    import tensorflow as tf

    from keras_speech2vid import audio
    from keras_speech2vid.data.dataset import parse_track
    from keras_speech2vid.data.manifest import dropped_tracks, read_manifest

    if max_chunk_mib <= 0.1:
        raise ValueError(f"max_chunk_mib must be > 0.1. Received: max_chunk_mib={max_chunk_mib}")
    if quality is not None and not 1 <= quality <= 100:
        raise ValueError(f"quality must be in [1, 100]. Received: quality={quality}")
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    if out_dir.resolve() == data_dir.resolve():
        raise Speech2VidError(f"{out_dir}: the arrays would overwrite the prepared data; choose another --out")
    manifest = read_manifest(data_dir)
    every = int(every or manifest.get("every", 5))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / ARRAYS_JSON).unlink(missing_ok=True)  # not finished until written again
    limit = int(max_chunk_mib * MIB)
    record = {"format": FORMAT, "source": str(data_dir), "every": every, "quality": quality, "splits": {}}
    for split in splits:
        videos = [v for v in manifest["videos"] if v["split"] == split]
        writer = _ChunkWriter(out_dir, split, limit)
        for i, video in enumerate(videos):
            inactive = dropped_tracks(manifest, video)
            for raw in tf.data.TFRecordDataset(str(data_dir / video["record"])):
                track = parse_track(raw)
                if int(track["track"]) in inactive:
                    continue
                k = track["frame_index"].numpy()
                targets = np.flatnonzero(k % every == 0)
                windows = audio.gather_windows(track["mfcc"], k[targets], fps=track["fps"],
                                               offset=float(video.get("av_offset", 0.0)), config=audio_config)
                blobs = [bytes(b) for b in track["frames"].numpy()]
                if quality is not None:
                    blobs = [cv2.imencode(".jpg", cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR),
                                          [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes() for b in blobs]
                whole = {"jpeg": blobs, "frame_index": k, "targets": targets,
                         "mfcc": windows.numpy()[..., 0].astype(np.float16),
                         "video_id": video["video_id"], "track_id": int(track["track"])}
                for piece in _pieces(whole, limit):
                    writer.add(piece)
            if progress and (i + 1) % 50 == 0:
                print(f"{split}: {i + 1}/{len(videos)} videos, {len(writer.chunks)} chunks written", flush=True)
        writer.flush()
        record["splits"][split] = writer.chunks
    write_text(out_dir / ARRAYS_JSON, json.dumps(record, indent=2) + "\n")
    return record


def is_arrays_dir(path) -> bool:
    return (Path(path) / ARRAYS_JSON).is_file()


def read_arrays_json(arrays_dir) -> dict:
    path = Path(arrays_dir) / ARRAYS_JSON
    if not path.is_file():
        raise Speech2VidError(f"{arrays_dir}: no {ARRAYS_JSON}; make it with `speech2vid export-arrays`")
    meta = json.loads(path.read_text())
    if meta.get("format") != FORMAT:
        raise Speech2VidError(f"{path}: not an arrays folder of this version (format {meta.get('format')!r})")
    return meta


def _decode(blob: np.ndarray) -> np.ndarray:
    import cv2

    image = cv2.imdecode(blob, cv2.IMREAD_COLOR)
    if image is None or image.shape != (112, 112, 3):
        raise Speech2VidError("an array chunk holds a frame that is not a 112×112 JPEG")
    return image[..., ::-1]  # BGR → RGB


class ArrayData:
    """One split of an arrays folder, in memory (JPEG bytes; frames decoded per batch, or all at once
    with `decode_all`). See the module doc."""

    def __init__(self, arrays_dir, split: str = "train", identity_images: int = 5, min_identity_distance: int = 25,
                 decode_all: bool = False):
        arrays_dir = Path(arrays_dir)
        meta = read_arrays_json(arrays_dir)
        chunks = meta["splits"].get(split) or []
        if not chunks:
            raise Speech2VidError(f"{arrays_dir}: no chunks for split {split!r}")
        self.every, self.n, self.min_distance = meta["every"], identity_images, min_identity_distance
        parts = {key: [] for key in ("jpeg", "offsets", "track", "frame_index", "targets", "mfcc")}
        frames = tracks = jpeg_bytes = 0
        for chunk in chunks:
            file = arrays_dir / chunk["file"]
            if not file.is_file() or file.stat().st_size != chunk["bytes"] or sha256(file) != chunk["sha256"]:
                raise Speech2VidError(f"{file}: missing, truncated or altered (its size or SHA-256 differs "
                                      f"from {ARRAYS_JSON})")
            with np.load(file, allow_pickle=False) as d:
                parts["jpeg"].append(d["jpeg"])
                parts["offsets"].append(d["offsets"][:-1] + jpeg_bytes)
                parts["track"].append(d["track"].astype(np.int64) + tracks)
                parts["frame_index"].append(d["frame_index"])
                parts["targets"].append(d["targets"] + frames)
                parts["mfcc"].append(d["mfcc"])
                frames += len(d["track"])
                tracks += len(d["track_id"])
                jpeg_bytes += len(d["jpeg"])
        joined = {key: np.concatenate(value) for key, value in parts.items()}
        self.jpeg, self.track, self.frame_index = joined["jpeg"], joined["track"], joined["frame_index"]
        self.offsets = np.append(joined["offsets"], jpeg_bytes)
        self.targets, self.mfcc = joined["targets"], joined["mfcc"]
        # each track's first frame and length, for the identity rule
        self.track_start = np.searchsorted(self.track, np.arange(tracks))
        self.track_length = np.bincount(self.track, minlength=tracks)
        self.frames = None
        if decode_all:
            self.frames = np.stack([self._decode(i) for i in range(frames)])

    def __len__(self) -> int:
        """The number of targets."""
        return len(self.targets)

    def _decode(self, i: int) -> np.ndarray:
        return _decode(self.jpeg[self.offsets[i]:self.offsets[i + 1]])

    def _image(self, i: int) -> np.ndarray:
        return self.frames[i] if self.frames is not None else self._decode(i)

    def identity_frames(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(len(rows), n) frame numbers of the identity images of targets `rows` (the shared rule)."""
        frame = self.targets[rows]
        track = self.track[frame]
        start, length = self.track_start[track], self.track_length[track]
        pos = sampling.identity_positions(length[:, None].astype(np.float64), (frame - start)[:, None].astype(np.float64),
                                          rng.random((len(rows), self.n)), float(self.min_distance), np)
        return start[:, None] + pos.astype(np.int64)

    def batch(self, rows: np.ndarray, rng: np.random.Generator):
        """({"mfcc", "identity"}, target) of the targets `rows`, as float32 NumPy arrays."""
        ids = self.identity_frames(rows, rng)
        identity = np.stack([np.concatenate([self._image(i) for i in row], axis=-1) for row in ids])
        target = np.stack([self._image(i)[1:110, 1:110] for i in self.targets[rows]])
        mfcc = self.mfcc[rows].astype(np.float32)[..., None]
        return ({"mfcc": mfcc, "identity": identity.astype(np.float32) / 255.0}, target.astype(np.float32) / 255.0)

    def train_batch(self, step: int, batch_size: int, seed: int = 0):
        """Batch `step` of a run: targets drawn uniformly with replacement, from (seed, step) only."""
        rng = np.random.default_rng([seed, step])
        return self.batch(rng.integers(0, len(self), batch_size), rng)

    def val_batches(self, batch_size: int, steps: int | None = None, seed: int = 0):
        """Every target in order (the last batch may be smaller), the same identities on every call."""
        for i, lo in enumerate(range(0, len(self), batch_size)):
            if steps is not None and i >= steps:
                return
            yield self.batch(np.arange(lo, min(lo + batch_size, len(self))), np.random.default_rng([seed, i]))
