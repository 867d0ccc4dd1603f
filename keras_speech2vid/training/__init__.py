"""Training: one resumable loop for the generator and the deblurrer (TF), the loss and settings it shares
with the JAX step (`losses`, `config`, `jax_step`), and the SyncNet and mouth-expert trainers.

Where TensorFlow cannot be imported (the GPU machine), only the TF-free modules are offered.
"""

from keras_speech2vid.training.config import TrainConfig

try:
    import tensorflow  # noqa: F401
except ImportError:  # no TF: `config`, `losses` and `jax_step` still work
    __all__ = ["TrainConfig"]
else:
    from keras_speech2vid.training.tasks import DEBLURRER, GENERATOR, TASKS, Task
    from keras_speech2vid.training.train import STRATEGIES, TrainingError, make_strategy, train

    __all__ = ["DEBLURRER", "GENERATOR", "STRATEGIES", "TASKS", "Task", "TrainConfig", "TrainingError",
               "make_strategy", "train"]
