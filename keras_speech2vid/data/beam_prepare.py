"""`prepare` on Apache Beam: the same stages and the same DATA_DIR, for corpora that outgrow one machine.

Beam is only the driver. Videos are the unit of parallelism: the planned jobs (`prepare.plan_jobs`:
unfinished videos, and finished ones this SyncNet has not measured) are reshuffled over the workers,
and each worker runs the library's `prepare._job` (decode → shots → detection and tracking →
alignment → MFCC → SyncNet offsets) and writes the video's shard, then its JSON, as the local path
does. A failing video comes back as a "skipped" entry with its error; the others go on. When the
pipeline is done, the driver writes manifest.json from the per-video JSONs with `write_manifest`, so
records and manifest are those of the local path and `tf.data` cannot tell them apart. A re-run
skips finished videos (their JSON exists); a killed worker leaves only temporaries, removed on the
next run.

DATA_DIR and the inputs may be URLs (``gs://``, ``s3://``, anything Beam's FileSystems know; install
``apache-beam[gcp]`` or ``[aws]``). Then each worker stages the video into a local temporary folder,
prepares it there and uploads the shard, then the JSON, each under a temporary name renamed into
place; the driver lists, reads and writes through the same FileSystems.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

from keras_speech2vid.data.prepare import (VIDEO_EXTENSIONS, PrepareConfig, _job, _syncnet, check_videos,
                                           needs_measuring, plan_jobs, save_result, video_id, workers_share_cores, write_manifest)
from keras_speech2vid.errors import Speech2VidError

log = logging.getLogger(__name__)

RAW = "uncompressed"  # Beam's CompressionTypes.UNCOMPRESSED: no guessing from the file name
RUNNERS = {"direct": "DirectRunner", "flink": "FlinkRunner", "spark": "SparkRunner", "dataflow": "DataflowRunner"}


def is_url(path) -> bool:
    return "://" in str(path)


def _beam():
    try:
        import apache_beam
    except ImportError:
        raise Speech2VidError("--runner needs Apache Beam: pip install 'keras_speech2vid[beam]'") from None
    return apache_beam


def pipeline_options(runner: str, workers: int = 1, args: Sequence[str] = ()):
    """Beam options for `runner` (a key of RUNNERS) plus the user's own pipeline options `args`. The
    DirectRunner runs `workers` processes (multi-processing mode) when `workers` > 1."""
    if runner not in RUNNERS:
        raise ValueError(f"runner must be one of {', '.join(RUNNERS)}. Received: runner={runner!r}")
    from apache_beam.options.pipeline_options import PipelineOptions

    flags = [f"--runner={RUNNERS[runner]}"]
    if runner == "direct":
        mode = "multi_processing" if workers > 1 else "in_memory"
        flags += [f"--direct_running_mode={mode}", f"--direct_num_workers={workers}"]
    return PipelineOptions(flags + list(args))


# --- DATA_DIR through Beam's FileSystems (URLs) ------------------------------------------------------

def _join(base: str, *parts: str) -> str:
    return "/".join([str(base).rstrip("/"), *parts])


def _download(url: str, path: Path) -> Path:
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(url, compression_type=RAW) as src, open(path, "wb") as dst:
        while chunk := src.read(1 << 22):
            dst.write(chunk)
    return path


def _upload(path: Path, url: str) -> None:
    """Copy a local file to `url` under a temporary name, then rename it into place."""
    from apache_beam.io.filesystems import FileSystems

    folder, name = url.rsplit("/", 1)
    tmp = f"{folder}/.{name}.part"
    with open(path, "rb") as src, FileSystems.create(tmp, compression_type=RAW) as dst:
        while chunk := src.read(1 << 22):
            dst.write(chunk)
    FileSystems.rename([tmp], [url])  # replaces: os.replace locally, copy + delete on object stores


def _list(pattern: str) -> list[str]:
    from apache_beam.io.filesystems import FileSystems

    return sorted(m.path for r in FileSystems.match([pattern]) for m in r.metadata_list)


def check_filesystem(url: str) -> None:
    """One line when no installed Beam filesystem reads `url`'s scheme."""
    from apache_beam.io.filesystems import FileSystems

    try:
        FileSystems.get_filesystem(url)
    except (ValueError, OSError):
        scheme = url.split("://", 1)[0]
        hint = {"gs": "apache-beam[gcp]", "s3": "apache-beam[aws]", "az": "apache-beam[azure]"}.get(scheme)
        raise Speech2VidError(f"{url}: no Beam filesystem for {scheme}://"
                              + (f" (pip install '{hint}')" if hint else "")) from None


def find_remote_videos(inputs: Iterable[str]) -> list[str]:
    """Video URLs among `inputs` (video URLs, or folder URLs searched recursively)."""
    found = []
    for item in map(str, inputs):
        if Path(item).suffix.lower() in VIDEO_EXTENSIONS:
            matched = _list(item)
            if not matched:
                raise Speech2VidError(f"{item}: no such file")
            found += matched
        else:
            found += [p for p in _list(_join(item, "**")) if Path(p).suffix.lower() in VIDEO_EXTENSIONS]
    return sorted(set(found))


