"""tf.data pipeline throughput (samples/s, batch 32) against the generator's training step rate.

    python bench/bench_data.py [--data DATA_DIR] [--preset paper] [--batches 20]

Without --data, the test clips are prepared into a temporary folder. Prints both rates and their
ratio; the pipeline should stay at least 3x ahead of training.
"""

import argparse
import tempfile
import time

import _common  # noqa: F401  (sets TF logging)
import numpy as np
import tensorflow as tf

from keras_speech2vid.data.dataset import make_dataset
from keras_speech2vid.training.train import TrainConfig


def pipeline_rate(data_dir, preset, batches, batch_size):
    ds = make_dataset(data_dir, "train", preset, batch_size, repeat=True, seed=0)
    it = iter(ds)
    next(it)  # warm-up: file open, graph tracing
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch_size / (time.perf_counter() - start)


def train_rate(preset, steps, batch_size):
    from keras_speech2vid.models import build_generator

    model = build_generator(preset)
    n = model.input["identity"].shape[-1]
    optimizer = tf.keras.optimizers.SGD(TrainConfig().learning_rate, momentum=0.9)
    x = {"mfcc": tf.random.normal((batch_size, 12, 35, 1)), "identity": tf.random.uniform((batch_size, 112, 112, n))}
    y = tf.random.uniform((batch_size, 109, 109, 3))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.abs(y - model(x, training=True)["frame"]))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch_size / (time.perf_counter() - start)


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
