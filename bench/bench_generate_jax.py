"""The generator under Keras on JAX: frames/s and ×RT by batch size (for the GPU machine, which has no TF).

    KERAS_BACKEND=jax python bench/bench_generate_jax.py                 # paper preset, batches 1 8 32 128
    KERAS_BACKEND=jax python bench/bench_generate_jax.py --preset tiny --frames 16 --batches 1 4

What is timed is the per-frame work of generation once the identity is cached (as `FrameEngine` does under
TF): the audio encoder, the decoder and the deblurrer, one `jax.jit` function, fed random MFCC windows and
a cached random identity (random weights: the speed does not depend on them). Each batch size is compiled
and warmed up first (not timed), then all batch sizes are timed in turn for ``--rounds`` rounds
(`_common.interleaved`) and the median is reported. Imports no TensorFlow; on the GPU machine run it
through the wheels of weights/gpu_wheels.sh (weights/README.md, "Training on the GPU machine").
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import interleaved, median  # noqa: E402

FPS = 25.0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="paper")
    p.add_argument("--frames", type=int, default=512, help="frames timed per batch size (default: 512)")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 128])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--no-deblur", action="store_true")
    args = p.parse_args(argv)

    os.environ.setdefault("KERAS_BACKEND", "jax")
    import jax
    import keras
    import numpy as np

    if keras.backend.backend() != "jax":
        raise SystemExit(f"run with KERAS_BACKEND=jax (this Keras runs {keras.backend.backend()})")
    from keras_speech2vid.models import build_deblurrer, build_generator, get_submodels

    keras.utils.set_random_seed(0)
    generator = build_generator(args.preset)
    deblurrer = None if args.no_deblur else build_deblurrer(args.preset)
    audio_encoder, identity_encoder, decoder = get_submodels(generator)
    rng = np.random.default_rng(0)
    identity = rng.uniform(0, 1, (1, *identity_encoder.input.shape[1:])).astype(np.float32)
    cached = [jax.device_put(np.asarray(t)) for t in identity_encoder(identity, training=False)]
    models = [audio_encoder, decoder] + ([deblurrer] if deblurrer is not None else [])
    state = [[v.value for v in m.trainable_variables] + [v.value for v in m.non_trainable_variables] for m in models]

    def frames_of(state, windows, embedding, skip_53, skip_26, skip_12):
        def call(model, values, inputs):
            out, _ = model.stateless_call(values[:len(model.trainable_variables)],
                                          values[len(model.trainable_variables):], inputs, training=False)
            return out

        b = windows.shape[0]
        tile = [jax.numpy.broadcast_to(t, (b, *t.shape[1:])) for t in (embedding, skip_53, skip_26, skip_12)]
        frame = call(decoder, state[1], [call(audio_encoder, state[0], windows), *tile])
        return call(deblurrer, state[2], frame) if deblurrer is not None else frame

    step = jax.jit(frames_of)
    windows = jax.device_put(rng.normal(0, 10, (max(args.batches), *audio_encoder.input.shape[1:])).astype(np.float32))
    device = jax.devices()[0]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; JAX {jax.__version__} "
          f"on {device.platform} ({device.device_kind}); Keras {keras.__version__}; preset {args.preset!r}, "
          f"deblurrer {'off' if deblurrer is None else 'on'}")

    def timed(batch):
        calls = max(1, args.frames // batch)

        def run():
            start = time.perf_counter()
            for _ in range(calls):
                out = step(state, windows[:batch], *cached)
            out.block_until_ready()
            return (time.perf_counter() - start) / (calls * batch)  # seconds per frame
        return run

    runs = {}
    for batch in args.batches:
        step(state, windows[:batch], *cached).block_until_ready()  # compile
        runs[batch] = timed(batch)
    per_frame = {b: median(t) for b, t in interleaved(runs, args.rounds).items()}
    print(f"{'batch':>6s} {'frames/s':>10s} {'x RT':>8s} {'ms/frame':>9s}")
    for batch, seconds in per_frame.items():
        print(f"{batch:6d} {1 / seconds:10.1f} {1 / seconds / FPS:8.2f} {1000 * seconds:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
