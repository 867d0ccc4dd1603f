"""VDSR-style deblurring net (spec §3, released model v114)."""

from __future__ import annotations

import keras

from keras_speech2vid.config import ModelConfig, get_config


def build_deblurrer(config: ModelConfig | str = "paper", name: str = "deblurrer") -> keras.Model:
    """Build the deblurrer: (B, 109, 109, 3) in [0, 1] → same shape, deblurred.

    Ten 3×3 convolutions (ReLU after all but the last) predict a residual, which is added to the
    input; the sum is clipped to [0, 1]. The original demo added the residual outside the network
    and did not clip; clipping only changes pixels that would leave the valid range.
    """
    config = get_config(config)
    size = config.output_size
    p = "deblur"

    # === layers and functional graph ===
    image = keras.Input((size, size, 3), name="image")
    x = image
    for i in range(config.deblur_depth - 1):
        x = keras.layers.Conv2D(config.deblur_width, 3, padding="same", activation="relu", name=f"{p}_conv{i}")(x)
    # zero-initialised: an untrained deblurrer is the identity, and training can only add detail
    residual = keras.layers.Conv2D(3, 3, padding="same", kernel_initializer="zeros",
                                   name=f"{p}_conv{config.deblur_depth - 1}")(x)
    x = keras.layers.Add(name=f"{p}_add")([image, residual])
    x = keras.layers.ReLU(max_value=1.0, name=f"{p}_clip")(x)

    # === model ===
    return keras.Model(image, x, name=name)
