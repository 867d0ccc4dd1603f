"""Frames per second of the video face pipeline, on one core.

    python bench/bench_face.py [--video CLIP] [--repeat 3]

Measures `track_frames` (shots, detection, KLT, 68 landmarks, alignment matrix, smoothing) twice on the same
decoded frames: with tracking (detection on keyframes, KLT in between; the default) and with whole-frame
detection on every frame; prints both rates and their ratio. With --crops the aligned 112 crop of every frame
is also computed. Decoding is timed separately (ffmpeg runs in its own process). Also prints the cost of the
exact 112 crop (warp into the 197 canvas crop + MATLAB bicubic-antialias resize) against one cv2.warpAffine.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from keras_speech2vid.face import TrackConfig, align_image, track_frames, warp_face  # noqa: E402
from keras_speech2vid.face.detect import detect_faces  # noqa: E402
from keras_speech2vid.face.landmarks import get_predictor, predict_landmarks  # noqa: E402
from keras_speech2vid.io import iter_frames, probe  # noqa: E402

DEFAULT_VIDEO = Path(__file__).resolve().parents[1] / "tests" / "data" / "grid_bbaf2n_man_denim.mpg"


def _rate(frames, config, crops, repeat):
    best = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        n = 0
        for frame, rec in track_frames(frames, config=config):
            if crops and rec.has_face:
                rec.crop(frame)
            n += 1
        best = max(best, n / (time.perf_counter() - start))
    return best


def _ms(fn, n=50):
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return 1000 * (time.perf_counter() - start) / n


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default=str(DEFAULT_VIDEO))
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs")
    parser.add_argument("--crops", action="store_true", help="also compute the 112 crop of every frame")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)

    info = probe(args.video)
    start = time.perf_counter()
    frames = list(iter_frames(args.video, info))  # a short clip: held in memory to time the pipeline alone
    decode = len(frames) / (time.perf_counter() - start)
    get_predictor()  # load the model outside the timings
    print(f"video: {args.video} ({info.width}x{info.height}, {len(frames)} frames); "
          f"ffmpeg decode {decode:.0f} frames/s")

    tracked = _rate(frames, TrackConfig(), args.crops, args.repeat)
    every = _rate(frames, TrackConfig(keyframe_interval=1, local_redetect=False), args.crops, args.repeat)
    what = "tracking + landmarks + matrix" + (" + 112 crop" if args.crops else "")
    print(f"with tracking (detect every 10th frame, KLT between): {tracked:7.1f} frames/s   [{what}]")
    print(f"detection on every frame:                             {every:7.1f} frames/s")
    print(f"ratio: {tracked / every:.1f}x   (target: >= 25 frames/s with tracking on one core)")

    frame = frames[0]
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    box = detect_faces(frame)[0].xyxy
    aligned = align_image(frame)
    exact = _ms(lambda: warp_face(frame, aligned.matrix))
    fast = _ms(lambda: warp_face(frame, aligned.matrix, exact=False))
    diff = np.abs(warp_face(frame, aligned.matrix, exact=False).astype(float) - aligned.face)
    print("per-call costs on the first frame (ms): "
          f"detect full frame upsample 1 {_ms(lambda: detect_faces(gray), 10):.1f}, "
          f"detect upsample 0 {_ms(lambda: detect_faces(gray, upsample=0), 10):.1f}, "
          f"68 landmarks {_ms(lambda: predict_landmarks(gray, box)):.2f}, "
          f"exact 112 crop {exact:.2f}, single-warpAffine crop {fast:.2f} "
          f"(differs by {diff.mean():.2f} grey levels mean, {diff.max():.0f} max)")


if __name__ == "__main__":
    main()
