"""The whole Speech2Vid generator: MFCC window + identity faces → 109×109×3 frame."""

from __future__ import annotations

import keras

from keras_speech2vid.config import ModelConfig, get_config
from keras_speech2vid.models.audio_encoder import build_audio_encoder
from keras_speech2vid.models.decoder import build_decoder
from keras_speech2vid.models.identity_encoder import build_identity_encoder


def build_generator(config: ModelConfig | str = "paper", name: str = "generator") -> keras.Model:
    """Build the generator from its three sub-models.

    Inputs ``mfcc`` (B, 12, 35, 1) raw MFCC (or, with the Whisper front end, ``whisper`` (B, 18, 384)
    features) and ``identity`` (B, 112, 112, 3n) faces in [0, 1];
    output ``frame`` (B, 109, 109, 3) in [0, 1]. The sub-models are layers named
    ``audio_encoder``, ``identity_encoder`` and ``decoder``; `get_submodels` returns them, so
    inference can run the identity branch once per identity.
    """
    config = get_config(config)

    # === layers ===
    audio_encoder = build_audio_encoder(config)
    identity_encoder = build_identity_encoder(config)
    decoder = build_decoder(config)

    # === functional graph ===
    # "mfcc" (B, 12, 35, 1), or "whisper" (B, 18, 384) features with the Whisper front end
    audio = keras.Input(config.audio_input_shape, name=config.audio_front_end)
    identity = keras.Input((config.image_size, config.image_size, config.identity_channels), name="identity")
    audio_embedding = audio_encoder(audio)
    embedding, skip_53, skip_26, skip_12 = identity_encoder(identity)
    frame = decoder([audio_embedding, embedding, skip_53, skip_26, skip_12])
    frame = keras.layers.Identity(name="frame")(frame)

    # === model ===
    return keras.Model({config.audio_front_end: audio, "identity": identity}, {"frame": frame}, name=name)


def get_submodels(generator: keras.Model) -> tuple[keras.Model, keras.Model, keras.Model]:
    """(audio_encoder, identity_encoder, decoder) of a generator built by `build_generator`."""
    return tuple(generator.get_layer(n) for n in ("audio_encoder", "identity_encoder", "decoder"))


def identity_images(generator: keras.Model) -> int:
    """How many identity faces a `build_generator` model takes (its identity input has 3 channels each)."""
    return int(generator.get_layer("identity_encoder").input.shape[-1]) // 3


def audio_front_end(generator: keras.Model) -> str:
    """"mfcc" or "whisper": what a `build_generator` model hears (its audio encoder's input rank tells)."""
    return "whisper" if len(generator.get_layer("audio_encoder").input.shape) == 3 else "mfcc"
