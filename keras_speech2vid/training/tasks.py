"""What differs between training the generator and the deblurrer; the loop in `train.py` is shared.

A `Task` says how to build the saved model and the view that is trained, how to turn a batch of the
generator dataset ``({"mfcc", "identity"}, target)`` into (inputs, target) for that view, and how to
draw the TensorBoard image grid.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import keras
import tensorflow as tf

from keras_speech2vid.config import ModelConfig
from keras_speech2vid.models import build_deblurrer, build_generator
from keras_speech2vid.training.degrade import degrade


@dataclasses.dataclass(frozen=True)
class Task:
    name: str  # the saved model is RUN_DIR/<name>.keras
    build: Callable[[ModelConfig], keras.Model]
    # the view whose output the loss sees (shares every weight with the saved model)
    train_view: Callable[[keras.Model], keras.Model]
    # (inputs, target, training) of a generator-dataset batch -> (inputs, target) of the view
    map_batch: Callable
    # (inputs, target, prediction) of a batch -> list of (H, W, 3) panels for the grid
    panels: Callable


def _generator_panels(inputs, target, prediction):
    identity = inputs["identity"][..., :3][:, 1:110, 1:110]  # first identity image, 109 crop
    return [identity, prediction, target]  # prediction: the frame, already unwrapped by the loop


def _deblur_view(deblurrer: keras.Model) -> keras.Model:
    # train before the [0, 1] clip, so saturated pixels still get gradients
    return keras.Model(deblurrer.input, deblurrer.get_layer("deblur_add").output, name="deblurrer_train")


def _deblur_batch(inputs, target, training):
    """Sharp targets -> (degraded, sharp). Validation seeds come from the image, so they repeat."""
    n = tf.shape(target)[0]
    if training:
        seeds = tf.random.uniform((n, 2), maxval=2**31 - 1, dtype=tf.int64)
    else:
        content = tf.cast(tf.reduce_sum(target, axis=(1, 2, 3)) * 1e4, tf.int64)
        seeds = tf.stack([content, tf.fill((n,), tf.constant(7, tf.int64))], axis=1)
    blurred = tf.map_fn(lambda a: degrade(a[0], a[1]), (target, seeds), fn_output_signature=tf.float32)
    return blurred, target


def _deblur_panels(inputs, target, prediction):
    return [inputs, tf.clip_by_value(prediction, 0.0, 1.0), target]


GENERATOR = Task("generator", build_generator, lambda m: m, lambda x, y, training: (x, y), _generator_panels)
DEBLURRER = Task("deblurrer", build_deblurrer, _deblur_view, _deblur_batch, _deblur_panels)
TASKS = {"generator": GENERATOR, "deblurrer": DEBLURRER}


def image_grid(panels, max_rows: int = 4) -> tf.Tensor:
    """(1, rows·H, len(panels)·W, 3) grid: one row per example, panels side by side."""
    rows = [tf.concat([p[i] for p in panels], axis=1) for i in range(min(max_rows, int(panels[0].shape[0])))]
    return tf.clip_by_value(tf.concat(rows, axis=0)[None], 0.0, 1.0)
