"""keras_speech2vid: Speech2Vid ("You said that?", BMVC 2017) in Keras 3 / TensorFlow.

The model builders and `Speech2Vid` are imported on first use, so that `import keras_speech2vid`
(and the CLI's argument parsing) does not start TensorFlow.
"""

from keras_speech2vid._lazy import lazy_getattr
from keras_speech2vid.config import PRESETS, AudioConfig, ModelConfig, get_config
from keras_speech2vid.errors import (
    AudioError,
    ImageError,
    MediaError,
    NoFaceError,
    Speech2VidError,
    WeightsError,
)

__version__ = "0.1.0"

_LAZY = {
    "Speech2Vid": "keras_speech2vid.inference",
    "build_audio_encoder": "keras_speech2vid.models",
    "build_deblurrer": "keras_speech2vid.models",
    "build_decoder": "keras_speech2vid.models",
    "build_generator": "keras_speech2vid.models",
    "build_identity_encoder": "keras_speech2vid.models",
    "get_submodels": "keras_speech2vid.models",
}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


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
