"""Dataset preparation: talking videos → aligned face tracks + MFCC → TFRecord shards + manifest.

Layout of DATA_DIR::

    records/<video_id>.tfrecord   one shard per video, one tf.train.Example per face track
    videos/<video_id>.json        per-video result: written last, so its presence means "done"
    manifest.json                 the whole corpus: videos, tracks, frames, splits, skipped files

A track example holds every frame of the track as a 112×112 JPEG of the aligned face, the frame
indices and timestamps, the video's fps, and the padded MFCC of the whole video's audio (12 × F,
spec §1.2), so the loader can cut the window of any frame with `audio.gather_windows`.

Robustness: each shard is written to a temporary name and renamed; the per-video JSON follows, so a
kill leaves either a finished video or nothing that counts (stale temporaries are removed on the
next run). Re-running skips finished videos and rewrites nothing. ``shard=(i, N)`` takes the videos
whose stable hash is i mod N, so N machines can split one corpus into the same DATA_DIR layout.
Unreadable videos, videos without audio and videos without a usable face track are skipped and
listed with their reason.

Splits are by video, or by speaker when a speaker map is given — never by frame. A group (speaker or
video) goes to validation when it is listed in `val_groups`, or else when its stable hash falls
below `val_fraction`.

Stage (ii), AV sync and active speaker (the paper's SyncNet step), runs when SyncNet weights exist
(the bundled ones, or `sync_weights`) unless ``sync=False``: each track gets ``sync`` (`sync.SyncResult`:
offset in frames within ±15, confidence, min distance) and ``active`` (confidence ≥ `sync_threshold`;
None for tracks shorter than `sync_min_seconds`, which are not judged). The video's ``av_offset``
(seconds, positive = audio later) is then the offset of its most confident active track (0 when none);
the loader reads it from the manifest and skips inactive tracks when ``inactive="drop"`` (the default;
"flag" keeps them, marked). A re-run measures finished videos that lack a measurement by this SyncNet
(its checksum is recorded), without re-preparing them. An offset edited into the manifest by hand (one
that differs from the measured one) is kept by later runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Iterable

import numpy as np

from keras_speech2vid.errors import Speech2VidError

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = {".mp4", ".mpg", ".mpeg", ".avi", ".mov", ".mkv", ".flv", ".webm", ".m4v"}
JPEG_QUALITY = 95


@dataclasses.dataclass(frozen=True)
class PrepareConfig:
    every: int = 5  # targets are every `every`-th frame of a track (used by the loader)
    val_fraction: float = 0.1
    min_track_frames: int = 10  # shorter tracks are dropped
    jpeg_quality: int = JPEG_QUALITY
    smooth: bool = True  # temporal smoothing of the alignment (face.track)
    sync: bool = True  # stage (ii) when SyncNet weights exist
    sync_weights: str | None = None  # weights folder with a "syncnet" (None: the bundled weights)
    # tracks below this confidence are taken for not the speaker. The bundled SyncNet on the 18 validation
    # clips of >= 2 s (`speech2vid evaluate-sync`): real 0.054-0.247 (15 of 18 >= 0.08), the same clips
    # with another clip's audio 0.011-0.090 (16 of 18 below 0.08)
    sync_threshold: float = 0.08
    # shorter tracks are measured and recorded, but neither judged nor used for the video's offset: on
    # 1.2 s clips the offset estimate is noisy (±1 frame on a third of them) and the confidence is not on
    # the scale of longer clips (shifts into the silent padding inflate the median)
    sync_min_seconds: float = 2.0
    inactive: str = "drop"  # what the loader does with inactive tracks: "drop" or "flag" (keep, marked)

    def __post_init__(self):
        checks = {"every": self.every >= 1, "val_fraction": 0.0 <= self.val_fraction < 1.0,
                  "min_track_frames": self.min_track_frames >= 1, "jpeg_quality": 1 <= self.jpeg_quality <= 100,
                  "sync_threshold": self.sync_threshold >= 0.0}
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"invalid {name}. Received: {name}={getattr(self, name)!r}")
        if self.inactive not in ("drop", "flag"):
            raise ValueError(f"inactive must be 'drop' or 'flag'. Received: inactive={self.inactive!r}")


def stable_hash(text: str) -> float:
    """A number in [0, 1) from `text`, the same on every machine and run."""
    return int(hashlib.sha1(text.encode()).hexdigest()[:12], 16) / float(16**12)


def find_videos(inputs: Iterable) -> list[Path]:
    """Video files among `inputs` (files, or folders searched recursively), sorted."""
    found = []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            found += [p for p in item.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()]
        elif item.exists():
            found.append(item)
        else:
            raise Speech2VidError(f"{item}: no such file or folder")
    return sorted(set(found))


def video_id(path: Path) -> str:
    return path.stem


def split_of(group: str, val_fraction: float, val_groups: Iterable[str] = ()) -> str:
    if group in set(val_groups):
        return "val"
    return "val" if stable_hash("split:" + group) < val_fraction else "train"


def _bytes(values):
    import tensorflow as tf

    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _ints(values):
    import tensorflow as tf

    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def _floats(values):
    import tensorflow as tf

    return tf.train.Feature(float_list=tf.train.FloatList(value=np.asarray(values, np.float32).ravel().tolist()))


def track_example(vid: str, track: int, indices, jpegs, fps: float, mfcc: np.ndarray) -> bytes:
    """Serialise one track as a tf.train.Example (see `dataset.FEATURES` for the parser)."""
    import tensorflow as tf

    feature = {
        "video_id": _bytes([vid.encode()]),
        "track": _ints([track]),
        "frame_index": _ints(indices),
        "timestamp": _floats(np.asarray(indices, np.float64) / fps),
        "frames": _bytes(jpegs),
        "fps": _floats([fps]),
        "mfcc": _floats(mfcc),
        "mfcc_frames": _ints([mfcc.shape[1]]),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _encode_jpeg(face: np.ndarray, quality: int) -> bytes:
    import cv2

    ok, data = cv2.imencode(".jpg", cv2.cvtColor(face, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise Speech2VidError("JPEG encoding failed")
    return data.tobytes()


_SYNCNETS: dict = {}  # one SyncNet per worker process and weights folder


def _syncnet(config: PrepareConfig):
    """The SyncNet stage (ii) uses, or None (off, or no weights)."""
    if not config.sync:
        return None
    key = config.sync_weights
    if key not in _SYNCNETS:
        from keras_speech2vid.sync import SyncNet

        _SYNCNETS[key] = SyncNet.find(config.sync_weights)
    return _SYNCNETS[key]


def sync_entry(entry: dict, crops: dict, mfcc: np.ndarray, config: PrepareConfig) -> dict:
    """Stage (ii) on a video's entry: `crops` {track: (frame indices, (T, 48, 80) sync crops)}."""
    syncnet = _syncnet(config)
    if syncnet is None:
        return entry
    for track in entry["tracks"]:
        indices, grey = crops[track["track"]]
        result = syncnet.estimate(grey, indices, mfcc, entry["fps"])
        track["sync"] = None if result is None else result.to_dict()
    entry["sync_model"] = syncnet.sha256  # a measurement by other weights is redone
    return apply_sync(entry, config.sync_threshold, config.sync_min_seconds)


