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
import tempfile
from pathlib import Path

import numpy as np

from keras_speech2vid.errors import Speech2VidError
from keras_speech2vid.inference.engine import IDENTITY_INPUTS

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


def _engine(generator, deblurrer, batch_size: int = 1):
    from keras_speech2vid.inference.engine import FrameEngine

    return FrameEngine(generator, deblurrer, batch_size=batch_size)


def frame_specs(engine) -> list:
    """The named TensorSpecs of the per-frame graph: audio windows (dynamic batch), identity tensors (batch 1)."""
    import tensorflow as tf

    audio = engine.audio_encoder.input
    specs = [tf.TensorSpec((None, *audio.shape[1:]), tf.float32, name=engine.audio_front_end)]
    for name, tensor in zip(IDENTITY_INPUTS, engine.identity_encoder.outputs):
        specs.append(tf.TensorSpec((1, *tensor.shape[1:]), tf.float32, name=name))
    return specs


def export_frame_onnx(generator, deblurrer, path, *, deblur: bool = True) -> Path:
    """The float32 per-frame graph (audio encoder + decoder [+ deblurrer], identity cached) as ONNX at `path`."""
    from keras_speech2vid.export.onnx import function_to_onnx

    engine = _engine(generator, deblurrer)
    deblur = bool(deblur and deblurrer is not None)

    def call(windows, embedding, skip_53, skip_26, skip_12):
        return {"frame": engine._cached_impl(windows, embedding, skip_53, skip_26, skip_12, deblur)}

    return function_to_onnx(call, frame_specs(engine), path, what=f"{generator.name} per-frame graph")


def _variants(face: np.ndarray) -> list[np.ndarray]:
    """The face, mirrored, darker and brighter: identity ranges from more than one rendering of one face."""
    f = face.astype(np.float32)
    return [face, face[:, ::-1], np.clip(f * 0.8, 0, 255).astype(np.uint8),
            np.clip(f * 1.15 + 10, 0, 255).astype(np.uint8)]


def calibration_feeds(generator, deblurrer=None, faces=None, audio=None, *, windows: int = 96,
                      batch: int = 8) -> list[dict[str, np.ndarray]]:
    """Representative inputs of the per-frame graph: real speech windows with real identities.

    `faces`: aligned 112×112 RGB uint8 faces, or None for the bundled demo face (aligned here) in four
    variants; `audio`: a media path or 16 kHz waveform, or None for the bundled demo speech. Each identity
    is paired with its own run of `windows` consecutive windows, in batches of `batch`.
    """
    from keras_speech2vid.inference.inputs import fit_faces, load_audio

    engine = _engine(generator, deblurrer)
    if faces is None or audio is None:
        from keras_speech2vid.inference.demo import demo_files
        from keras_speech2vid.inference.inputs import _align_still
        from keras_speech2vid.io import read_image

        face_path, speech_path = demo_files()
        if faces is None:
            faces = _variants(_align_still(read_image(face_path), source=str(face_path)).face)
        audio = speech_path if audio is None else audio
    wave = load_audio(audio, 16000)
    from keras_speech2vid.audio import num_video_frames

    total = num_video_frames(len(wave), 25.0)
    all_windows = np.concatenate(list(engine.iter_windows(wave, 25.0, None, 0.0, None, total)))
    feeds = []
    for i, face in enumerate(faces):
        identity = [np.asarray(t) for t in engine.encode_identity(fit_faces([face], engine.identity_images))]
        start = (i * windows) % max(len(all_windows) - windows, 1)
        run = all_windows[start:start + windows]
        for j in range(0, len(run), batch):
            feeds.append({engine.audio_front_end: run[j:j + batch], **dict(zip(IDENTITY_INPUTS, identity))})
    return feeds


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
        from keras_speech2vid.export.tflite import tflite_runner

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
