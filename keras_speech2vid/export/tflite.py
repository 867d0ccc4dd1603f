"""int8 TFLite of the per-frame graph: full-integer weights and activations, float32 in and out, run by
XNNPACK. The second int8 runtime beside onnxruntime (`keras_speech2vid.export.int8`).

Which is faster depends on the CPU (`bench/bench_generate.py --tflite`, interleaved, the demo weights):
on a 2-core AMD EPYC with AVX512-VNNI, TFLite ran at ×4.0 the Keras fp32 speed against ×2.8 for
onnxruntime; on one with AVX2 only, ×1.8 against ×2.4. Both are about 40.7 dB from float32 on the
authors' faces. The graph and its inputs are those of `int8.frame_specs`, except that the batch is fixed
(XNNPACK plans one shape): the engine pads the last batch. The file runs through
`inference.int8_engine.tflite_runner`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

#: Part of the cache key of a TFLite file (with the weights, the batch and the graph choice).
TFLITE_RECIPE = "tflite-full-int8-minmax-v1"


def convert_frame_tflite(generator, deblurrer, path, *, deblur: bool = True, batch_size: int = 8, faces=None,
                         audio=None) -> Path:
    """Write the int8 TFLite per-frame graph of batch `batch_size` to `path` (atomically), calibrated on
    `int8.calibration_feeds` (the bundled demo face and speech unless `faces` / `audio` are given)."""
    import tensorflow as tf

    from keras_speech2vid.export.calibration import _engine, calibration_feeds, frame_specs
    from keras_speech2vid.inference.engine import IDENTITY_INPUTS
    from keras_speech2vid.io import atomic_path, native_stderr_muted

    engine = _engine(generator, deblurrer)
    deblur = bool(deblur and deblurrer is not None)
    audio_spec, *identity_specs = frame_specs(engine)
    specs = [tf.TensorSpec((batch_size, *audio_spec.shape[1:]), tf.float32, name="windows"), *identity_specs]

    @tf.function(input_signature=specs)
    def call(windows, embedding, skip_53, skip_26, skip_12):
        return {"frame": engine._cached_impl(windows, embedding, skip_53, skip_26, skip_12, deblur)}

    feeds = [f for f in calibration_feeds(generator, deblurrer, faces, audio, batch=batch_size)
             if len(f[engine.audio_front_end]) == batch_size]

    def representative():
        for feed in feeds:
            yield [feed[engine.audio_front_end], *(feed[k] for k in IDENTITY_INPUTS)]

    converter = tf.lite.TFLiteConverter.from_concrete_functions([call.get_concrete_function()], call)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with warnings.catch_warnings(), native_stderr_muted():  # the converter's own log lines
        warnings.simplefilter("ignore")
        content = converter.convert()
    path = Path(path)
    with atomic_path(path, suffix=".tmp") as tmp:
        tmp.write_bytes(content)
    return path
