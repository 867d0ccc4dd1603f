"""The generator's training loss in `keras.ops` only, so the TF loop and a JAX step share one definition.

Per example: the (mouth-weighted) per-pixel L1, plus the optional small-data terms of `TrainConfig`, each
a separate piece (the paper's path is the plain L1 and needs none of them):

* `shape_term`: a frozen mouth-shape expert reads the target with only the mouth box generated, and the
  target; the loss is their mean absolute difference (all 40 coordinates, or the three inner-lip
  openings);
* `audio_leak_term`: each example's identity with its neighbour's audio must not change the upper face.

`GeneratorLoss(cfg, size, expert)` composes them: ``loss(forward, inputs, target, training)`` with
``forward(inputs, training) -> frame`` returns the (B,) per-example loss.
"""

from __future__ import annotations

import numpy as np
from keras import ops

from keras_speech2vid.face.canonical import mouth_box


def mouth_mask(size: int) -> np.ndarray:
    """(size, size) float32: 1 inside the canonical mouth box (109 or 112 px), 0 elsewhere."""
    mask = np.zeros((size, size), np.float32)
    top, bottom, left, right = mouth_box(size=size)
    mask[top:bottom, left:right] = 1.0
    return mask


def upper_face_mask(size: int) -> np.ndarray:
    """(size, size) float32: 1 on the rows above the canonical mouth box (eyes, brows, nose), 0 below."""
    mask = np.zeros((size, size), np.float32)
    mask[:mouth_box(size=size)[0]] = 1.0
    return mask


def l1_weight_map(size: int, mouth_weight: float) -> np.ndarray:
    """(1, size, size, 1) per-pixel L1 weights: 1, plus `mouth_weight` inside the canonical mouth box.

    `size` is 109 (generator output) or 112 (aligned face); the weights average to 1 so losses stay
    comparable with the plain L1.
    """
    weights = 1.0 + mouth_weight * mouth_mask(size)
    return (weights / weights.mean())[None, :, :, None].astype(np.float32)


def weighted_l1(output, target, weights=None):
    """(B,) mean |target − output| per example, times a (1, H, W, 1) weight map when given."""
    error = ops.abs(ops.cast(target, "float32") - ops.cast(output, "float32"))
    if weights is not None:
        error = error * weights
    return ops.mean(error, axis=(1, 2, 3))


def shape_term(expert, output, target, mouth_only, terms=None):
    """(B,) mean |expert(composite) − expert(target)|: composite = target with the output in the mouth box.

    The expert then reads a change of the mouth box alone, not of the cheeks around it that it also sees.
    `terms` (40, k) projects the 40 landmark coordinates first (e.g. `aperture_matrix`).
    """
    target = ops.cast(target, "float32")
    composite = target + (ops.cast(output, "float32") - target) * mouth_only
    shape = expert(composite, training=False) - expert(target, training=False)
    if terms is not None:
        shape = ops.matmul(shape, terms)
    return ops.mean(ops.abs(shape), axis=1)


def audio_leak_term(output, swapped, upper_only):
    """(B,) mean |output − swapped| weighted by `upper_only`: what another example's audio changes up there."""
    return ops.mean(ops.abs(ops.cast(output, "float32") - ops.cast(swapped, "float32")) * upper_only, axis=(1, 2, 3))


class GeneratorLoss:
    """The per-example loss of `TrainConfig` `cfg` for outputs of `size` (see the module doc)."""

    def __init__(self, cfg, size: int, expert=None):
        self.cfg = cfg
        self.weights = l1_weight_map(size, cfg.mouth_weight) if cfg.mouth_weight else None
        self.expert = expert
        self.mouth_only = mouth_mask(size)[None, :, :, None] if expert is not None else None
        self.terms = None
        if expert is not None and cfg.shape_terms == "aperture":
            from keras_speech2vid.models.mouth_expert import aperture_matrix

            self.terms = aperture_matrix()
        upper = upper_face_mask(size)
        self.upper_only = (upper / upper.mean())[None, :, :, None] if cfg.audio_leak_weight else None

    def __call__(self, forward, inputs, target, training):
        output = forward(inputs, training)
        loss = weighted_l1(output, target, self.weights)
        if self.expert is not None:
            loss = loss + self.cfg.shape_weight * shape_term(self.expert, output, target, self.mouth_only, self.terms)
        if self.upper_only is not None:
            inputs = {k: ops.convert_to_tensor(v) for k, v in inputs.items()}  # Keras will not mix arrays and tensors
            key = next(k for k in inputs if k != "identity")  # "mfcc" or "whisper"
            swapped = forward({**inputs, key: ops.roll(inputs[key], 1, axis=0)}, training)
            loss = loss + self.cfg.audio_leak_weight * audio_leak_term(output, swapped, self.upper_only)
        return loss
