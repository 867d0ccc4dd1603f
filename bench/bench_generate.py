"""Generation speed and memory: frames/s and real-time factor of the frame engine, peak RSS vs audio length.

    python bench/bench_generate.py                       # paper preset, all sections
    python bench/bench_generate.py --preset demo --tflite --quality --skip-memory   # the bundled weights, int8 quality
    python bench/bench_generate.py --only-memory --long-seconds 600

First this machine's fp32 matmul ceiling (NumPy and TF), without which no figure below travels.

Speed (random weights unless ``--preset demo``: the speed does not depend on them). One base configuration
(fp32 Keras, batch 8, deblurrer on, XLA off, identity cache on), then one factor changed at a time: without
the deblurrer; batch 1 and 32; XLA on; identity cache off (batch 8 and 32); the per-frame graph in
onnxruntime at fp32 and at int8 (`keras_speech2vid.export.int8`, batch 8 and 16); with ``--tflite`` TFLite
full-integer int8 of the same graph (`keras_speech2vid.export.tflite`). Each configuration is warmed up (tracing, XLA, quantising, not timed),
then all are timed in turn over ``--frames`` real MFCC windows for ``--rounds`` rounds, the starting
configuration rotating (`_common.interleaved`), and the medians are reported, so a noisy moment cannot
flip a ratio. Reported: frames/s, ×RT (seconds of 25 fps video per second of compute) and the speed-up
over the fp32 base; the cache, deblurrer, XLA and int8 ratios; PSNR of int8 frames against fp32 on the
authors' faces speaking real speech (meaningful with ``--preset demo``).

Quality (``--quality``): the bundled weights on the authors' faces speaking real speech, each int8 runtime
against fp32: PSNR, the landmark mouth opening's spread (ratio to fp32) and correlation with fp32, and the
pixel temporal std of the mouth and the upper face (`evaluation.metrics.mouth_motion`).

End to end (``generate_video``: MFCC, model, H.264 encoding, muxing; photo tests/data/obama.jpg):
fp32, int8 in onnxruntime and (``--tflite``) int8 in TFLite; the 109×109 face pipelined (the model in a
background thread, `FrameEngine`) and not, and the full frame; all interleaved in the same way.

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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import interleaved, median  # noqa: E402

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


def time_engine(engine, windows, identity_faces) -> float:
    """Seconds for `engine` to produce len(windows) frames (the identity encoded once, inside the time)."""
    batch = engine.batch_size
    start = time.perf_counter()
    identity = engine.encode_identity(identity_faces)
    for i in range(0, len(windows), batch):
        engine.run(windows[i:i + batch], identity)
    return time.perf_counter() - start


def _frames(engine, windows, faces):
    import numpy as np

    identity = engine.encode_identity(faces)
    return np.concatenate([engine.run(windows[i:i + engine.batch_size], identity)
                           for i in range(0, len(windows), engine.batch_size)])


def bench_speed(preset: str, frames: int, rounds: int, tflite: bool) -> None:
    import keras

    from keras_speech2vid.inference import FrameEngine, Speech2Vid
    from keras_speech2vid.models import build_deblurrer, build_generator

    keras.utils.set_random_seed(0)
    if preset == "demo":
        s2v = Speech2Vid.load()
        generator, deblurrer = s2v.generators[max(s2v.generators)], s2v.deblurrer
    else:
        generator, deblurrer = build_generator(preset), build_deblurrer(preset)
    faces = _faces()[:generator.get_layer("identity_encoder").input.shape[-1] // 3]
    windows = _windows(frames)
    base = dict(batch_size=8, jit_compile=False, cache_identity=True)
    fp32 = {
        "fp32 base: batch 8, deblur, no XLA, cache": (base, True),
        "fp32 without deblurrer": (base, False),
        "fp32 batch 1": (dict(base, batch_size=1), True),
        "fp32 batch 32": (dict(base, batch_size=32), True),
        "fp32 XLA on (jit_compile=True)": (dict(base, jit_compile=True), True),
        "fp32 identity cache off (batch 8)": (dict(base, cache_identity=False), True),
        "fp32 identity cache off (batch 32)": (dict(base, batch_size=32, cache_identity=False), True),
    }
    engines = {name: FrameEngine(generator, deblurrer if deblur else None, **cfg) for name, (cfg, deblur) in fp32.items()}
    from keras_speech2vid.export.int8 import export_frame_onnx, int8_engine
    from keras_speech2vid.inference.int8_engine import OnnxFrameEngine

    for batch in (8, 16):
        engines[f"int8 onnxruntime, batch {batch}"] = int8_engine(generator, deblurrer, batch_size=batch,
                                                                  runtime="onnxruntime")
    if tflite:
        engines["int8 TFLite (XNNPACK), batch 8"] = int8_engine(generator, deblurrer, batch_size=8, runtime="tflite")

    with tempfile.TemporaryDirectory() as tmp:
        path = export_frame_onnx(generator, deblurrer, Path(tmp) / "frame.onnx")
        engines["fp32 onnxruntime, batch 8"] = OnnxFrameEngine(generator, deblurrer, model_path=lambda d: path,
                                                               batch_size=8)
        for engine in engines.values():
            engine.run(windows[:engine.batch_size], engine.encode_identity(faces))  # trace / compile / open
        runs = {name: (lambda e=engine: time_engine(e, windows, faces)) for name, engine in engines.items()}
        outputs = {}
        print(f"\n== speed: preset {preset!r}, {frames} frames per configuration, {rounds} interleaved rounds, "
              f"median ==")
        times = {name: median(t) for name, t in interleaved(runs, rounds).items()}
        reference = _frames(engines[next(iter(fp32))], windows, faces)
        outputs["int8 onnxruntime"] = _frames(engines["int8 onnxruntime, batch 8"], windows, faces)
        if tflite:
            outputs["int8 TFLite"] = _frames(engines["int8 TFLite (XNNPACK), batch 8"], windows, faces)
    print(f"{'configuration':42s} {'frames/s':>9s} {'x RT':>7s} {'ms/frame':>9s} {'x fp32':>7s}")
    base_time = times[next(iter(fp32))]
    for name, seconds in times.items():
        fps = frames / seconds
        print(f"{name:42s} {fps:9.1f} {fps / FPS:7.2f} {1000 * seconds / frames:9.1f} {base_time / seconds:7.2f}")

    def t(name):
        return times[name]

    print(f"identity cache gain: batch 8 x{t('fp32 identity cache off (batch 8)') / base_time:.2f}, batch 32 "
          f"x{t('fp32 identity cache off (batch 32)') / t('fp32 batch 32'):.2f} (cache on vs off, same run)")
    print(f"deblurrer cost: x{base_time / t('fp32 without deblurrer'):.2f} time; "
          f"XLA: x{base_time / t('fp32 XLA on (jit_compile=True)'):.2f} speed-up")
    print(f"int8 (onnxruntime) vs fp32 Keras: x{base_time / t('int8 onnxruntime, batch 8'):.2f}; "
          f"vs fp32 onnxruntime x{t('fp32 onnxruntime, batch 8') / t('int8 onnxruntime, batch 8'):.2f}"
          + (f"; int8 TFLite vs fp32 Keras: x{base_time / t('int8 TFLite (XNNPACK), batch 8'):.2f}" if tflite else ""))
    from keras_speech2vid.export.int8 import psnr

    for name, out in outputs.items():
        print(f"{name} frames vs fp32 Keras (these random-or-demo weights, the authors' faces, real speech): "
              f"PSNR {psnr(out, reference[:len(out)]):.1f} dB")


def bench_end_to_end(preset: str, rounds: int, seconds: float, tflite: bool) -> None:
    """Photo + speech → mp4: fp32, int8 onnxruntime (and TFLite), face and full frame, pipelined or not."""
    import numpy as np

    from keras_speech2vid.inference import Speech2Vid
    from keras_speech2vid.io import decode_audio

    variants = {"fp32": {}, "int8 onnxruntime": dict(precision="int8", int8_runtime="onnxruntime")}
    if tflite:
        variants["int8 TFLite"] = dict(precision="int8", int8_runtime="tflite")
    if preset == "demo":
        loaded = {name: Speech2Vid.load(batch_size=8, **kw) for name, kw in variants.items()}
    else:
        from keras_speech2vid.models import build_deblurrer, build_generator

        g, d = build_generator(preset), build_deblurrer(preset)
        loaded = {name: Speech2Vid(g, deblurrer=d, batch_size=8, **kw) for name, kw in variants.items()}
    wave = np.tile(decode_audio(DATA / "transcript.mp3"), 3)[:int(seconds * 16000)]
    frames = round(len(wave) / 16000 * FPS)
    photo = DATA / "obama.jpg"
    with tempfile.TemporaryDirectory() as tmp:
        def run(s2v, full_frame, pipeline):
            def go():
                for engine in s2v._engines.values():
                    engine.pipeline = pipeline
                start = time.perf_counter()
                s2v.generate_video(photo, wave, Path(tmp) / "out.mp4", full_frame=full_frame)
                for engine in s2v._engines.values():
                    engine.pipeline = True
                return time.perf_counter() - start
            return go

        runs = {}
        for variant, s2v in loaded.items():
            s2v.generate_video(photo, wave[:16000], Path(tmp) / "warm.mp4")  # load, trace, quantise (cached)
            runs[f"{variant} 109x109 face"] = run(s2v, False, True)
            runs[f"{variant} 109x109 face, not pipelined"] = run(s2v, False, False)
            runs[f"{variant} full frame"] = run(s2v, True, True)
        print(f"\n== end to end: generate_video, {photo.name} + {seconds:g} s of speech ({frames} frames), "
              f"{rounds} interleaved rounds, median ==")
        times = {name: median(t) for name, t in interleaved(runs, rounds).items()}
    for name, t in times.items():
        print(f"{name:42s} {frames / t:7.1f} frames/s  x{frames / t / FPS:.2f} real time")
    for variant in loaded:
        print(f"pipelining gain, {variant}: "
              f"x{times[f'{variant} 109x109 face, not pipelined'] / times[f'{variant} 109x109 face']:.2f}")


def bench_quality(runtimes) -> None:
    """The bundled weights on the authors' faces (tests/data/faceimg1) speaking tests/data/transcript.mp3:
    each int8 runtime against fp32, the figures of the int8 acceptance (PSNR, the landmark mouth opening's
    spread and correlation) and the pixel temporal std of mouth and upper face (quantisation shimmer)."""
    import numpy as np

    from keras_speech2vid.evaluation import metrics as M
    from keras_speech2vid.export.int8 import psnr
    from keras_speech2vid.inference import Speech2Vid

    faces = sorted((DATA / "faceimg1").glob("*.png"))
    runs = {"fp32": Speech2Vid.load()}
    runs.update({f"int8 {r}": Speech2Vid.load(precision="int8", int8_runtime=r) for r in runtimes})
    frames = {name: np.stack(list(s2v.generate(faces, DATA / "transcript.mp3"))) for name, s2v in runs.items()}
    aperture = {n: np.array([M.mouth_aperture(M.face_landmarks(f)[0]) for f in fr]) for n, fr in frames.items()}
    motion = {n: M.mouth_motion(fr) for n, fr in frames.items()}
    print(f"\n== quality: demo weights, faceimg1 + transcript.mp3 ({len(frames['fp32'])} frames) ==")
    print(f"{'':22s} {'PSNR vs fp32':>12s} {'aperture std':>13s} {'x fp32':>7s} {'r fp32':>7s} "
          f"{'mouth px std':>13s} {'x fp32':>7s} {'upper face':>11s}")
    for name in frames:
        value = "-" if name == "fp32" else f"{psnr(frames[name] / 255.0, frames['fp32'] / 255.0):.1f} dB"
        print(f"{name:22s} {value:>12s} "
              f"{aperture[name].std():13.4f} {aperture[name].std() / aperture['fp32'].std():7.3f} "
              f"{np.corrcoef(aperture[name], aperture['fp32'])[0, 1]:7.3f} {motion[name][0]:13.2f} "
              f"{motion[name][0] / motion['fp32'][0]:7.3f} {motion[name][1]:11.2f}")


def ceiling() -> None:
    """This machine's float32 matmul rate (NumPy/BLAS and TF): the context every figure above needs."""
    import numpy as np
    import tensorflow as tf

    a = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
    tf_a = tf.constant(a)
    for name, fn in (("numpy", lambda: a @ a), ("tf", lambda: tf.linalg.matmul(tf_a, tf_a).numpy())):
        fn()
        start = time.perf_counter()
        for _ in range(5):
            fn()
        print(f"{name} fp32 matmul 2048^2: {5 * 2 * 2048 ** 3 / (time.perf_counter() - start) / 1e9:.0f} GFLOP/s")


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
    p.add_argument("--preset", default="paper",
                   help="model preset (random weights) or 'demo' (the bundled weights) (default: paper)")
    p.add_argument("--frames", type=int, default=96, help="frames timed per configuration (default: 96)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported (default: 3)")
    p.add_argument("--tflite", action="store_true", help="also time TFLite full-integer int8 (converted once, cached)")
    p.add_argument("--e2e-seconds", type=float, default=5.0, help="speech for the end-to-end runs (default: 5)")
    p.add_argument("--skip-e2e", action="store_true")
    p.add_argument("--skip-speed", action="store_true", help="skip the model-only section")
    p.add_argument("--quality", action="store_true",
                   help="also the int8 quality figures on the authors' faces (the bundled weights)")
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
    ceiling()
    if not args.only_memory:
        if not args.skip_speed:
            bench_speed(args.preset, args.frames, args.rounds, args.tflite)
        if args.quality:
            bench_quality(["onnxruntime", "tflite"] if args.tflite else ["onnxruntime"])
        if not args.skip_e2e:
            bench_end_to_end(args.preset, args.rounds, args.e2e_seconds, args.tflite)
    if not args.skip_memory:
        bench_memory(args.memory_preset, args.long_seconds)
    print(f"bench process peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
