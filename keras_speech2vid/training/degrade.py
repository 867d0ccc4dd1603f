"""Artificial degradation of sharp faces, the deblurrer's training inputs.

The authors' degradation for v114 is unknown (spec §3, §8.4). We use a mix that covers what the
generator's outputs look like: each example is blurred with a Gaussian (σ ~ U[0.5, 2.0], 9×9 kernel)
with probability 0.5, and down-up sampled by a factor ~ U[1.5, 3.0] (bilinear) otherwise or in
addition (probability 0.5, and always when no blur was drawn). All TF ops, per example, in tf.data.
"""

from __future__ import annotations

import tensorflow as tf

KERNEL = 9


def gaussian_blur(image: tf.Tensor, sigma: tf.Tensor) -> tf.Tensor:
    """Blur an (H, W, 3) image with a separable Gaussian of std `sigma` (reflect padding)."""
    r = KERNEL // 2
    x = tf.cast(tf.range(-r, r + 1), tf.float32)
    k = tf.exp(-0.5 * tf.square(x / sigma))
    k = k / tf.reduce_sum(k)
    padded = tf.pad(image[None], [[0, 0], [r, r], [r, r], [0, 0]], mode="REFLECT")
    kh = tf.tile(tf.reshape(k, (KERNEL, 1, 1, 1)), (1, 1, 3, 1))
    kw = tf.tile(tf.reshape(k, (1, KERNEL, 1, 1)), (1, 1, 3, 1))
    out = tf.nn.depthwise_conv2d(padded, kh, strides=(1, 1, 1, 1), padding="VALID")
    out = tf.nn.depthwise_conv2d(out, kw, strides=(1, 1, 1, 1), padding="VALID")
    return out[0]


def down_up(image: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    """Downsample by `factor` and back to the original size, bilinear."""
    size = tf.shape(image)[:2]
    small = tf.maximum(tf.cast(tf.round(tf.cast(size, tf.float32) / factor), tf.int32), 1)
    return tf.image.resize(tf.image.resize(image[None], small, antialias=True), size)[0]


def degrade(image: tf.Tensor, seed: tf.Tensor | None = None) -> tf.Tensor:
    """Randomly degrade one (H, W, 3) float image in [0, 1]; `seed` is a stateless (2,) seed."""
    seeds = tf.random.experimental.stateless_split(
        seed if seed is not None else tf.random.uniform((2,), maxval=2**31 - 1, dtype=tf.int64), 4)
    u = tf.random.stateless_uniform((4,), seeds[0])
    blur = u[0] < 0.5
    resample = tf.logical_or(u[1] < 0.5, tf.logical_not(blur))
    sigma = 0.5 + 1.5 * u[2]
    factor = 1.5 + 1.5 * u[3]
    out = tf.cond(blur, lambda: gaussian_blur(image, sigma), lambda: image)
    out = tf.cond(resample, lambda: down_up(out, factor), lambda: out)
    return tf.clip_by_value(out, 0.0, 1.0)
