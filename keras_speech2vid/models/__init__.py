"""The Speech2Vid networks as Keras functional builders."""

from keras_speech2vid.models.audio_encoder import build_audio_encoder
from keras_speech2vid.models.deblurrer import build_deblurrer
from keras_speech2vid.models.decoder import build_decoder
from keras_speech2vid.models.generator import build_generator, get_submodels
from keras_speech2vid.models.identity_encoder import IDENTITY_OUTPUTS, build_identity_encoder
from keras_speech2vid.models.layers import MouthMask, SilenceMask, UpSamp2
from keras_speech2vid.models.mouth_expert import build_mouth_expert
from keras_speech2vid.models.syncnet import SYNC_BOX, build_syncnet, build_syncnet_audio, build_syncnet_video
from keras_speech2vid.models.whisper import (WhisperConfig, WhisperLogMel, build_whisper_encoder,
                                             build_whisper_waveform_encoder)

__all__ = [
    "IDENTITY_OUTPUTS",
    "MouthMask",
    "SYNC_BOX",
    "SilenceMask",
    "UpSamp2",
    "WhisperConfig",
    "WhisperLogMel",
    "build_audio_encoder",
    "build_deblurrer",
    "build_decoder",
    "build_generator",
    "build_identity_encoder",
    "build_mouth_expert",
    "build_syncnet",
    "build_syncnet_audio",
    "build_syncnet_video",
    "build_whisper_encoder",
    "build_whisper_waveform_encoder",
    "get_submodels",
]