def plan_remote_jobs(inputs: Iterable[str], out_url: str, config: PrepareConfig) -> list[tuple]:
    """`plan_jobs` for a DATA_DIR at a URL (inputs local or URLs)."""
    from apache_beam.io.filesystems import FileSystems

    inputs = list(inputs)
    videos = find_remote_videos(inputs)
    check_videos(inputs, videos)
    stale = [p for folder in ("records", "videos") for p in _list(_join(out_url, folder, ".*"))]
    if stale:
        FileSystems.delete(stale)
    done = {Path(p).stem: p for p in _list(_join(out_url, "videos", "*.json"))}
    jobs = [(v, out_url, config, None) for v in videos if video_id(Path(v)) not in done]
    if _syncnet(config) is not None:
        for v in videos:
            if video_id(Path(v)) in done:
                with FileSystems.open(done[video_id(Path(v))], compression_type=RAW) as f:
                    entry = json.loads(f.read())
                if needs_measuring(entry, config):
                    jobs.append((v, out_url, config, entry))
    return jobs


def staged_job(job: tuple) -> str:
    """Prepare one video in a local temporary DATA_DIR and upload its shard, then its JSON."""
    src, out_url, config, finished = job
    with tempfile.TemporaryDirectory(prefix="speech2vid-beam-") as tmp:
        local_out = Path(tmp) / "data"
        for folder in ("records", "videos"):
            (local_out / folder).mkdir(parents=True)
        video = Path(tmp) / Path(src).name
        if is_url(src):
            _download(src, video)
        else:
            video = Path(src)
        if finished is not None:
            _download(_join(out_url, finished["record"]), local_out / finished["record"])
        status, entry = _job((str(video), str(local_out), config, finished))
        entry["file"] = src  # the name the user gave, not the staged copy
        if "reason" in entry:
            entry["reason"] = entry["reason"].replace(str(video), src)
        save_result(local_out, status, entry)
        if status == "ok":
            _upload(local_out / entry["record"], _join(out_url, entry["record"]))
        _upload(local_out / "videos" / f"{entry['video_id']}.json", _join(out_url, "videos", f"{entry['video_id']}.json"))
    _report(status, entry)
    return entry["video_id"]


def _report(status: str, entry: dict) -> None:
    """Progress: one line per video on the worker's stderr, and Beam counters (shown by Dataflow, Flink)."""
    from apache_beam.metrics import Metrics

    Metrics.counter("speech2vid", f"videos_{status}").inc()
    if status == "ok":  # a skipped video is logged with its reason by save_result
        print(f"speech2vid prepare: {entry['video_id']}: {len(entry['tracks'])} tracks", file=sys.stderr, flush=True)


def local_job(job: tuple) -> str:
    status, entry = _job(job)
    save_result(Path(job[1]), status, entry)
    _report(status, entry)
    return entry["video_id"]


def _remote_manifest(out_url: str, config: PrepareConfig, speakers, val_groups) -> dict:
    with tempfile.TemporaryDirectory(prefix="speech2vid-beam-") as tmp:
        local = Path(tmp)
        (local / "videos").mkdir()
        for url in _list(_join(out_url, "videos", "*.json")):
            _download(url, local / "videos" / Path(url).name)
        if _list(_join(out_url, "manifest.json")):
            _download(_join(out_url, "manifest.json"), local / "manifest.json")
        manifest = write_manifest(local, config, speakers, val_groups)
        _upload(local / "manifest.json", _join(out_url, "manifest.json"))
    return manifest


def prepare_beam(inputs: Iterable, out_dir, config: PrepareConfig = PrepareConfig(), runner: str = "direct",
                 workers: int = 1, pipeline_args: Sequence[str] = (), shard: tuple[int, int] = (0, 1),
                 speakers: dict | None = None, val_groups: Iterable[str] = (), stage: bool | None = None) -> dict:
    """`prepare.prepare` driven by Beam; returns the manifest. `stage` (default: when DATA_DIR or an
    input is a URL) prepares each video in a local temporary folder and uploads it (see module doc)."""
    beam = _beam()
    options = pipeline_options(runner, workers, pipeline_args)
    inputs = [str(i) for i in inputs]
    remote = is_url(out_dir) or any(map(is_url, inputs))
    stage = remote if stage is None else stage
    if remote:
        for url in [str(out_dir), *inputs]:
            if is_url(url):
                check_filesystem(url)
        if shard != (0, 1):
            raise ValueError("--shard is for local runs; a Beam runner splits the videos itself")
        jobs = plan_remote_jobs(inputs, str(out_dir), config)
    else:
        jobs = plan_jobs(inputs, Path(out_dir), config, shard)
    log.info("beam: %d videos to prepare or measure on %s", len(jobs), RUNNERS[runner])
    with workers_share_cores(workers if runner == "direct" else 1):  # the DirectRunner's worker processes
        _run(beam, options, jobs, stage)
    if is_url(out_dir):
        return _remote_manifest(str(out_dir), config, speakers, val_groups)
    return write_manifest(Path(out_dir), config, speakers, val_groups)


def _run(beam, options, jobs: list, stage: bool) -> None:
    if jobs:
        with beam.Pipeline(options=options) as pipeline:
            (pipeline
             | "videos" >> beam.Create(jobs)
             | "spread" >> beam.Reshuffle()  # one video per work item: no fusion with Create
             | "prepare" >> beam.Map(staged_job if stage else local_job))
