"""`prepare` throughput in videos/s: the local path (1 and 2 processes), and Beam's DirectRunner with 1
and 2 workers.

    python bench/bench_prepare.py [--videos N] [--rounds 3] [--sync]

The videos are the test clips (tests/data), or the first N clips of ../shared/data/clips when it is
beside the project. Each configuration prepares them into a fresh folder; the configurations run
interleaved (`_common.interleaved`) and the medians are printed, with the ratios to the local path.
Beam's figures include its start-up (and, with 2 workers, each worker's TensorFlow import), which
is what a user pays on one machine; on a cluster that cost is paid once per worker, not per video.
"""

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from _common import interleaved, median

ROOT = Path(__file__).resolve().parents[1]


def videos(count: int) -> list[Path]:
    shared = ROOT.parent / "shared" / "data" / "clips"
    if shared.is_dir():
        from keras_speech2vid.data.prepare import find_videos

        return find_videos([shared])[:count]
    data = ROOT / "tests" / "data"
    return [data / "grid_bbaf2n_man_denim.mpg", data / "grid_lbbc2a_woman_pink_top.mpg",
            data / "vox2_00086_man_suit_red_bg.mp4"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=6, help="clips of ../shared/data/clips (default: 6)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--sync", action="store_true", help="with stage (ii), SyncNet offsets (default: stage (i) only)")
    args = p.parse_args(argv)

    from keras_speech2vid.data.beam_prepare import prepare_beam
    from keras_speech2vid.data.prepare import PrepareConfig, prepare

    clips = videos(args.videos)
    config = PrepareConfig(sync=args.sync)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; {len(clips)} videos, "
          f"stage (ii) {'on' if args.sync else 'off'}")
    with tempfile.TemporaryDirectory() as tmp:
        def run(name, fn):
            def go():
                out = Path(tempfile.mkdtemp(dir=tmp, prefix=name.replace(" ", "_")))
                start = time.perf_counter()
                manifest = fn(out)
                seconds = time.perf_counter() - start
                assert len(manifest["videos"]) + len(manifest["skipped"]) == len(clips), manifest["skipped"]
                return seconds
            return go

        runs = {
            "local, 1 process": run("local", lambda out: prepare(clips, out, config, progress=False)),
            "local, 2 processes": run("local2", lambda out: prepare(clips, out, config, workers=2, progress=False)),
            "Beam DirectRunner, 1 worker": run("beam1", lambda out: prepare_beam(clips, out, config, workers=1)),
            "Beam DirectRunner, 2 workers": run("beam2", lambda out: prepare_beam(clips, out, config, workers=2)),
        }
        times = {name: median(t) for name, t in interleaved(runs, args.rounds).items()}
    base = times["local, 1 process"]
    print(f"\n== prepare, {len(clips)} videos, {args.rounds} interleaved rounds, median ==")
    for name, t in times.items():
        print(f"{name:32s} {len(clips) / t:6.3f} videos/s  {t:6.1f} s  x{base / t:.2f} of local")
    return 0


if __name__ == "__main__":
    sys.exit(main())
