"""Whisper front end: seconds of audio encoded per second, and the memory of generating with a whisper preset.

    python bench/bench_whisper.py [--seconds 120] [--repeats 3] [--memory]

Speed: `whisper_features` (30 s windows every 20 s, log-mel in the graph) on tmp.wav repeated to --seconds,
`--repeats` times; the median is reported as seconds of audio per second, beside the paper's MFCC windows
(`audio.iter_audio_windows`) of the same audio, measured interleaved. With --memory: peak RSS of
`Speech2Vid.generate` with an untrained `whisper_tiny` generator (the shipped Whisper encoder) over 10 s and
over 10 minutes of audio, each in a fresh process; issue 19 asks for at most +300 MB.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import _common  # noqa: F401
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from keras_speech2vid import audio, io  # noqa: E402

CHILD = """
import resource, sys, tempfile, numpy as np
from keras_speech2vid import Speech2Vid, io
from keras_speech2vid.config import PRESETS
from keras_speech2vid.models import build_generator
from keras_speech2vid.weights import save_weights_dir
seconds = float(sys.argv[1])
folder = tempfile.mkdtemp()
save_weights_dir(folder, {"generator": ("generator", build_generator("whisper_tiny"), PRESETS["whisper_tiny"])})
s2v = Speech2Vid.load(folder)
speech = io.decode_audio(sys.argv[2])
wave = np.resize(speech, int(seconds * 16000)).astype(np.float32)
n = sum(1 for _ in s2v.generate(sys.argv[3], wave))
print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def peak_rss(seconds: float) -> tuple[int, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(seconds), str(ROOT / "tests/data/tmp.wav"),
                          str(ROOT / "tests/data/obama.jpg")], capture_output=True, text=True, check=True, cwd=ROOT)
    frames, mib = out.stdout.split()[-2:]
    return int(frames), float(mib)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=120)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--memory", action="store_true")
    a = p.parse_args()
    from keras_speech2vid.whisper import shared_encoder, whisper_features

    wave = np.resize(io.decode_audio(ROOT / "tests/data/tmp.wav"), int(a.seconds * 16000)).astype(np.float32)
    encoder = shared_encoder()
    whisper_features(wave[:16000], encoder)  # trace once
    times = {"whisper": [], "mfcc": []}
    for _ in range(a.repeats):
        t = time.perf_counter()
        whisper_features(wave, encoder)
        times["whisper"].append(time.perf_counter() - t)
        t = time.perf_counter()
        for _chunk in audio.iter_audio_windows(wave, 25.0):
            pass
        times["mfcc"].append(time.perf_counter() - t)
    rates = {k: a.seconds / statistics.median(v) for k, v in times.items()}
    print(f"audio encoded, seconds of audio per second ({a.seconds:g} s, median of {a.repeats}):")
    for k, r in rates.items():
        print(f"  {k:8s} {r:8.1f}")
    print(f"  whisper / mfcc speed ratio {rates['whisper'] / rates['mfcc']:.3f}")
    if a.memory:
        short, long = peak_rss(10), peak_rss(600)
        print(f"generate, whisper_tiny: 10 s -> {short[0]} frames, peak RSS {short[1]:.0f} MiB; "
              f"600 s -> {long[0]} frames, peak RSS {long[1]:.0f} MiB; growth {long[1] - short[1]:+.0f} MiB")
        print(json.dumps({"rss_10s_mib": short[1], "rss_600s_mib": long[1]}))


if __name__ == "__main__":
    main()
