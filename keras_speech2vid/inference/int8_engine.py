"""Frame engines whose per-frame graph runs from a quantised file: the int8 path (``--precision int8``),
in onnxruntime or TFLite (``--int8-runtime``; "auto" picks by CPU, see `default_int8_runtime`)."""

from __future__ import annotations

import os
import warnings
from typing import Callable

import numpy as np

from keras_speech2vid.inference.engine import DEFAULT_BATCH, IDENTITY_INPUTS, FrameEngine


def onnx_session(path, threads: int | None = None):
    """An onnxruntime CPU session of the file at `path` (all graph optimisations; `threads` intra-op)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = int(threads)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def tflite_runner(path, threads: int | None = None):
    """A callable ``(windows=..., embedding=..., skip_53=..., skip_26=..., skip_12=...) -> {"frame": ...}``
    of the TFLite file at `path` (made by `export.tflite`), one call at a time: the interpreter holds the
    tensors. TF's interpreter, deprecated in TF 2.21 in favour of LiteRT but present; its warning is muted."""
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=threads or os.cpu_count())
    interpreter.allocate_tensors()
    inputs = {d["name"]: d["index"] for d in interpreter.get_input_details()}
    [output] = interpreter.get_output_details()

    def run(**feeds):
        if set(feeds) != set(inputs):
            raise ValueError(f"{path}: the inputs are {sorted(inputs)}. Received: {sorted(feeds)}")
        for name, value in feeds.items():
            interpreter.set_tensor(inputs[name], np.ascontiguousarray(value, np.float32))
        interpreter.invoke()
        return {"frame": interpreter.get_tensor(output["index"]).copy()}

    run.interpreter = interpreter  # keeps it alive with the runner
    return run


class OnnxFrameEngine(FrameEngine):
    """A `FrameEngine` whose per-frame graph (audio encoder, decoder, deblurrer) runs from an ONNX file.

    The identity encoder still runs in Keras, once per video (it is not worth quantising). `model_path`
    maps ``deblur`` (bool) to the file of that graph (`keras_speech2vid.export.int8.int8_model_path`);
    each file is opened on first use. Batches are not padded: onnxruntime takes any batch size.
    """

    def __init__(self, generator, deblurrer=None, *, model_path: Callable[[bool], object],
                 batch_size: int = DEFAULT_BATCH):
        super().__init__(generator, deblurrer, batch_size=batch_size, cache_identity=True)
        self._model_path = model_path
        self._sessions: dict[bool, object] = {}

    def _open(self, path):
        return onnx_session(path)

    def session(self, deblur: bool):
        deblur = bool(deblur and self.deblurrer is not None)
        if deblur not in self._sessions:
            self._sessions[deblur] = self._open(self._model_path(deblur))
        return self._sessions[deblur]

    def run(self, windows: np.ndarray, identity, deblur: bool = True) -> np.ndarray:
        """(n, 109, 109, 3) float32 frames for n ≤ batch_size windows."""
        if len(windows) > self.batch_size:
            raise ValueError(f"at most batch_size={self.batch_size} windows per call. Received: {len(windows)}")
        feeds = {name: np.asarray(t, np.float32) for name, t in zip(IDENTITY_INPUTS, identity)}
        feeds[self.audio_front_end] = np.asarray(windows, np.float32)
        return self.session(deblur).run(None, feeds)[0]


class TfliteFrameEngine(OnnxFrameEngine):
    """`OnnxFrameEngine` with a TFLite file (`keras_speech2vid.export.tflite`): fixed batch, last one padded."""

    def _open(self, path):
        return tflite_runner(path)

    def run(self, windows: np.ndarray, identity, deblur: bool = True) -> np.ndarray:
        feeds = {name: np.asarray(t, np.float32) for name, t in zip(IDENTITY_INPUTS, identity)}
        return self.session(deblur)(windows=self.padded(windows), **feeds)["frame"][:len(windows)]


INT8_RUNTIMES = ("auto", "onnxruntime", "tflite")


def default_int8_runtime(cpuinfo: str | None = None) -> str:
    """The faster int8 runtime for this CPU, as measured (`bench/bench_generate.py --tflite`): TFLite
    (XNNPACK) where the CPU has VNNI dot-product instructions, else onnxruntime."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read(1 << 16)
        except OSError:
            cpuinfo = ""
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    return "tflite" if {"avx512_vnni", "avx_vnni"} & set(flags) else "onnxruntime"
