"""Decoder (spec §2.3): audio + identity embeddings and identity skips → 109×109×3 image.

No BatchNorm anywhere in the decoder. Every concat puts its first-listed input first.
"""

from __future__ import annotations

import keras

from keras_speech2vid.config import ModelConfig, get_config
from keras_speech2vid.models.layers import UpSamp2, pad2d


def _conv(x, filters, kernel, pad, name, activation="relu"):
    x = pad2d(x, pad, f"{name}_pad")
    return keras.layers.Conv2D(filters, kernel, padding="same" if pad == "same" else "valid",
                               activation=activation, name=name)(x)


def build_decoder(config: ModelConfig | str = "paper", name: str = "decoder") -> keras.Model:
    """Build the decoder.

    Inputs: audio_embedding (B,1,1,A), identity_embedding (B,1,1,F), skip_53, skip_26, skip_12
    (shapes as the identity encoder's outputs). Output: (B, 109, 109, 3) sigmoid image in [0, 1].
    Layer `dec_X` is the spec's `X` (conv8, conv1_1, …, conv5_3); ReLUs are fused into the convs.
    """
    config = get_config(config)
    w = config.decoder_widths
    fw = config.face_widths
    p = "dec"

    # === inputs ===
    audio = keras.Input((1, 1, config.audio_widths[-1]), name="audio_embedding")
    ident = keras.Input((1, 1, fw[-1]), name="identity_embedding")
    skip_53 = keras.Input((53, 53, fw[0]), name="skip_53")
    skip_26 = keras.Input((26, 26, fw[0]), name="skip_26")
    skip_12 = keras.Input((12, 12, fw[1]), name="skip_12")

    # === functional graph ===
    x = keras.layers.Concatenate(name=f"{p}_concat8")([audio, ident])  # (B, 1, 1, 512)
    x = _conv(x, w[0], 1, 0, f"{p}_conv8")  # (B, 1, 1, 128)
    x = UpSamp2(name=f"{p}_upsamp1_1")(x)  # (B, 2, 2, 128)
    x = _conv(x, w[1], 3, "same", f"{p}_conv1_1")
    x = UpSamp2(name=f"{p}_upsamp1_2")(x)  # (B, 4, 4, 128)
    x = _conv(x, w[2], 3, "same", f"{p}_conv1_2")  # (B, 4, 4, 256)
    x = UpSamp2(name=f"{p}_upsamp1_3")(x)  # (B, 8, 8, 256)
    x = _conv(x, w[3], 3, 0, f"{p}_conv1_3")  # (B, 6, 6, 512)
    x = UpSamp2(name=f"{p}_upsamp2")(x)  # (B, 12, 12, 512)
    x = _conv(x, w[4], 3, "same", f"{p}_conv2")  # (B, 12, 12, 256)
    x = keras.layers.Concatenate(name=f"{p}_concat_skip2")([skip_12, x])  # (B, 12, 12, 512)
    x = UpSamp2(name=f"{p}_upsamp3_1")(x)  # (B, 24, 24, 512)
    x = _conv(x, w[5], 3, "same", f"{p}_conv3_1")  # (B, 24, 24, 256)
    x = _conv(x, w[6], 5, 3, f"{p}_conv3_2")  # (B, 26, 26, 96)
    x = keras.layers.Concatenate(name=f"{p}_concat_skip3")([skip_26, x])  # (B, 26, 26, 192)
    x = UpSamp2(name=f"{p}_upsamp4")(x)  # (B, 52, 52, 192)
    x = _conv(x, w[7], 3, (2, 1, 2, 1), f"{p}_conv4")  # (B, 53, 53, 96)
    x = keras.layers.Concatenate(name=f"{p}_concat_skip4")([skip_53, x])  # (B, 53, 53, 192)
    x = UpSamp2(name=f"{p}_upsamp5_1")(x)  # (B, 106, 106, 192)
    x = _conv(x, w[8], 3, (2, 1, 2, 1), f"{p}_conv5_1")  # (B, 107, 107, 64)
    x = _conv(x, w[9], 3, (2, 1, 2, 1), f"{p}_conv5_2")  # (B, 108, 108, 32)
    x = _conv(x, 3, 3, (2, 1, 2, 1), f"{p}_conv5_3", activation=None)  # (B, 109, 109, 3)
    frame = keras.layers.Activation("sigmoid", name=f"{p}_sigmoid5_3", dtype="float32")(x)

    # === model ===
    return keras.Model([audio, ident, skip_53, skip_26, skip_12], frame, name=name)
