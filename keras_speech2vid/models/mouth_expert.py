"""Mouth-shape expert: a small CNN that reads the 20 mouth landmarks off a generated face.

Not in the paper. On minutes of data, L1 alone lets the generator draw an average mouth; a frozen
expert turns "the mouth has the target's shape" into a differentiable loss term
(`TrainConfig.shape_weight`). It is trained on the aligned training faces against dlib's landmarks,
with blur so that it also reads the generator's soft output (`training.mouth_expert`).
"""

from __future__ import annotations

import keras
import numpy as np

from keras_speech2vid.face.canonical import EXPERT_BOX_109, INNER_LIP_PAIRS_MOUTH

# the lower face in the 109×109 output: rows 56..103, columns 22..93 (holds the canonical mouth with
# a margin of about one mouth height, so opened jaws stay inside)
EXPERT_BOX = EXPERT_BOX_109
PIXEL_SCALE = 4.0
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601


def aperture_matrix() -> np.ndarray:
    """(40, 3): expert output (x, y of the 20 points) @ this = the three inner-lip openings, pixels."""
    m = np.zeros((40, len(INNER_LIP_PAIRS_MOUTH)), np.float32)
    for k, (upper, lower) in enumerate(INNER_LIP_PAIRS_MOUTH):
        m[2 * lower + 1, k], m[2 * upper + 1, k] = 1.0, -1.0
    return m


def build_mouth_expert(size: int = 109, widths: tuple[int, ...] = (32, 64, 128, 256), hidden: int = 256,
                       grey: bool = True, name: str = "mouth_expert") -> keras.Model:
    """(B, size, size, 3) face in [0, 1] → (B, 40): x, y of landmarks 49..68 in pixels of the face,
    as offsets from the training mean (the mean is kept by the trainer, not the model).

    `grey`: read luma only (a fixed 1×1 convolution), so that a generator trained against the expert
    cannot move its reading with colour casts (it did: yellow patches, on the eyes too).
    """
    top, bottom, left, right = EXPERT_BOX
    if size < bottom or size < right:
        raise ValueError(f"size must be >= {max(bottom, right)} to hold the mouth box. Received: size={size}")
    if not widths or any(int(w) < 1 for w in widths):
        raise ValueError(f"widths must be positive. Received: widths={widths}")
    p = "mouth_expert"

    # === layers and functional graph ===
    face = keras.Input((size, size, 3), name="face")
    x = keras.layers.Cropping2D(((top, size - bottom), (left, size - right)), name=f"{p}_crop")(face)  # (B, 48, 72, 3)
    if grey:
        luma = keras.layers.Conv2D(1, 1, use_bias=False, trainable=False, name=f"{p}_grey")
        x = luma(x)  # (B, 48, 72, 1)
        luma.set_weights([np.array(LUMA, np.float32).reshape(1, 1, 3, 1)])
    x = keras.layers.Rescaling(2.0, offset=-1.0, name=f"{p}_centre")(x)  # [0, 1] -> [-1, 1]: trains steadier
    for i, width in enumerate(widths, start=1):
        x = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name=f"{p}_conv{i}a")(x)
        x = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name=f"{p}_conv{i}b")(x)
        x = keras.layers.MaxPooling2D(2, name=f"{p}_pool{i}")(x)  # (B, 3, 4, 256) after four
    x = keras.layers.Flatten(name=f"{p}_flatten")(x)
    x = keras.layers.Dense(hidden, activation="relu", name=f"{p}_fc1")(x)
    x = keras.layers.Dense(40, name=f"{p}_fc2")(x)
    # outputs in pixels; landmarks move by a few, so unit-scale activations train faster
    x = keras.layers.Rescaling(PIXEL_SCALE, name=f"{p}_pixels")(x)

    # === model ===
    return keras.Model(face, x, name=name)
