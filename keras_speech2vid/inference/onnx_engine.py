"""The frame engine with its per-frame graph in onnxruntime: the int8 path (``--precision int8``)."""

from __future__ import annotations

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

    def session(self, deblur: bool):
        deblur = bool(deblur and self.deblurrer is not None)
        if deblur not in self._sessions:
            self._sessions[deblur] = onnx_session(self._model_path(deblur))
        return self._sessions[deblur]

    def run(self, windows: np.ndarray, identity, deblur: bool = True) -> np.ndarray:
        """(n, 109, 109, 3) float32 frames for n ≤ batch_size windows."""
        if len(windows) > self.batch_size:
            raise ValueError(f"at most batch_size={self.batch_size} windows per call. Received: {len(windows)}")
        feeds = {name: np.asarray(t, np.float32) for name, t in zip(IDENTITY_INPUTS, identity)}
        feeds[self.audio_front_end] = np.asarray(windows, np.float32)
        return self.session(deblur).run(None, feeds)[0]
