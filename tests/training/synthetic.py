"""A small synthetic generator dataset for testing the training machinery (not learning quality)."""

import numpy as np
import tensorflow as tf


def synthetic_dataset(n=32, batch_size=8, identity_images=5, seed=0):
    rng = np.random.default_rng(seed)
    mfcc = (rng.normal(size=(n, 12, 35, 1)) * 5).astype("float32")
    identity = rng.uniform(size=(n, 112, 112, 3 * identity_images)).astype("float32")
    target = identity[:, 1:110, 1:110, :3] * 0.5 + 0.25
    return tf.data.Dataset.from_tensor_slices(({"mfcc": mfcc, "identity": identity}, target)).batch(batch_size)


def run(run_dir, epochs, steps_per_epoch, checkpoint_every, task="generator", jit_compile=False,
        precision="float32"):
    """Entry point for the kill -9 test's child process."""
    from keras_speech2vid.training import TrainConfig, train

    ds = synthetic_dataset()
    cfg = TrainConfig(epochs=epochs, steps_per_epoch=steps_per_epoch, checkpoint_every=checkpoint_every,
                      optimizer="adam", learning_rate=1e-3, jit_compile=jit_compile,
                      precision=precision)
    return train(task, "tiny", ds, run_dir, cfg, val_ds=ds.take(1), verbose=0)
