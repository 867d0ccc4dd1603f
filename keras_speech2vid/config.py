"""Hyper-parameters as small frozen dataclasses, with named presets.

`ModelConfig` fixes the network topology (spec §2–3); `AudioConfig` the MFCC front end (spec §1).
Presets: ``paper`` (5 identity images), ``paper_1img`` (1 image) and ``tiny`` (same topology,
narrow widths, for fast tests). `SyncNetConfig` fixes the AV-sync network (`models.syncnet`), with
presets ``small`` (the shipped one) and ``tiny`` (tests).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class AudioConfig:
    """The original demo's MFCC (spec §1.1) and its windowing (§1.2–1.3)."""

    sample_rate: int = 16000
    frame_length: int = 400  # 25 ms
    frame_step: int = 160  # 10 ms
    fft_length: int = 512
    num_filters: int = 40
    lower_hz: float = 300.0
    upper_hz: float = 3700.0
    num_coeffs: int = 12  # c1..c12 (c0 is dropped)
    lifter: int = 22
    preemphasis: float = 0.97
    window_frames: int = 35
    pad_seconds: float = 1.0
    # "centre": the window's middle MFCC frame sits on the video frame (spec §1.3 H2);
    # "start": the window starts at the frame, as the demo indexes it (H1).
    alignment: str = "centre"


class _Serialisable:
    """`replace`, `to_dict` and `from_dict` of a frozen config dataclass (the one copy of them)."""

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        """From `to_dict` output: JSON lists back to tuples, unknown keys ignored."""
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in fields})


AUDIO_FRONT_ENDS = ("mfcc", "whisper")  # the paper's MFCC windows, or pretrained Whisper tiny.en features
MOUTH_FILLS = ("grey", "skin")
MOUTH_REGIONS = ("mouth", "lower")  # the whole mouth box, or only from the upper inner lip down
SKIN_RING = 6  # pixels of the band around the mouth box whose mean colour is the "skin" fill


@dataclass(frozen=True)
class ModelConfig(_Serialisable):
    """Topology of the generator and the deblurrer.

    Widths follow the spec's tables, in layer order:
      audio_widths:   conv1..conv5, fc6, fc7 of the audio encoder
      face_widths:    conv1..conv5, fc6, fc7 of the identity encoder
      decoder_widths: conv8, conv1_1, conv1_2, conv1_3, conv2, conv3_1, conv3_2, conv4, conv5_1, conv5_2
    """

    name: str = "paper"
    identity_images: int = 5
    image_size: int = 112
    output_size: int = 109
    mfcc_coeffs: int = 12
    mfcc_frames: int = 35
    audio_widths: tuple[int, ...] = (64, 128, 256, 256, 256, 512, 256)
    face_widths: tuple[int, ...] = (96, 256, 512, 512, 512, 512, 256)
    decoder_widths: tuple[int, ...] = (128, 128, 256, 512, 256, 256, 96, 96, 64, 32)
    deblur_width: int = 64
    deblur_depth: int = 10
    bn_momentum: float = 0.9  # MatConvNet moment rate 0.1 (spec §2.5)
    bn_epsilon: float = 1e-5
    # Zero the relu1_audio columns next to silent MFCC frames: the NaN-free equivalent
    # of the original's NaN → ReLU → 0 path (spec §1.4).
    silence_mask: bool = True
    # Not in the paper: grey out the mouth box of every identity image (inside the identity encoder,
    # so training, inference and export agree). The skips then carry no mouth, and the decoder must
    # take the mouth from the audio: on small data it otherwise copies the identity's mouth.
    identity_mouth_mask: bool = False
    # what fills that box: "grey" (0.5) or "skin" (each image's mean colour around the box, so the
    # decoder gets the skin tone where it draws the mouth)
    identity_mouth_fill: str = "grey"
    # which box: "mouth" (the whole mouth) or "lower" (from the upper inner lip down: the corners and
    # upper lip stay visible, so the identity gives the mouth's width and place, the audio its opening)
    identity_mouth_region: str = "mouth"
    # Not in the paper: what the audio encoder hears. "mfcc": the paper's 12×35 MFCC window (input
    # "mfcc"); "whisper": `whisper_frames` frames (50 Hz) of the Whisper tiny.en encoder's `whisper_dim`
    # features around the video frame (input "whisper"), mapped to the same embedding by conv1, conv2
    # (stride 2), fc6 of `whisper_widths` and fc7 of audio_widths[-1] (`models.audio_encoder`)
    audio_front_end: str = "mfcc"
    whisper_frames: int = 18  # 0.36 s: the paper's 0.35 s MFCC window
    whisper_dim: int = 384
    whisper_widths: tuple[int, ...] = (256, 256, 512)

    def __post_init__(self):
        if self.audio_front_end not in AUDIO_FRONT_ENDS:
            raise ValueError(f"audio_front_end must be one of {AUDIO_FRONT_ENDS}. "
                             f"Received: audio_front_end={self.audio_front_end!r}")
        if len(self.whisper_widths) != 3 or any(int(w) < 1 for w in self.whisper_widths) or self.whisper_frames < 4:
            raise ValueError(f"whisper_widths needs 3 positive widths and whisper_frames >= 4. Received: "
                             f"whisper_widths={self.whisper_widths}, whisper_frames={self.whisper_frames}")
        if self.identity_images < 1:
            raise ValueError(f"identity_images must be >= 1. Received: identity_images={self.identity_images}")
        for field, n in (("audio_widths", 7), ("face_widths", 7), ("decoder_widths", 10)):
            value = getattr(self, field)
            if len(value) != n or any(int(w) < 1 for w in value):
                raise ValueError(f"{field} needs {n} positive widths. Received: {field}={value}")
        if self.identity_mouth_fill not in MOUTH_FILLS:
            raise ValueError(f"identity_mouth_fill must be one of {MOUTH_FILLS}. "
                             f"Received: identity_mouth_fill={self.identity_mouth_fill!r}")
        if self.identity_mouth_region not in MOUTH_REGIONS:
            raise ValueError(f"identity_mouth_region must be one of {MOUTH_REGIONS}. "
                             f"Received: identity_mouth_region={self.identity_mouth_region!r}")
        if self.deblur_depth < 2:
            raise ValueError(f"deblur_depth must be >= 2. Received: deblur_depth={self.deblur_depth}")

    @property
    def identity_channels(self) -> int:
        return 3 * self.identity_images

    @property
    def audio_input_shape(self) -> tuple[int, ...]:
        """The shape of one example of the generator's audio input, named `audio_front_end`."""
        if self.audio_front_end == "whisper":
            return (self.whisper_frames, self.whisper_dim)
        return (self.mfcc_coeffs, self.mfcc_frames, 1)


