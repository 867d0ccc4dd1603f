"""SyncNet: the audio-visual sync network of "Out of time" (Chung & Zisserman, 2016), shrunk for our data.

Two streams map 0.2 s of speech and 0.2 s of lower face to embeddings that are close when they are in
sync (the paper's reference [5]; it gives Speech2Vid's stage (ii) and the field's LSE-D / LSE-C).

* video stream: 5 consecutive grey frames of the lower face, stacked as channels (the paper's early
  fusion), (48, 80, 5): rows 56..103, columns 16..95 of the aligned 112 face (`SYNC_BOX`);
* audio stream: 20 MFCC frames (0.2 s at 100 Hz) of our front end's 12 coefficients, (12, 20, 1),
  normalised per clip (`sync.normalise_mfcc`: cepstral mean and variance);
* each: four conv-BN-ReLU blocks with max pooling, flatten, fc-BN-ReLU, fc to the embedding, which is
  L2-normalised, so distances lie in [0, 2].

Changes from the published network, and why:
* 12 MFCC coefficients, not 13: our front end (spec §1) drops c0, which follows the recording gain
  rather than the mouth. Per-clip cepstral mean and variance normalisation: with about 100 training
  voices, the channel and the voice must not be what the audio stream learns.
* The face is already aligned (`face.align`), so the crop is a fixed box of 48×80 at the aligned
  scale rather than a 120×120 mouth detection; grey, as the paper.
* About 1.5 M parameters with 128-d embeddings instead of about 13 M with 1024-d, and BatchNorm in every
  block: we train on about 55 minutes of video, not the paper's hundreds of hours.
* Unit-length embeddings (the paper's distances are unbounded): a fixed scale makes the contrastive
  margin and the confidence comparable across runs.
"""

from __future__ import annotations

import keras

from keras_speech2vid.config import SyncNetConfig, get_syncnet_config
from keras_speech2vid.face.canonical import SYNC_BOX_112

SYNC_BOX = SYNC_BOX_112  # top, bottom, left, right (exclusive) in the aligned 112 face
SYNC_CROP = (SYNC_BOX[1] - SYNC_BOX[0], SYNC_BOX[3] - SYNC_BOX[2])  # (48, 80)
# pool size after each of the four blocks: the video stream halves both axes, the audio stream
# halves time first (20 → 5) and then coefficients (12 → 3)
VIDEO_POOLS = ((2, 2), (2, 2), (2, 2), (2, 2))  # 48×80 → 3×5
AUDIO_POOLS = ((1, 1), (1, 2), (2, 2), (2, 1))  # 12×20 → 3×5


def _stream(inputs, widths, pools, prefix: str, config: SyncNetConfig):
    x = inputs
    for i, (width, pool) in enumerate(zip(widths, pools), start=1):
        x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"{prefix}_conv{i}")(x)
        x = keras.layers.BatchNormalization(momentum=config.bn_momentum, name=f"{prefix}_bn{i}")(x)
        x = keras.layers.ReLU(name=f"{prefix}_relu{i}")(x)
        if pool != (1, 1):
            x = keras.layers.MaxPooling2D(pool, name=f"{prefix}_pool{i}")(x)
    x = keras.layers.Flatten(name=f"{prefix}_flatten")(x)
    x = keras.layers.Dense(config.hidden, use_bias=False, name=f"{prefix}_fc1")(x)
    x = keras.layers.BatchNormalization(momentum=config.bn_momentum, name=f"{prefix}_fc1_bn")(x)
    x = keras.layers.ReLU(name=f"{prefix}_fc1_relu")(x)
    if config.dropout:
        x = keras.layers.Dropout(config.dropout, name=f"{prefix}_dropout")(x)
    x = keras.layers.Dense(config.embedding, name=f"{prefix}_fc2")(x)
    return keras.layers.UnitNormalization(name=f"{prefix}_embedding")(x)


def build_syncnet_video(config: SyncNetConfig | str = "small") -> keras.Model:
    """(B, 48, 80, frames) grey lower faces in [0, 1] → (B, embedding), unit length."""
    config = get_syncnet_config(config)
    frames = keras.Input((*SYNC_CROP, config.video_frames), name="video")
    x = keras.layers.Rescaling(2.0, offset=-1.0, name="video_centre")(frames)
    return keras.Model(frames, _stream(x, config.video_widths, VIDEO_POOLS, "video", config), name="syncnet_video")


def build_syncnet_audio(config: SyncNetConfig | str = "small") -> keras.Model:
    """(B, 12, 20, 1) MFCC windows, normalised per clip (`sync.normalise_mfcc`) → (B, embedding), unit length."""
    config = get_syncnet_config(config)
    mfcc = keras.Input((config.mfcc_coeffs, config.mfcc_frames, 1), name="mfcc")
    return keras.Model(mfcc, _stream(mfcc, config.audio_widths, AUDIO_POOLS, "audio", config), name="syncnet_audio")


def build_syncnet(config: SyncNetConfig | str = "small") -> keras.Model:
    """Both streams in one model: inputs {"video", "mfcc"}, outputs [video embedding, audio embedding].

    The two inputs may have different batch sizes (one video window against many audio windows);
    `get_streams` gives the two stream models for separate calls.
    """
    config = get_syncnet_config(config)

    # === streams ===
    video = build_syncnet_video(config)
    audio = build_syncnet_audio(config)

    # === model ===
    frames = keras.Input((*SYNC_CROP, config.video_frames), name="video")
    mfcc = keras.Input((config.mfcc_coeffs, config.mfcc_frames, 1), name="mfcc")
    return keras.Model({"video": frames, "mfcc": mfcc}, [video(frames), audio(mfcc)], name="syncnet")


def get_streams(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """(video stream, audio stream) of a `build_syncnet` model."""
    return model.get_layer("syncnet_video"), model.get_layer("syncnet_audio")
