"""Audio encoders: the paper's (spec §2.1, 12×35×1 MFCC window → 1×1×256 embedding) and, not in the paper,
one over pretrained Whisper tiny.en features (18×384 → the same 1×1×256), chosen by `audio_front_end`."""

from __future__ import annotations

import keras

from keras_speech2vid.config import ModelConfig, get_config
from keras_speech2vid.models.layers import SilenceMask, conv_bn_relu, pad2d


def build_audio_encoder(config: ModelConfig | str = "paper", name: str = "audio_encoder") -> keras.Model:
    """Build the audio encoder of `config.audio_front_end`; output (B, 1, 1, audio_widths[-1]), ≥ 0."""
    config = get_config(config)
    if config.audio_front_end == "whisper":
        return _build_whisper_audio_encoder(config, name)
    w = config.audio_widths
    p = "audio"

    # === layers and functional graph ===
    mfcc = keras.Input((config.mfcc_coeffs, config.mfcc_frames, 1), name="mfcc")  # (B, 12, 35, 1)
    x = conv_bn_relu(mfcc, w[0], 3, pad="same", name=p, index=1, config=config)  # (B, 12, 35, 64)
    if config.silence_mask:
        x = SilenceMask(name=f"{p}_silence_mask")([x, mfcc])
    # pool1_audio is a 1×1 max pool: a no-op, kept for a one-to-one layer map
    x = keras.layers.MaxPooling2D(1, name=f"{p}_pool1")(x)
    x = conv_bn_relu(x, w[1], 3, pad="same", name=p, index=2, config=config)  # (B, 12, 35, 128)
    x = pad2d(x, (1, 0, 0, 0), f"{p}_pool2_pad")  # one extra row on top
    x = keras.layers.MaxPooling2D(3, strides=(1, 2), name=f"{p}_pool2")(x)  # (B, 11, 17, 128)
    x = conv_bn_relu(x, w[2], 3, pad="same", name=p, index=3, config=config)  # (B, 11, 17, 256)
    x = conv_bn_relu(x, w[3], 3, pad="same", name=p, index=4, config=config)
    x = conv_bn_relu(x, w[4], 3, pad="same", name=p, index=5, config=config)
    x = keras.layers.MaxPooling2D(3, strides=2, name=f"{p}_pool5")(x)  # (B, 5, 8, 256)
    x = conv_bn_relu(x, w[5], (5, 8), name=p, index="fc6", config=config)  # (B, 1, 1, 512)
    x = conv_bn_relu(x, w[6], 1, name=p, index="fc7", config=config)  # (B, 1, 1, 256)

    # === model ===
    return keras.Model(mfcc, x, name=name)


def _build_whisper_audio_encoder(config: ModelConfig, name: str) -> keras.Model:
    """(B, whisper_frames, whisper_dim) features → (B, 1, 1, audio_widths[-1]): conv1, conv2 (stride 2) over
    time, fc6 over what is left and fc7, each conv-BN-ReLU as the paper's layers (time is the width axis)."""
    w, frames = config.whisper_widths, config.whisper_frames
    # "audio_whisper_*": no name in common with the paper's audio encoder, so a whisper generator can start
    # from a paper generator's identity encoder and decoder (`--init-from`) and keep `--freeze audio_`
    p = "audio_whisper"

    # === layers and functional graph ===
    features = keras.Input((frames, config.whisper_dim), name="whisper")  # (B, 18, 384)
    x = keras.layers.Reshape((1, frames, config.whisper_dim), name=f"{p}_reshape")(features)
    x = conv_bn_relu(x, w[0], (1, 3), pad="same", name=p, index=1, config=config)  # (B, 1, 18, 256)
    x = conv_bn_relu(x, w[1], (1, 3), strides=(1, 2), pad="same", name=p, index=2, config=config)  # (B, 1, 9, 256)
    x = conv_bn_relu(x, w[2], (1, (frames + 1) // 2), name=p, index="fc6", config=config)  # (B, 1, 1, 512)
    x = conv_bn_relu(x, config.audio_widths[-1], 1, name=p, index="fc7", config=config)  # (B, 1, 1, 256)

    # === model ===
    return keras.Model(features, x, name=name)
