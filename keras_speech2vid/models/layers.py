"""Custom serialisable layers used by the Speech2Vid networks."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def align_corners_matrix(n: int) -> np.ndarray:
    """(2n, n) matrix of ×2 bilinear resampling with align-corners semantics (spec §2.4).

    Output index i samples input position i·(n−1)/(2n−1); a 1-pixel input is replicated.
    """
    m = np.zeros((2 * n, n), dtype=np.float32)
    if n == 1:
        m[:, 0] = 1.0
        return m
    # positions in float32, as MatConvNet's and TF's single-precision samplers compute them
    scale = np.float32(n - 1) / np.float32(2 * n - 1)
    pos = np.arange(2 * n, dtype=np.float32) * scale
    lo = np.minimum(np.floor(pos).astype(int), n - 2)
    frac = pos - lo.astype(np.float32)
    m[np.arange(2 * n), lo] = 1.0 - frac
    m[np.arange(2 * n), lo + 1] += frac
    return m


@keras.saving.register_keras_serializable(package="keras_speech2vid")
class UpSamp2(keras.layers.Layer):
    """MatConvNet's UpSamp2: parameter-free ×2 bilinear upsampling, align-corners.

    Keras' `UpSampling2D(interpolation="bilinear")` uses half-pixel centres and differs.
    Implemented as two fixed interpolation matrices applied with einsum (backend-neutral).
    """

    def build(self, input_shape):
        _, h, w, _ = input_shape
        if h is None or w is None:
            raise ValueError(f"UpSamp2 needs static spatial dims. Received: input_shape={input_shape}")
        self._rows = align_corners_matrix(int(h))
        self._cols = align_corners_matrix(int(w))

    def call(self, x):
        rows = ops.convert_to_tensor(self._rows, dtype=x.dtype)
        cols = ops.convert_to_tensor(self._cols, dtype=x.dtype)
        x = ops.einsum("ih,bhwc->biwc", rows, x)
        return ops.einsum("jw,biwc->bijc", cols, x)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return (b, 2 * h, 2 * w, c)


@keras.saving.register_keras_serializable(package="keras_speech2vid")
class SilenceMask(keras.layers.Layer):
    """Zeroes feature columns next to silent MFCC frames (the NaN-free form of spec §1.4).

    The original took ln(0) on silent frames, giving NaN MFCC columns; MatConvNet's ReLU maps
    NaN to 0, so after relu1_audio every time column whose ±1 neighbourhood held a NaN frame is 0.
    Our front end writes such frames as exact all-zero columns (see `audio.mfcc`); this layer
    detects them in the MFCC input and applies the same zeroing to the relu1 features.

    Inputs: [features (B, H, W, C), mfcc (B, H, W, 1)]; output: features with those columns zeroed.
    """

    def call(self, inputs):
        features, mfcc = inputs
        silent = ops.cast(ops.all(ops.equal(mfcc, 0.0), axis=(1, 3), keepdims=True), features.dtype)
        # dilate by one column each side: a 3-wide max over time with zero padding
        silent = ops.max_pool(silent, pool_size=(1, 3), strides=1, padding="same")
        return features * (1.0 - silent)

    def compute_output_shape(self, input_shape):
        return input_shape[0]


@keras.saving.register_keras_serializable(package="keras_speech2vid")
class MouthMask(keras.layers.Layer):
    """Sets a box (top, bottom, left, right; bottom/right exclusive) of every image to `fill`, or with
    `ring` > 0 to each channel's mean over the `ring`-pixel band around the box (the skin colour).

    Input: (B, H, W, 3·n) stacked RGB images; every channel is filled (all n images).
    """

    def __init__(self, box, fill: float = 0.5, ring: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.box = tuple(int(v) for v in box)
        self.fill = float(fill)
        self.ring = int(ring)

    def call(self, images):
        top, bottom, left, right = self.box
        shape = (1, images.shape[1], images.shape[2], 1)
        inside = np.zeros(shape, "float32")  # constants: the graph exports plainly
        inside[:, top:bottom, left:right] = 1.0
        fill = self.fill
        if self.ring:
            band = np.zeros(shape, "float32")
            band[:, max(top - self.ring, 0):bottom + self.ring, max(left - self.ring, 0):right + self.ring] = 1.0
            band = (band - inside) / (band - inside).sum()
            fill = ops.sum(images * ops.cast(band, images.dtype), axis=(1, 2), keepdims=True)  # (B, 1, 1, 3n)
        inside = ops.cast(inside, images.dtype)
        return images * (1.0 - inside) + fill * inside

    def get_config(self):
        return {**super().get_config(), "box": list(self.box), "fill": self.fill, "ring": self.ring}


def conv_bn_relu(x, filters, kernel, *, name, index, strides=1, pad=0, config):
    """conv → BN → ReLU, as every encoder layer of the spec (§2.1–2.2).

    `pad` is MatConvNet's (top, bottom, left, right), an int for all four sides, or "same".
    Layers are named `{name}_conv{index}` / `_bn{index}` / `_relu{index}`; fc layers pass
    index as "fc6" etc. and get `{name}_fc6`, `{name}_bn6`, `{name}_relu6`.
    """
    conv_name, suffix = (f"{name}_{index}", index[2:]) if str(index).startswith("fc") else (f"{name}_conv{index}", index)
    x = pad2d(x, pad, f"{conv_name}_pad")
    x = keras.layers.Conv2D(
        filters, kernel, strides=strides, padding="same" if pad == "same" else "valid", name=conv_name
    )(x)
    x = keras.layers.BatchNormalization(momentum=config.bn_momentum, epsilon=config.bn_epsilon, name=f"{name}_bn{suffix}")(x)
    return keras.layers.ReLU(name=f"{name}_relu{suffix}")(x)


def pad2d(x, pad, name):
    """Explicit MatConvNet-style zero padding (top, bottom, left, right); a no-op for 0 or "same"."""
    if pad == "same" or pad == 0:
        return x
    t, b, l, r = (pad,) * 4 if isinstance(pad, int) else pad
    return keras.layers.ZeroPadding2D(((t, b), (l, r)), name=name)(x)
