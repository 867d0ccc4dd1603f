"""Training throughput (samples/s) of the generator and the deblurrer, on CPU and on a GPU when present.

    python bench/bench_train.py [--preset paper] [--batch-size 32] [--steps 5]
"""

import argparse
import time

import _common  # noqa: F401
import tensorflow as tf

from keras_speech2vid.models import build_deblurrer, build_generator
from keras_speech2vid.training.shared import dtype_policy


def rate(model, x, y, steps, jit):
    optimizer = tf.keras.optimizers.SGD(1e-5, momentum=0.9)

    @tf.function(jit_compile=jit)
    def step():
        with tf.GradientTape() as tape:
            out = model(x, training=True)
            out = tf.cast(out["frame"] if isinstance(out, dict) else out, tf.float32)
            loss = tf.reduce_mean(tf.abs(y - out))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    step()
    start = time.perf_counter()
    for _ in range(steps):
        float(step())
    return steps * int(y.shape[0]) / (time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--preset", default="paper")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=5)
    a = p.parse_args()
    devices = ["/cpu:0"] + [f"/gpu:{i}" for i, _ in enumerate(tf.config.list_physical_devices("GPU"))][:1]
    b = a.batch_size
    for device in devices:
        with tf.device(device):
            for precision in ("float32", "mixed_bfloat16"):
                with dtype_policy(precision):
                    gen = build_generator(a.preset)
                    deb = build_deblurrer(a.preset)
                n = gen.input["identity"].shape[-1]
                x = {"mfcc": tf.random.normal((b, 12, 35, 1)), "identity": tf.random.uniform((b, 112, 112, n))}
                y = tf.random.uniform((b, 109, 109, 3))
                for jit in (False, True):
                    print(f"{device} generator {a.preset} batch {b} {precision} xla={jit}: "
                          f"{rate(gen, x, y, a.steps, jit):7.1f} samples/s")
                print(f"{device} deblurrer {a.preset} batch {b} {precision}: {rate(deb, y, y, a.steps, False):7.1f} samples/s")

if __name__ == "__main__":
    main()
