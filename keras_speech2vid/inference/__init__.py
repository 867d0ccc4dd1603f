"""Inference: talking-face generation (`Speech2Vid`), re-dubbing, and paste-back blending.

See `keras_speech2vid.inference.generate` for the pipeline, `keras_speech2vid.inference.redub` for
re-dubbing a video and `keras_speech2vid.inference.blend` for the blend masks.
"""

from keras_speech2vid.inference.blend import BLENDS, REGIONS, blend_images, paste_face, region_mask, region_polygon
from keras_speech2vid.inference.generate import (
    FrameEngine,
    FrameStream,
    Speech2Vid,
    fit_faces,
    iter_audio_windows,
    sample_identity_frames,
)
from keras_speech2vid.inference.redub import ping_pong, redub_frames

__all__ = [
    "BLENDS",
    "REGIONS",
    "FrameEngine",
    "FrameStream",
    "Speech2Vid",
    "blend_images",
    "fit_faces",
    "iter_audio_windows",
    "paste_face",
    "ping_pong",
    "redub_frames",
    "region_mask",
    "region_polygon",
    "sample_identity_frames",
]
