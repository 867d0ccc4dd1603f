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
