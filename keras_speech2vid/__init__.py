"""keras_speech2vid: Speech2Vid ("You said that?", BMVC 2017) in Keras 3 / TensorFlow."""

from keras_speech2vid.config import PRESETS, AudioConfig, ModelConfig, get_config
from keras_speech2vid.errors import (
    AudioError,
    ImageError,
    MediaError,
    NoFaceError,
    Speech2VidError,
    WeightsError,
)
from keras_speech2vid.inference import Speech2Vid
from keras_speech2vid.models import (
    build_audio_encoder,
    build_deblurrer,
    build_decoder,
    build_generator,
    build_identity_encoder,
    get_submodels,
)

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "AudioConfig",
    "AudioError",
    "ImageError",
    "MediaError",
    "ModelConfig",
    "NoFaceError",
    "Speech2Vid",
    "Speech2VidError",
    "WeightsError",
    "build_audio_encoder",
    "build_deblurrer",
    "build_decoder",
    "build_generator",
    "build_identity_encoder",
    "get_config",
    "get_submodels",
]
