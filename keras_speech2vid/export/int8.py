"""int8 CPU inference: the per-frame graph as ONNX, statically quantised with onnxruntime.

What is quantised is what runs for every frame once the identity is cached (`FrameEngine`): the audio
encoder, the decoder and (optionally) the deblurrer. The identity encoder runs once per video and stays
float32. The file ``frame_int8.onnx`` has the inputs

* ``mfcc`` (B, 12, 35, 1) (or ``whisper`` (B, T, 384) for a Whisper-front-end generator), dynamic batch;
* ``embedding``, ``skip_53``, ``skip_26``, ``skip_12``: the cached identity tensors, batch 1
  (broadcast inside the graph);

and the output ``frame`` (B, 109, 109, 3), float32.

How: onnxruntime's static quantisation in QDQ form, int8 weights per output channel in 7 bits
(``reduce_range``: no int16 saturation in the u8×s8 kernels of CPUs without VNNI), uint8 activations
with min/max ranges calibrated on real windows and faces. TFLite's full-integer conversion of the same
graph is the other runtime (`keras_speech2vid.export.tflite`); which one is faster depends on the CPU,
and ``--int8-runtime auto`` picks by it (`inference.int8_engine.default_int8_runtime`). Leaving the
decoder's full-resolution convolutions in float32 halves the frame-to-frame quantisation noise but
costs a third of the gain; the landmark mouth opening moves the same either way (within 1 % of fp32),
so all of the graph is quantised. The calibration set is the bundled demo face (four photometric/mirror
variants, so one face does not set the identity ranges alone) speaking the bundled demo speech; pass
your own faces and audio to `quantize_frame_model` to calibrate on your data.

`int8_model_path` makes the file once per set of weights and caches it under `cache_dir()`
(``$SPEECH2VID_CACHE``, else ``$XDG_CACHE_HOME/keras_speech2vid``, else ``~/.cache/keras_speech2vid``),
keyed by a hash of the weights, so ``generate --precision int8`` quantises only on its first run.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from keras_speech2vid.errors import Speech2VidError
from keras_speech2vid.export.calibration import _engine, calibration_feeds, frame_specs  # noqa: F401 (API)
from keras_speech2vid.inference.engine import DEFAULT_BATCH, IDENTITY_INPUTS

#: Quantisation recipe version: part of the cache key, so a changed recipe never reuses an old file.
RECIPE = "qdq-minmax-perchannel-u8s8-reduced-v1"
#: PSNR (dB) of int8 frames against float32 below which `check_int8` refuses a file.
MIN_PSNR = 35.0


def cache_dir() -> Path:
    """Where derived files (int8 models) are cached; created on demand."""
    base = os.environ.get("SPEECH2VID_CACHE")
    if not base:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "keras_speech2vid"
    return Path(base)


def weights_key(generator, deblurrer=None, deblur: bool = True, recipe: str = RECIPE) -> str:
    """A short hash of everything the int8 file depends on: the weights, the graph choice and the recipe."""
    h = hashlib.sha256(f"{recipe}|deblur={bool(deblur and deblurrer is not None)}".encode())
    for model in (generator, deblurrer if deblur else None):
        if model is None:
            continue
        h.update(model.name.encode())
        for w in model.weights:
            h.update(w.path.encode())
            h.update(np.ascontiguousarray(np.asarray(w)).tobytes())
    return h.hexdigest()[:16]


def export_frame_onnx(generator, deblurrer, path, *, deblur: bool = True) -> Path:
    """The float32 per-frame graph (audio encoder + decoder [+ deblurrer], identity cached) as ONNX at `path`."""
    from keras_speech2vid.export.onnx import function_to_onnx

    engine = _engine(generator, deblurrer)
    deblur = bool(deblur and deblurrer is not None)

    def call(windows, embedding, skip_53, skip_26, skip_12):
        return {"frame": engine._cached_impl(windows, embedding, skip_53, skip_26, skip_12, deblur)}

    return function_to_onnx(call, frame_specs(engine), path, what=f"{generator.name} per-frame graph")


def quantize_frame_model(generator, deblurrer, path, *, deblur: bool = True, faces=None, audio=None) -> Path:
    """Write the int8 per-frame graph to `path` (atomically): export, calibrate, quantise (see the module doc)."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from keras_speech2vid.io import atomic_path

    path = Path(path)
    feeds = calibration_feeds(generator, deblurrer, faces, audio)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(feeds)

        def get_next(self):
            return next(self._it, None)

    with tempfile.TemporaryDirectory(prefix="speech2vid-int8-") as tmp:
        fp32, pre = Path(tmp) / "frame.onnx", Path(tmp) / "frame_pre.onnx"
        export_frame_onnx(generator, deblurrer, fp32, deblur=deblur)
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        with atomic_path(path, suffix=".tmp") as out:
            quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax, reduce_range=True,
                            calibration_providers=["CPUExecutionProvider"])
    return path


