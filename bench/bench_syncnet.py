"""SyncNet speed: training samples/s (one sample = one 5-frame window against its 2S+1 + spans candidates),
and offset estimation seconds per minute of video.

    python bench/bench_syncnet.py [--preset small] [--steps 10] [--repeats 3]

Training runs the real `fit` step of `train-syncnet` on a synthetic in-sync corpus (the sampler included);
estimation times `SyncNet.estimate` on one track of 60 s at 25 fps (the windows, both streams and the
±15 search), without face tracking, which `prepare` has done already. The two XLA settings of the training
step are measured interleaved, `--repeats` times each, and reported as medians and their ratio.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401
import keras
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keras_speech2vid.config import get_syncnet_config  # noqa: E402
from keras_speech2vid.models.syncnet import build_syncnet  # noqa: E402
from keras_speech2vid.sync import SyncNet  # noqa: E402
from keras_speech2vid.training.syncnet import SyncSampler, build_sync_trainer, sync_cache  # noqa: E402


def training_rate(trainer, sampler, steps: int) -> float:
    batches = [sampler.batch() for _ in range(steps)]
    start = time.perf_counter()
    for x, y in batches:
        trainer.train_on_batch(x, y)
    return steps * len(batches[0][1]) / (time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--preset", default="small")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--spans", type=int, default=8)
    p.add_argument("--span", type=int, default=16)
    a = p.parse_args()
    from tests.training.synthetic import synthetic_sync_corpus

    config = get_syncnet_config(a.preset)
    with tempfile.TemporaryDirectory() as tmp:
        synthetic_sync_corpus(tmp, videos=6, seconds=4.0, val=1)
        cache = sync_cache(tmp, "train", tmp, progress=False)
    sampler = SyncSampler(cache, config, a.spans, a.span, seed=0)
    start = time.perf_counter()
    for _ in range(a.steps):
        sampler.batch()
    sample_s = (time.perf_counter() - start) / a.steps
    trainers = {}
    for jit in (False, True):
        t = build_sync_trainer(build_syncnet(config), a.spans, a.span, config.max_shift)
        t.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=jit)
        training_rate(t, sampler, 2)  # warm-up (tracing, XLA compilation)
        trainers[jit] = t
    rates = {False: [], True: []}
    for _ in range(a.repeats):
        for jit, t in trainers.items():
            rates[jit].append(training_rate(t, sampler, a.steps))
    med = {jit: statistics.median(r) for jit, r in rates.items()}
    print(f"syncnet {config.name} training, batch {a.spans}x{a.span} windows: {med[False]:.1f} samples/s "
          f"(xla {med[True]:.1f}, ratio xla/plain {med[True] / med[False]:.2f}; medians of {a.repeats}); "
          f"sampler {1000 * sample_s:.1f} ms per batch")

    net = SyncNet(build_syncnet(config), config)
    rng = np.random.default_rng(0)
    frames = 60 * 25
    crops = rng.integers(0, 256, (frames, 48, 80)).astype(np.uint8)
    mfcc = rng.normal(size=(12, 6000 + 200)).astype(np.float32) * 5
    net.estimate(crops[:100], np.arange(100), mfcc, 25.0)  # warm-up
    times = []
    for _ in range(a.repeats):
        start = time.perf_counter()
        net.estimate(crops, np.arange(frames), mfcc, 25.0)
        times.append(time.perf_counter() - start)
    print(f"syncnet {config.name} offset estimation (±{config.max_shift} frames): "
          f"{statistics.median(times):.2f} s per minute of 25 fps video (median of {a.repeats})")


if __name__ == "__main__":
    main()
