"""tf.data pipeline throughput (samples/s, batch 32) against the generator's training step rate.

    python bench/bench_data.py [--data DATA_DIR] [--preset paper] [--batches 20]

Without --data, the test clips are prepared into a temporary folder. Prints both rates and their
ratio; the pipeline should stay at least 3x ahead of training.
"""

import argparse
import tempfile
import time

import _common  # noqa: F401  (sets TF logging)
import tensorflow as tf

from keras_speech2vid.data.dataset import make_dataset


def pipeline_rate(data_dir, preset, batches, batch_size):
    ds = make_dataset(data_dir, "train", preset, batch_size, repeat=True, seed=0)
    it = iter(ds)
    next(it)  # warm-up: file open, graph tracing
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch_size / (time.perf_counter() - start)


def train_rate(preset, steps, batch_size):
    from bench_train import rate

    from keras_speech2vid.models import build_generator

    model = build_generator(preset)
    n = model.input["identity"].shape[-1]
    x = {"mfcc": tf.random.normal((batch_size, 12, 35, 1)), "identity": tf.random.uniform((batch_size, 112, 112, n))}
    return rate(model, x, tf.random.uniform((batch_size, 109, 109, 3)), steps, jit=False)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data")
    p.add_argument("--preset", default="paper")
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = a.data or _common.prepare_fixture_data(tmp)
        pipe = pipeline_rate(data, a.preset, a.batches, a.batch_size)
        train = train_rate(a.preset, a.steps, a.batch_size)
    print(f"device: {'GPU' if tf.config.list_physical_devices('GPU') else 'CPU'}, {a.preset} preset, batch {a.batch_size}")
    print(f"pipeline: {pipe:8.1f} samples/s")
    print(f"training: {train:8.1f} samples/s")
    print(f"pipeline / training: {pipe / train:.1f}x (target >= 3x)")


if __name__ == "__main__":
    main()