def int8_model_path(generator, deblurrer=None, *, deblur: bool = True, notify=None, runtime: str = "onnxruntime",
                    batch_size: int = 8) -> Path:
    """The cached int8 per-frame graph of these weights for `runtime` ("onnxruntime"; "tflite", whose batch
    is fixed at `batch_size`), made on first use (`notify(message)` is told first)."""
    deblurrer = deblurrer if deblur else None
    if runtime == "tflite":
        from keras_speech2vid.export.tflite import TFLITE_RECIPE

        path = cache_dir() / f"frame_int8_{weights_key(generator, deblurrer, deblur, TFLITE_RECIPE)}_b{batch_size}.tflite"
    else:
        path = cache_dir() / f"frame_int8_{weights_key(generator, deblurrer, deblur)}.onnx"
    if not path.is_file():
        if notify is not None:
            notify(f"quantising {generator.name} to int8 once (cached in {path.parent})")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise Speech2VidError(f"{path.parent}: cannot create the int8 cache folder ({e.strerror}); "
                                  f"set SPEECH2VID_CACHE to a writable folder") from None
        if runtime == "tflite":
            from keras_speech2vid.export.tflite import convert_frame_tflite

            convert_frame_tflite(generator, deblurrer, path, deblur=deblur, batch_size=batch_size)
        else:
            quantize_frame_model(generator, deblurrer, path, deblur=deblur)
    return path


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two [0, 1] image stacks (clipped first, as frames are written)."""
    mse = float(np.mean((np.clip(a, 0, 1) - np.clip(b, 0, 1)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def check_int8(generator, deblurrer, path, feeds, *, deblur: bool = True, min_psnr: float = MIN_PSNR) -> float:
    """PSNR of the int8 file at `path` (.onnx, or .tflite of the feeds' batch) against Keras float32 on
    `feeds`; raises below `min_psnr`."""
    engine = _engine(generator, deblurrer)
    if Path(path).suffix == ".tflite":
        from keras_speech2vid.inference.int8_engine import tflite_runner

        runner = tflite_runner(path)

        def run(feed):
            return runner(windows=feed[engine.audio_front_end], **{k: feed[k] for k in IDENTITY_INPUTS})["frame"]
    else:
        from keras_speech2vid.inference.int8_engine import onnx_session

        session = onnx_session(path)

        def run(feed):
            return session.run(None, feed)[0]
    got, want = [], []
    for feed in feeds:
        got.append(run(feed))
        identity = [feed[k] for k in IDENTITY_INPUTS]
        want.append(np.asarray(engine._cached(feed[engine.audio_front_end], *identity,
                                              bool(deblur and deblurrer is not None))))
    value = psnr(np.concatenate(got), np.concatenate(want))
    if not value >= min_psnr:
        raise Speech2VidError(f"{path}: int8 frames are {value:.1f} dB from float32 (< {min_psnr:g} dB)")
    return value


def export_identity_onnx(generator, path) -> Path:
    """The float32 identity encoder as ONNX at `path`: ``identity`` (B, 112, 112, 3n) in [0, 1] →
    the four tensors the int8 per-frame graph takes (`IDENTITY_INPUTS`)."""
    import tensorflow as tf

    from keras_speech2vid.export.onnx import function_to_onnx

    encoder = _engine(generator, None).identity_encoder
    spec = tf.TensorSpec((None, *encoder.input.shape[1:]), tf.float32, name="identity")

    def call(identity):
        return dict(zip(IDENTITY_INPUTS, encoder(identity, training=False)))

    return function_to_onnx(call, [spec], path, what=f"{generator.name} identity encoder")


def export_int8(generator, deblurrer, out_dir, *, deblur: bool = True) -> dict[str, dict]:
    """``OUT/identity_encoder.onnx`` (float32, once per identity) and ``OUT/frame_int8.onnx`` (int8, every
    frame), checked: the int8 frames against Keras float32 (PSNR ≥ `MIN_PSNR` dB) on real calibration inputs."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    identity_path = export_identity_onnx(generator, out_dir / "identity_encoder.onnx")
    frame_path = quantize_frame_model(generator, deblurrer, out_dir / "frame_int8.onnx", deblur=deblur)
    value = check_int8(generator, deblurrer, frame_path, calibration_feeds(generator, deblurrer)[:4], deblur=deblur)
    return {"identity_encoder": {"path": identity_path}, "frame_int8": {"path": frame_path, "psnr": value}}


def int8_engine(generator, deblurrer=None, *, batch_size: int = DEFAULT_BATCH, runtime: str = "auto"):
    """An int8 frame engine of these weights in `runtime` ("auto", "onnxruntime" or "tflite"; see
    `inference.int8_engine`); its file is made on first use and cached (`int8_model_path`)."""
    from keras_speech2vid.inference.int8_engine import (INT8_RUNTIMES, OnnxFrameEngine, TfliteFrameEngine,
                                                        default_int8_runtime)

    if runtime not in INT8_RUNTIMES:
        raise ValueError(f"int8 runtime must be one of {INT8_RUNTIMES}. Received: {runtime!r}")
    runtime = default_int8_runtime() if runtime == "auto" else runtime

    def model_path(deblur):
        return int8_model_path(generator, deblurrer, deblur=deblur, runtime=runtime, batch_size=batch_size,
                               notify=lambda m: print(f"speech2vid: {m}", file=sys.stderr, flush=True))

    engine_class = TfliteFrameEngine if runtime == "tflite" else OnnxFrameEngine
    return engine_class(generator, deblurrer, model_path=model_path, batch_size=batch_size)
