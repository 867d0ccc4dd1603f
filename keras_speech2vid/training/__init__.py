"""Training: one loss (`losses`), one settings class (`config`), the run folder (`run`) and two drivers:
`train` (TensorFlow: tf.distribute, TFRecords) and `jax_driver` (JAX: jit, array chunks, no TensorFlow);
`run.start_run` picks one. Also the SyncNet and mouth-expert trainers.

The TF names are imported on first use, so that `keras_speech2vid.training` imports without TensorFlow.
"""

from keras_speech2vid._lazy import lazy_getattr
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


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


__all__ = ["TrainConfig", "TrainingError", *_LAZY]
