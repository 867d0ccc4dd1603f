"""Identity encoder (spec §2.2): 112×112×3n aligned faces → embedding plus three skip tensors."""

from __future__ import annotations

import keras

from keras_speech2vid.config import SKIN_RING, ModelConfig, get_config
from keras_speech2vid.models.layers import MouthMask, conv_bn_relu, pad2d

#: Output order of the identity encoder, also the order of the cached identity tensors.
IDENTITY_OUTPUTS = ("embedding", "skip_53", "skip_26", "skip_12")


def build_identity_encoder(config: ModelConfig | str = "paper", name: str = "identity_encoder") -> keras.Model:
    """Build the identity encoder.

    Input: (B, 112, 112, 3·n) float faces in [0, 1], channels [R1 G1 B1 R2 G2 B2 …].
    Outputs, in `IDENTITY_OUTPUTS` order:
      embedding (B, 1, 1, 256) = relu of face_fc7 (spec conv7_face),
      skip_53 (B, 53, 53, 96) = face_relu1 (x3_face),
      skip_26 (B, 26, 26, 96) = face_pool1 (x4_face),
      skip_12 (B, 12, 12, 256) = face_relu2 (x7_face).
    It does not depend on the audio, so inference runs it once per identity.
    """
    config = get_config(config)
    w = config.face_widths
    p = "face"

    # === layers and functional graph ===
    faces = keras.Input((config.image_size, config.image_size, config.identity_channels), name="identity")
    x = faces
    if config.identity_mouth_mask:
        from keras_speech2vid.face.canonical import lower_mouth_box, mouth_box

        box = (lower_mouth_box if config.identity_mouth_region == "lower" else mouth_box)(size=112)
        ring = SKIN_RING if config.identity_mouth_fill == "skin" else 0
        x = MouthMask(box, ring=ring, name=f"{p}_mouth_mask")(x)
    skip_53 = conv_bn_relu(x, w[0], 7, strides=2, name=p, index=1, config=config)  # (B, 53, 53, 96)
    skip_26 = keras.layers.MaxPooling2D(3, strides=2, name=f"{p}_pool1")(skip_53)  # (B, 26, 26, 96)
    skip_12 = conv_bn_relu(skip_26, w[1], 5, strides=2, pad=1, name=p, index=2, config=config)  # (B, 12, 12, 256)
    x = pad2d(skip_12, (0, 1, 0, 1), f"{p}_pool2_pad")
    x = keras.layers.MaxPooling2D(3, strides=2, name=f"{p}_pool2")(x)  # (B, 6, 6, 256)
    x = conv_bn_relu(x, w[2], 3, pad="same", name=p, index=3, config=config)  # (B, 6, 6, 512)
    x = conv_bn_relu(x, w[3], 3, pad="same", name=p, index=4, config=config)
    x = conv_bn_relu(x, w[4], 3, pad="same", name=p, index=5, config=config)
    x = conv_bn_relu(x, w[5], 6, name=p, index="fc6", config=config)  # (B, 1, 1, 512)
    embedding = conv_bn_relu(x, w[6], 1, name=p, index="fc7", config=config)  # (B, 1, 1, 256)

    # === model ===
    return keras.Model(faces, [embedding, skip_53, skip_26, skip_12], name=name)