PRESETS: dict[str, ModelConfig] = {
    "paper": ModelConfig(name="paper", identity_images=5),
    "paper_1img": ModelConfig(name="paper_1img", identity_images=1),
    "tiny": ModelConfig(
        name="tiny",
        identity_images=5,
        audio_widths=(8, 16, 16, 16, 16, 32, 32),
        face_widths=(8, 16, 16, 16, 16, 32, 32),
        decoder_widths=(16, 16, 16, 16, 16, 16, 8, 8, 8, 8),
        deblur_width=8,
    ),
    # not in the paper: the pretrained speech front end (Whisper tiny.en features)
    "whisper": ModelConfig(name="whisper", identity_images=5, audio_front_end="whisper"),
    "whisper_1img": ModelConfig(name="whisper_1img", identity_images=1, audio_front_end="whisper"),
    "whisper_tiny": ModelConfig(
        name="whisper_tiny",
        identity_images=5,
        audio_front_end="whisper",
        whisper_widths=(16, 16, 32),
        audio_widths=(8, 16, 16, 16, 16, 32, 32),
        face_widths=(8, 16, 16, 16, 16, 32, 32),
        decoder_widths=(16, 16, 16, 16, 16, 16, 8, 8, 8, 8),
        deblur_width=8,
    ),
}


def preset(config, cls, presets: dict, what: str = "preset"):
    """`config` itself when it is a `cls`, else the preset of `presets` it names (the one lookup of every config)."""
    if isinstance(config, cls):
        return config
    if isinstance(config, str) and config in presets:
        return presets[config]
    raise ValueError(f"Unknown {what}. Expected one of {sorted(presets)} or a {cls.__name__}. Received: {config!r}")


def get_config(config: "ModelConfig | str") -> ModelConfig:
    """Return `config` itself, or the preset it names."""
    return preset(config, ModelConfig, PRESETS)


@dataclass(frozen=True)
class SyncNetConfig(_Serialisable):
    """Topology of the SyncNet (`models.syncnet`): two conv stacks, one per stream, to one embedding.

    video_widths / audio_widths: the conv blocks of each stream (each block conv-BN-ReLU, then a pool);
    hidden: the fc layer before the embedding; embedding: its size (L2-normalised).
    """

    name: str = "small"
    video_frames: int = 5  # 0.2 s at 25 fps
    mfcc_coeffs: int = 12
    mfcc_frames: int = 20  # 0.2 s at 100 Hz
    video_widths: tuple[int, ...] = (32, 64, 128, 128)
    audio_widths: tuple[int, ...] = (32, 64, 128, 128)
    hidden: int = 256
    embedding: int = 128
    bn_momentum: float = 0.99
    dropout: float = 0.0  # after fc1 of each stream (training only)
    max_shift: int = 15  # offsets searched, frames each way (as syncnet_python's vshift)

    def __post_init__(self):
        for field in ("video_widths", "audio_widths"):
            value = getattr(self, field)
            if len(value) != 4 or any(int(w) < 1 for w in value):
                raise ValueError(f"{field} needs 4 positive widths. Received: {field}={value}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1). Received: dropout={self.dropout!r}")
        if self.video_frames < 1 or self.mfcc_frames < 4:
            raise ValueError(f"video_frames must be >= 1 and mfcc_frames >= 4. Received: "
                             f"video_frames={self.video_frames}, mfcc_frames={self.mfcc_frames}")


SYNCNET_PRESETS: dict[str, SyncNetConfig] = {
    "small": SyncNetConfig(),
    "tiny": SyncNetConfig(name="tiny", video_widths=(8, 8, 16, 16), audio_widths=(8, 8, 16, 16), hidden=32,
                          embedding=16),
}


def get_syncnet_config(config: "SyncNetConfig | str") -> SyncNetConfig:
    """Return `config` itself, or the SyncNet preset it names."""
    return preset(config, SyncNetConfig, SYNCNET_PRESETS, "SyncNet preset")
