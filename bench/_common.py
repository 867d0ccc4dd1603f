"""Shared helpers for the benchmarks (each bench script prints its own figures)."""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def timed(fn, repeat: int = 1):
    """Seconds per call of `fn` (after one warm-up call)."""
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def prepare_fixture_data(out_dir):
    """Prepare the test clips (tests/data) into `out_dir` unless already there; returns out_dir."""
    from pathlib import Path

    from keras_speech2vid.data.prepare import PrepareConfig, prepare

    data = Path(__file__).resolve().parents[1] / "tests" / "data"
    clips = [data / "grid_bbaf2n_man_denim.mpg", data / "grid_lbbc2a_woman_pink_top.mpg",
             data / "vox2_00086_man_suit_red_bg.mp4"]
    if not (Path(out_dir) / "manifest.json").exists():
        prepare(clips, out_dir, PrepareConfig(every=1, val_fraction=0.0), val_groups=[clips[1].stem], progress=False)
    return Path(out_dir)


def interleaved(runs: dict, rounds: int = 3) -> dict:
    """Time every configuration once per round, in turn, for `rounds` rounds: {name: [seconds, ...]}.

    Each `runs[name]` is a callable returning the seconds it measured. The starting configuration
    rotates from round to round, so none always runs first (warm caches) or last; a noisy moment then
    costs every configuration one sample, and the medians (`median`) give the ratios.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1. Received: rounds={rounds}")
    names = list(runs)
    times = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            times[name].append(float(runs[name]()))
    return times


def median(values) -> float:
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else 0.5 * (values[mid - 1] + values[mid])
