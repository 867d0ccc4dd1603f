"""Training settings (`TrainConfig`), importable without TensorFlow: the TF loop and the JAX step share them."""

from __future__ import annotations

import dataclasses

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
SHAPE_TERMS = ("landmarks", "aperture")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings. Defaults are the paper's: SGD, momentum 0.9, lr 1e-5, ≤ 20 epochs."""

    epochs: int = 20
    steps_per_epoch: int = 1000
    val_steps: int | None = None  # None: the whole validation set
    batch_size: int = 32
    optimizer: str = "sgd"
    learning_rate: float = 1e-5
    momentum: float = 0.9
    patience: int = 3  # epochs without a better validation L1 before stopping
    checkpoint_every: int = 200
    keep_checkpoints: int = 3
    grid_rows: int = 4
    jit_compile: bool = False  # XLA-compile each replica's step (forward, backward and update)
    # "mixed_bfloat16" computes in bfloat16 with float32 weights (~1.7x faster on CPUs with AVX512-BF16);
    # "mixed_float16" adds loss scaling, for GPUs. Saved models always compute in float32.
    precision: str = "float32"
    # not in the paper, for small data (off by default):
    mouth_weight: float = 0.0  # L1 weight of the mouth box is 1 + mouth_weight (the rest: 1)
    freeze: tuple[str, ...] = ()  # layer-name prefixes kept fixed, e.g. ("audio_",) after pre-training
    # loss += shape_weight × mean |expert(composite) − expert(target)|, in landmark pixels, with a frozen
    # mouth-shape expert (.keras from `training.mouth_expert`); composite = the target with the output
    # in the mouth box; over all 40 coordinates (shape_terms "landmarks") or over the three inner-lip
    # openings only ("aperture")
    shape_expert: str | None = None
    shape_weight: float = 0.0
    shape_terms: str = "landmarks"
    # loss += audio_leak_weight × mean |G(x) − G(x with another example's audio)| above the mouth box
    # (generator only): the audio should move the mouth, not the eyes and brows
    audio_leak_weight: float = 0.0

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}. Received: precision={self.precision!r}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam'. Received: optimizer={self.optimizer!r}")
        if not self.mouth_weight >= 0:
            raise ValueError(f"mouth_weight must be >= 0. Received: mouth_weight={self.mouth_weight!r}")
        if not self.audio_leak_weight >= 0:
            raise ValueError(f"audio_leak_weight must be >= 0. Received: audio_leak_weight={self.audio_leak_weight!r}")
        if not self.shape_weight >= 0:
            raise ValueError(f"shape_weight must be >= 0. Received: shape_weight={self.shape_weight!r}")
        if bool(self.shape_weight) != (self.shape_expert is not None):
            raise ValueError("shape_weight > 0 and shape_expert go together. Received: "
                             f"shape_weight={self.shape_weight!r}, shape_expert={self.shape_expert!r}")
        if self.shape_terms not in SHAPE_TERMS:
            raise ValueError(f"shape_terms must be one of {SHAPE_TERMS}. Received: shape_terms={self.shape_terms!r}")
        object.__setattr__(self, "freeze", tuple(self.freeze))
        for field in ("epochs", "steps_per_epoch", "batch_size", "checkpoint_every"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be >= 1. Received: {field}={getattr(self, field)}")
