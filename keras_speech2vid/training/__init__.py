"""Training: one loss (`losses`), one settings class (`config`), the run folder (`run`) and two drivers:
`train` (TensorFlow: tf.distribute, TFRecords) and `jax_driver` (JAX: jit, array chunks, no TensorFlow);
`run.start_run` picks one. Also the SyncNet and mouth-expert trainers.

The TF names are imported on first use, so that `keras_speech2vid.training` imports without TensorFlow.
"""

import importlib

from keras_speech2vid.training.config import TrainConfig
from keras_speech2vid.errors import TrainingError

_LAZY = {
    "DEBLURRER": "keras_speech2vid.training.tasks",
    "GENERATOR": "keras_speech2vid.training.tasks",
    "TASKS": "keras_speech2vid.training.tasks",
    "Task": "keras_speech2vid.training.tasks",
    "STRATEGIES": "keras_speech2vid.training.tf_driver",
    "make_strategy": "keras_speech2vid.training.tf_driver",
    "train": "keras_speech2vid.training.tf_driver",
    "train_jax": "keras_speech2vid.training.jax_driver",
    "start_run": "keras_speech2vid.training.run",
}


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'keras_speech2vid.training' has no attribute {name!r}")


__all__ = ["TrainConfig", "TrainingError", *_LAZY]
