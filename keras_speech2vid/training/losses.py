"""The generator's training loss in `keras.ops` only, so the TF loop and a JAX step share one definition.

Per example: the (mouth-weighted) per-pixel L1, plus the optional small-data terms of `TrainConfig`, each
a separate piece (the paper's path is the plain L1 and needs none of them):

* `shape_term`: a frozen mouth-shape expert reads the target with only the mouth box generated, and the
  target; the loss is their mean absolute difference (all 40 coordinates, or the three inner-lip
  openings);
* `audio_leak_term`: each example's identity with its neighbour's audio must not change the upper face;
* `sync_term`: a frozen SyncNet reads the generated lower face of each clip of `CLIP_FRAMES` consecutive
  frames and the clip's speech (the input "sync_audio"); the loss is −log((1 + cos) / 2) of their
  embeddings (Wav2Lip's sync expert, for our unit-length embeddings).

`GeneratorLoss(cfg, size, expert)` composes them: ``loss(forward, inputs, target, training)`` with
``forward(inputs, training) -> frame`` returns the (B,) per-example loss.
"""

from __future__ import annotations

import numpy as np
from keras import ops

from keras_speech2vid.face.canonical import FACE_SIZE, SYNC_BOX_112, box_at, mouth_box
from keras_speech2vid.training.config import CLIP_FRAMES

LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601, as `sync.sync_crop`


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


def sync_term(video_stream, audio_stream, output, sync_audio, frames: int = CLIP_FRAMES):
    """(B,) −log((1 + cos) / 2) of SyncNet's video and audio embeddings, one value per clip, repeated over
    its `frames` examples. The batch holds B / frames clips of consecutive frames; `sync_audio` (B, 12,
    20, 1) repeats each clip's normalised MFCC window, so its every `frames`-th row is read."""
    output = ops.cast(output, "float32")
    top, bottom, left, right = box_at(SYNC_BOX_112, int(output.shape[1]), FACE_SIZE)
    grey = ops.sum(output[:, top:bottom, left:right, :] * LUMA, axis=-1)  # (B, 48, 80) in [0, 1]
    clips = ops.transpose(ops.reshape(grey, (-1, frames, bottom - top, right - left)), (0, 2, 3, 1))
    video = video_stream(clips, training=False)
    audio = audio_stream(ops.cast(sync_audio, "float32")[::frames], training=False)
    cosine = ops.sum(video * audio, axis=-1)
    per_clip = -ops.log(ops.clip((1.0 + cosine) / 2.0, 1e-6, 1.0))
    return ops.repeat(per_clip, frames, axis=0)


class GeneratorLoss:
    """The per-example loss of `TrainConfig` `cfg` for outputs of `size` (see the module doc)."""

    def __init__(self, cfg, size: int, expert=None, sync_streams=None):
        self.cfg = cfg
        self.sync_streams = sync_streams  # (video, audio) of a frozen SyncNet, for cfg.sync_weight
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
        sync_audio = None
        if isinstance(inputs, dict) and "sync_audio" in inputs:  # the sync term's speech, not a generator input
            inputs = dict(inputs)
            sync_audio = inputs.pop("sync_audio")
        output = forward(inputs, training)
        loss = weighted_l1(output, target, self.weights)
        if self.expert is not None:
            loss = loss + self.cfg.shape_weight * shape_term(self.expert, output, target, self.mouth_only, self.terms)
        if self.upper_only is not None:
            inputs = {k: ops.convert_to_tensor(v) for k, v in inputs.items()}  # Keras will not mix arrays and tensors
            key = next(k for k in inputs if k != "identity")  # "mfcc" or "whisper"
            swapped = forward({**inputs, key: ops.roll(inputs[key], 1, axis=0)}, training)
            loss = loss + self.cfg.audio_leak_weight * audio_leak_term(output, swapped, self.upper_only)
        if self.sync_streams is not None:
            if sync_audio is None:
                raise ValueError("the sync-expert loss needs clip batches with 'sync_audio' "
                                 "(make_dataset(..., clip_frames=5))")
            loss = loss + self.cfg.sync_weight * sync_term(*self.sync_streams, output, sync_audio)
        return loss
