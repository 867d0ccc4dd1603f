"""Inference: talking-face generation (`Speech2Vid`), re-dubbing, and paste-back blending.

Modules, each below the `Speech2Vid` façade (`generate`): `engine` (the generator with its identity
cache), `inputs` (audio and faces in), `stream` (frames out), `redub` (re-dubbing a video, a peer of
`generate` that takes the façade's engine and inputs) and `blend` (paste-back masks). See
`keras_speech2vid.inference.generate` for the pipeline.
"""

from keras_speech2vid.inference.blend import BLENDS, REGIONS, blend_images, paste_face, region_mask, region_polygon
from keras_speech2vid.audio import iter_audio_windows
from keras_speech2vid.inference.engine import FrameEngine
from keras_speech2vid.inference.generate import Speech2Vid
from keras_speech2vid.inference.inputs import fit_faces, sample_identity_frames
from keras_speech2vid.inference.stream import FrameStream
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