def apply_sync(entry: dict, threshold: float, min_seconds: float = 0.0) -> dict:
    """Mark each measured track of at least `min_seconds` active or not (shorter ones: ``active`` None,
    not judged), and set the video's measured offset from the judged ones (see module doc)."""
    measured = [t for t in entry["tracks"] if "sync" in t]
    if not measured:
        return entry
    best = None
    for track in measured:
        result = track["sync"]
        if track["frames"] / entry["fps"] < min_seconds:
            track["active"] = None
            continue
        track["active"] = bool(result is not None and result["confidence"] >= threshold)
        if track["active"] and (best is None or result["confidence"] > best["confidence"]):
            best = result
    entry["sync_threshold"] = threshold
    measured_offset = 0.0 if best is None else best["offset"] / entry["fps"]
    if entry.get("av_offset", 0.0) == entry.get("av_offset_measured", 0.0):  # not edited by hand
        entry["av_offset"] = measured_offset
    entry["av_offset_measured"] = measured_offset
    return entry


def _sync_finished(out_dir: Path, entry: dict, config: PrepareConfig) -> dict:
    """Stage (ii) for a video prepared earlier, from its shard."""
    import tensorflow as tf

    from keras_speech2vid.data.dataset import parse_track
    from keras_speech2vid.sync import sync_crop

    crops, mfcc = {}, None
    for track in tf.data.TFRecordDataset(str(out_dir / entry["record"])).map(parse_track):
        mfcc = track["mfcc"].numpy()
        faces = [sync_crop(tf.io.decode_jpeg(j, channels=3).numpy()) for j in track["frames"].numpy()]
        crops[int(track["track"])] = (track["frame_index"].numpy(), np.stack(faces))
    return sync_entry(entry, crops, mfcc, config)


