"""Frame engines whose per-frame graph runs from a quantised file: the int8 path (``--precision int8``),
in onnxruntime or TFLite (``--int8-runtime``; "auto" picks by CPU, see `default_int8_runtime`)."""

from __future__ import annotations

import sys
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
        from keras_speech2vid.export.tflite import tflite_runner

        return tflite_runner(path)

    def run(self, windows: np.ndarray, identity, deblur: bool = True) -> np.ndarray:
        n = len(windows)
        if n > self.batch_size:
            raise ValueError(f"at most batch_size={self.batch_size} windows per call. Received: {n}")
        windows = np.asarray(windows, np.float32)
        if n < self.batch_size:
            windows = np.concatenate([windows, np.zeros((self.batch_size - n,) + windows.shape[1:], np.float32)])
        feeds = {name: np.asarray(t, np.float32) for name, t in zip(IDENTITY_INPUTS, identity)}
        return self.session(deblur)(windows=windows, **feeds)["frame"][:n]


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


def int8_engine(generator, deblurrer=None, *, batch_size: int = DEFAULT_BATCH, runtime: str = "auto"):
    """An int8 frame engine of these weights in `runtime` (one of INT8_RUNTIMES); its file is made on first
    use and cached (`keras_speech2vid.export.int8.int8_model_path`)."""
    if runtime not in INT8_RUNTIMES:
        raise ValueError(f"int8 runtime must be one of {INT8_RUNTIMES}. Received: {runtime!r}")
    runtime = default_int8_runtime() if runtime == "auto" else runtime
    from keras_speech2vid.export.int8 import int8_model_path

    def model_path(deblur):
        return int8_model_path(generator, deblurrer, deblur=deblur, runtime=runtime, batch_size=batch_size,
                               notify=lambda m: print(f"speech2vid: {m}", file=sys.stderr, flush=True))

    engine_class = TfliteFrameEngine if runtime == "tflite" else OnnxFrameEngine
    engine = engine_class(generator, deblurrer, model_path=model_path, batch_size=batch_size)
    engine.runtime = runtime
    return engine
