"""Training: one resumable loop for the generator and the deblurrer."""

from keras_speech2vid.training.tasks import DEBLURRER, GENERATOR, TASKS, Task
from keras_speech2vid.training.train import STRATEGIES, TrainConfig, TrainingError, make_strategy, train

__all__ = ["DEBLURRER", "GENERATOR", "STRATEGIES", "TASKS", "Task", "TrainConfig", "TrainingError",
           "make_strategy", "train"]
