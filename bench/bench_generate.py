"""Generation speed and memory: frames/s and real-time factor of the frame engine, peak RSS vs audio length.

    python bench/bench_generate.py                       # paper preset, all sections
    python bench/bench_generate.py --frames 64 --skip-memory
    python bench/bench_generate.py --only-memory --long-seconds 600

Speed (random weights: the speed does not depend on them). One base configuration (batch 8, deblurrer on,
XLA off, identity cache on), then one factor changed at a time: without the deblurrer; batch 1 and 32;
XLA on; identity cache off (batch 8 and 32). Each configuration is warmed up with one batch (tracing/XLA
compilation, not timed) and then timed over ``--frames`` frames of real MFCC windows. Reported:

* frames/s of the model (audio encoder + decoder + deblurrer, cached identity), and
* ×RT: seconds of 25 fps video produced per second of compute (> 1 is faster than real time),
* the identity cache's gain (cache on ÷ cache off) at both batch sizes, measured in the same run,
* an end-to-end ``generate_video`` run (MFCC + model + H.264 encoding + muxing) for the base configuration.

Memory: two fresh processes generate a video (``--memory-preset``, tiny by default: streaming, not model
size, is what is measured) from 10 s and from ``--long-seconds`` (600) of audio made at run time by looping
tests/data/transcript.mp3 with ffmpeg; their peak RSS (``ru_maxrss``) and the difference are printed. The
bound is +300 MB.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
FPS = 25.0


def _faces():
    from keras_speech2vid.io import read_image

    return [read_image(p) for p in sorted((DATA / "faceimg1").glob("*.png"))]


def _windows(frames: int):
    import numpy as np

    from keras_speech2vid.inference import iter_audio_windows
    from keras_speech2vid.io import decode_audio

    wave = decode_audio(DATA / "transcript.mp3")
    reps = int(np.ceil(frames / 150)) + 1
    wave = np.tile(wave, reps)
    return np.concatenate(list(iter_audio_windows(wave, FPS)))[:frames]


def time_engine(generator, deblurrer, windows, faces, *, batch, deblur, xla, cache) -> float:
    """Seconds to produce len(windows) frames (after one untimed warm-up batch)."""
    from keras_speech2vid.inference import FrameEngine

    engine = FrameEngine(generator, deblurrer if deblur else None, batch_size=batch, jit_compile=xla,
                         cache_identity=cache)
    identity = engine.encode_identity(faces)
    engine.run(windows[:batch], identity)  # trace / compile
    start = time.perf_counter()
    if cache:  # the identity branch is part of a run: include it once
        identity = engine.encode_identity(faces)
    for i in range(0, len(windows), batch):
        engine.run(windows[i:i + batch], identity)
    return time.perf_counter() - start


def bench_speed(preset: str, frames: int) -> None:
    import keras

    from keras_speech2vid.models import build_deblurrer, build_generator

    keras.utils.set_random_seed(0)
    generator, deblurrer = build_generator(preset), build_deblurrer(preset)
    faces = _faces()[:generator.get_layer("identity_encoder").input.shape[-1] // 3]
    windows = _windows(frames)
    base = dict(batch=8, deblur=True, xla=False, cache=True)
    configs = [
        ("base: batch 8, deblur, no XLA, cache", base),
        ("without deblurrer", dict(base, deblur=False)),
        ("batch 1", dict(base, batch=1)),
        ("batch 32", dict(base, batch=32)),
        ("XLA on (jit_compile=True)", dict(base, xla=True)),
        ("identity cache off (batch 8)", dict(base, cache=False)),
        ("identity cache on, batch 32", dict(base, batch=32)),
        ("identity cache off (batch 32)", dict(base, batch=32, cache=False)),
    ]
    print(f"\n== speed: preset {preset!r}, {frames} frames per configuration, random weights ==")
    print(f"{'configuration':40s} {'frames/s':>9s} {'x RT':>7s} {'ms/frame':>9s}")
    results = {}
    for name, cfg in configs:
        key = tuple(sorted(cfg.items()))
        if key not in results:
            results[key] = time_engine(generator, deblurrer, windows, faces, **cfg)
        seconds = results[key]
        fps = frames / seconds
        print(f"{name:40s} {fps:9.1f} {fps / FPS:7.2f} {1000 * seconds / frames:9.1f}", flush=True)

    def get(**cfg):
        return results[tuple(sorted(dict(base, **cfg).items()))]

    print(f"identity cache gain: batch 8 x{get(cache=False) / get():.2f}, "
          f"batch 32 x{get(batch=32, cache=False) / get(batch=32):.2f} (cache on vs off, same run)")
    print(f"deblurrer cost: x{get() / get(deblur=False):.2f} time; XLA: x{get() / get(xla=True):.2f} speed-up; "
          f"batch 32 vs 1: x{get(batch=1) / get(batch=32):.2f}")

    # end to end: MFCC + model + encoding, the base configuration
    from keras_speech2vid.inference import Speech2Vid
    from keras_speech2vid.io import decode_audio

    s2v = Speech2Vid(generator, deblurrer=deblurrer, batch_size=8)
    wave = decode_audio(DATA / "transcript.mp3")
    with tempfile.TemporaryDirectory() as tmp:
        s2v.generate_video(faces, wave[:16000], Path(tmp) / "warm.mp4")  # trace
        start = time.perf_counter()
        s2v.generate_video(faces, DATA / "transcript.mp3", Path(tmp) / "out.mp4")
        seconds = time.perf_counter() - start
    n = round(len(wave) / 16000 * FPS)
    print(f"end to end generate_video ({n} frames, 109x109 mp4 with AAC): {n / seconds:.1f} frames/s, "
          f"x{n / seconds / FPS:.2f} real time")


MEMORY_RUN = """
import resource, sys, glob, time
from keras_speech2vid.config import PRESETS
from keras_speech2vid.inference import Speech2Vid
from keras_speech2vid.models import build_deblurrer, build_generator
preset = sys.argv[1]
s = Speech2Vid(build_generator(preset), deblurrer=build_deblurrer(preset), batch_size=16)
faces = sorted(glob.glob(sys.argv[2]))[:PRESETS[preset].identity_images]
start = time.perf_counter()
s.generate_video(faces, sys.argv[3], sys.argv[4])
print("RESULT", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter() - start)
"""


def make_audio(path: Path, seconds: float) -> Path:
    from keras_speech2vid.io import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y", "-stream_loop", "-1",
                    "-i", str(DATA / "transcript.mp3"), "-t", str(seconds), "-ac", "1", "-ar", "16000",
                    "-c:a", "aac", str(path)], check=True)
    return path


def peak_rss(preset: str, audio: Path, out: Path) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of a fresh process generating a video from `audio`."""
    proc = subprocess.run([sys.executable, "-c", MEMORY_RUN, preset, str(DATA / "faceimg1" / "*.png"), str(audio),
                           str(out)], capture_output=True, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    kb, seconds = re.search(r"RESULT (\d+) ([\d.]+)", proc.stdout).groups()
    return int(kb) / 1024, float(seconds)


def bench_memory(preset: str, long_seconds: float) -> None:
    print(f"\n== memory: preset {preset!r}, peak RSS of a fresh process ==")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows = []
        for seconds in (10.0, float(long_seconds)):
            audio = make_audio(tmp / f"a{int(seconds)}.m4a", seconds)
            mb, wall = peak_rss(preset, audio, tmp / f"v{int(seconds)}.mp4")
            rows.append((seconds, mb, wall))
            print(f"{seconds:7.0f} s of audio: peak RSS {mb:7.0f} MB  ({round(seconds * FPS)} frames in {wall:.0f} s,"
                  f" x{seconds / wall:.2f} real time)", flush=True)
    diff = rows[1][1] - rows[0][1]
    print(f"difference: {diff:+.0f} MB (bound +300 MB): {'OK' if diff < 300 else 'OVER'}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="paper", help="model preset for the speed section (default: paper)")
    p.add_argument("--frames", type=int, default=96, help="frames timed per configuration (default: 96)")
    p.add_argument("--memory-preset", default="tiny", help="model preset for the memory section (default: tiny)")
    p.add_argument("--long-seconds", type=float, default=600, help="long audio for the memory section (default: 600)")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--only-memory", action="store_true")
    args = p.parse_args(argv)

    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # every configuration traces a new engine: expected, not a warning
    devices = [d.device_type for d in tf.config.list_physical_devices()]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
          f"TF {tf.__version__}, devices {devices}")
    if not args.only_memory:
        bench_speed(args.preset, args.frames)
    if not args.skip_memory:
        bench_memory(args.memory_preset, args.long_seconds)
    print(f"bench process peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