def prepare_video(path: Path, out_dir: Path, config: PrepareConfig) -> dict:
    """Prepare one video; returns its manifest entry. Raises Speech2VidError to skip it."""
    import tensorflow as tf

    from keras_speech2vid import audio, io
    from keras_speech2vid.face.track import TrackConfig, track_video
    from keras_speech2vid.sync import sync_crop

    vid = video_id(path)
    info = io.probe(path)
    if not info.has_video:
        raise Speech2VidError(f"{path}: no video stream")
    fps = info.fps or 25.0
    waveform = io.decode_audio(path)
    mfcc = audio.padded_mfcc(waveform).numpy()  # (12, F)
    tracks: dict[int, tuple[list[int], list[bytes], list[np.ndarray]]] = {}
    frames_total = frames_with_face = 0
    for frame, rec in track_video(path, config=TrackConfig(smooth=config.smooth)):
        frames_total += 1
        if not rec.has_face:
            continue
        frames_with_face += 1
        indices, jpegs, grey = tracks.setdefault(rec.track, ([], [], []))
        face = rec.crop(frame)
        indices.append(rec.index)
        jpegs.append(_encode_jpeg(face, config.jpeg_quality))
        grey.append(sync_crop(face))
    kept = {t: v for t, v in tracks.items() if len(v[0]) >= config.min_track_frames}
    if frames_total == 0:
        raise Speech2VidError(f"{path}: no decodable frames")
    if not kept:
        raise Speech2VidError(f"{path}: no face track of at least {config.min_track_frames} frames")
    record = out_dir / "records" / f"{vid}.tfrecord"
    from keras_speech2vid.io import atomic_path

    with atomic_path(record) as tmp:
        with tf.io.TFRecordWriter(str(tmp)) as writer:
            for t, (indices, jpegs, _) in sorted(kept.items()):
                writer.write(track_example(vid, t, indices, jpegs, fps, mfcc))
    entry = {
        "video_id": vid, "file": str(path), "record": f"records/{vid}.tfrecord", "fps": fps,
        "frames": frames_total, "frames_with_face": frames_with_face,
        "frames_kept": int(sum(len(v[0]) for v in kept.values())),
        "tracks": [{"track": t, "start": v[0][0], "stop": v[0][-1] + 1, "frames": len(v[0])}
                   for t, v in sorted(kept.items())],
        "duration": info.duration, "audio_seconds": len(waveform) / 16000.0, "av_offset": 0.0,
    }
    return sync_entry(entry, {t: (np.asarray(v[0]), np.stack(v[2])) for t, v in kept.items()}, mfcc, config)


