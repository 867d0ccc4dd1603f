"""Throughput of the audio front end (MFCC + 12×35 windows), in seconds of audio per second.

Runs `keras_speech2vid.audio.audio_windows` on tests/data/tmp.wav (12.68 s of speech) eagerly,
as a `tf.function`, as a `tf.function(jit_compile=True)` (XLA), and on a batch of clips. Prints
figures; asserts nothing.

    python bench/bench_audio.py [--repeats 20] [--batch 16]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_speech2vid import audio, io  # noqa: E402

WAV = Path(__file__).resolve().parents[1] / "tests" / "data" / "tmp.wav"


def timed(fn, arg, repeats: int) -> float:
    """Best-of-three mean seconds per call, after one warm-up call (tracing / compilation)."""
    fn(arg).numpy()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            out = fn(arg)
        out.numpy()
        best = min(best, (time.perf_counter() - start) / repeats)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args(argv)

    wave = io.decode_audio(WAV)
    seconds = wave.size / 16000
    batch = np.stack([np.roll(wave, 1600 * i) for i in range(args.batch)])

    graph = tf.function(audio.audio_windows, input_signature=[tf.TensorSpec([None], tf.float32)])
    graph_batch = tf.function(audio.audio_windows, input_signature=[tf.TensorSpec([None, None], tf.float32)])
    xla = tf.function(audio.audio_windows, jit_compile=True)

    cases = [
        ("eager", audio.audio_windows, tf.constant(wave), 1),
        ("tf.function", graph, tf.constant(wave), 1),
        ("tf.function + XLA", xla, tf.constant(wave), 1),
        (f"tf.function, batch {args.batch}", graph_batch, tf.constant(batch), args.batch),
        (f"tf.function + XLA, batch {args.batch}", xla, tf.constant(batch), args.batch),
    ]
    devices = ", ".join(d.device_type for d in tf.config.list_logical_devices())
    print(f"audio_windows on {WAV.name} ({seconds:.2f} s, {audio.num_video_frames(wave.size)} windows); "
          f"TF {tf.__version__}, devices: {devices}, CPU threads: {os.cpu_count()}")
    print(f"{'mode':<32} {'ms/call':>10} {'audio s/s':>12}")
    for name, fn, arg, clips in cases:
        t = timed(fn, arg, args.repeats)
        print(f"{name:<32} {1000 * t:>10.2f} {clips * seconds / t:>12.0f}")


if __name__ == "__main__":
    main()