def worker_threads_env(workers: int, cpus: int | None = None) -> dict[str, str]:
    """Thread counts for each of `workers` worker processes on this machine: its share of the cores. Left
    to themselves, each worker's TF and OpenMP take every core, and on 2 cores two workers ran at 0.59x
    one process; with one thread each they ran at 1.4x (`bench/bench_prepare.py`)."""
    share = str(max(1, (cpus or os.cpu_count() or 1) // max(1, workers)))
    return {"TF_NUM_INTRAOP_THREADS": share, "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": share}


@contextlib.contextmanager
def workers_share_cores(workers: int):
    """`worker_threads_env` in this process's environment while worker processes start (they inherit it;
    set inside a started worker it comes too late: NumPy's BLAS has read it at import), then restored."""
    env = worker_threads_env(workers) if workers > 1 else {}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _job(args) -> tuple[str, dict]:
    path, out_dir, config, finished = args
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        if finished is not None:
            return "ok", _sync_finished(Path(out_dir), finished, config)
        return "ok", prepare_video(Path(path), Path(out_dir), config)
    except Speech2VidError as e:
        return "skipped", {"video_id": video_id(Path(path)), "file": str(path), "reason": str(e)}
    except Exception as e:  # noqa: BLE001 - one bad video must not stop a corpus
        return "skipped", {"video_id": video_id(Path(path)), "file": str(path),
                           "reason": f"{path}: {type(e).__name__}: {e}"}


def _write_json(path: Path, data: dict) -> None:
    from keras_speech2vid.io import write_text

    write_text(path, json.dumps(data, indent=1) + "\n")


def write_manifest(out_dir: Path, config: PrepareConfig, speakers: dict | None = None,
                   val_groups: Iterable[str] = ()) -> dict:
    """Collect the per-video results in out_dir/videos into manifest.json (atomically)."""
    speakers = speakers or {}
    val_groups = list(val_groups)
    videos, skipped = [], []
    for p in sorted((out_dir / "videos").glob("*.json")):
        entry = json.loads(p.read_text())
        if entry.get("status") == "skipped":
            skipped.append({"file": entry["file"], "reason": entry["reason"]})
            continue
        apply_sync(entry, config.sync_threshold, config.sync_min_seconds)
        group = speakers.get(entry["video_id"], entry["video_id"])
        entry["speaker"] = speakers.get(entry["video_id"])
        entry["split"] = split_of(group, config.val_fraction, val_groups)
        entry["_group"] = group
        videos.append(entry)
    groups = {v["_group"] for v in videos}
    if config.val_fraction > 0 and len(groups) >= 2 and not any(v["split"] == "val" for v in videos):
        # a small set can draw no validation group by hash: the group of the lowest hash goes, as a larger
        # fraction would have sent it first (else early stopping has nothing to read)
        first = min(groups, key=lambda g: stable_hash("split:" + g))
        for v in videos:
            v["split"] = "val" if v["_group"] == first else v["split"]
    for v in videos:
        del v["_group"]
    old = {}
    if (out_dir / "manifest.json").exists():
        old = {v["video_id"]: v for v in json.loads((out_dir / "manifest.json").read_text()).get("videos", [])}
    for v in videos:  # keep AV offsets that were edited into the manifest (they differ from the measured one)
        before = old.get(v["video_id"], {})
        if "av_offset" in before and before["av_offset"] != before.get("av_offset_measured", 0.0):
            v["av_offset"] = before["av_offset"]
            v["av_offset_edited"] = True
    manifest = {
        "format": "keras_speech2vid-data-1",
        "every": config.every,
        "inactive": config.inactive,
        "split_by": "speaker" if speakers else "video",
        "videos": videos,
        "skipped": skipped,
        "totals": {
            split: {"videos": sum(v["split"] == split for v in videos),
                    "tracks": sum(len(v["tracks"]) for v in videos if v["split"] == split),
                    "inactive_tracks": sum(t.get("active") is False for v in videos if v["split"] == split
                                           for t in v["tracks"]),
                    "frames": sum(v["frames_kept"] for v in videos if v["split"] == split)}
            for split in ("train", "val")
        },
    }
    _write_json(out_dir / "manifest.json", manifest)
    return manifest


def check_videos(inputs: list, videos: list) -> None:
    """Refuse inputs holding no video, and two videos of one name (ids are file stems: they would share a shard)."""
    if inputs and not videos:
        raise Speech2VidError(f"{', '.join(map(str, inputs))}: no video files ({', '.join(sorted(VIDEO_EXTENSIONS))})")
    ids: dict = {}
    for v in videos:
        if video_id(Path(v)) in ids:
            raise Speech2VidError(f"{v}: same name as {ids[video_id(Path(v))]}; video names must be unique")
        ids[video_id(Path(v))] = v


def needs_measuring(entry: dict, config: PrepareConfig) -> bool:
    """A finished video's entry that stage (ii) has not measured with this config's SyncNet."""
    syncnet = _syncnet(config)
    return syncnet is not None and entry.get("status") != "skipped" and entry.get("sync_model") != syncnet.sha256


def plan_jobs(inputs: Iterable, out_dir: Path, config: PrepareConfig, shard: tuple[int, int] = (0, 1)) -> list[tuple]:
    """The `_job` arguments of this shard's videos that are not finished (and of finished ones that this
    SyncNet has not measured). Makes the output folders and removes the temporaries of a killed run."""
    index, count = shard
    if not (count >= 1 and 0 <= index < count):
        raise ValueError(f"shard must be i/N with 0 <= i < N. Received: shard={index}/{count}")
    out_dir = Path(out_dir)
    (out_dir / "records").mkdir(parents=True, exist_ok=True)
    (out_dir / "videos").mkdir(parents=True, exist_ok=True)
    for folder in ("records", "videos"):  # temporaries left by a killed run
        for stale in (out_dir / folder).glob(".*"):
            stale.unlink()
    inputs = list(inputs)
    videos = find_videos(inputs)
    check_videos(inputs, videos)
    mine = [v for v in videos if int(stable_hash("shard:" + video_id(v)) * 1e9) % count == index]
    todo = [v for v in mine if not (out_dir / "videos" / f"{video_id(v)}.json").exists()]
    jobs = [(str(v), str(out_dir), config, None) for v in todo]
    if _syncnet(config) is not None:
        for v in mine:
            done = out_dir / "videos" / f"{video_id(v)}.json"
            if v not in todo and done.exists():
                entry = json.loads(done.read_text())
                if needs_measuring(entry, config):
                    jobs.append((str(v), str(out_dir), config, entry))
    log.info("%d videos, %d in shard %d/%d, %d to do, %d to measure", len(videos), len(mine), index, count,
             len(todo), len(jobs) - len(todo))
    return jobs


def save_result(out_dir: Path, status: str, entry: dict) -> str:
    """Write a `_job` result as the video's JSON (the mark that it is finished); returns its video id."""
    if status == "skipped":
        log.warning("skipped %s", entry["reason"])
        entry["status"] = "skipped"
    _write_json(Path(out_dir) / "videos" / f"{entry['video_id']}.json", entry)
    return entry["video_id"]


def prepare(inputs: Iterable, out_dir, config: PrepareConfig = PrepareConfig(), shard: tuple[int, int] = (0, 1),
            workers: int = 1, speakers: dict | None = None, val_groups: Iterable[str] = (),
            progress: bool = True) -> dict:
    """Prepare every video of `inputs` (this machine's shard of them) into `out_dir`; returns the manifest."""
    out_dir = Path(out_dir)
    jobs = plan_jobs(inputs, out_dir, config, shard)
    results: Iterable
    if workers > 1 and len(jobs) > 1:
        import multiprocessing as mp

        with workers_share_cores(workers):
            pool = mp.get_context("spawn").Pool(workers)
        results = pool.imap_unordered(_job, jobs)
    else:
        pool = None
        results = map(_job, jobs)
    try:
        from tqdm import tqdm

        for status, entry in tqdm(results, total=len(jobs), desc="prepare", unit="video", disable=not progress):
            save_result(out_dir, status, entry)
    finally:
        if pool is not None:
            pool.terminate()
    return write_manifest(out_dir, config, speakers, val_groups)
