"""Training settings (`TrainConfig`), importable without TensorFlow: the TF loop and the JAX step share them."""

from __future__ import annotations

import dataclasses

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
SHAPE_TERMS = ("landmarks", "aperture")
CLIP_FRAMES = 5  # the SyncNet's video window: the sync-expert loss reads clips of this many frames


LR_SCHEDULES = ("constant", "cosine")
SMALL_DATA = "for small datasets (not in the paper)"


def _field(default, help: str, flag: str | None = None, group: str | None = None, **argparse_kw):
    """A TrainConfig field and its CLI option: the help, flag and group travel as field metadata."""
    return dataclasses.field(default=default, metadata={"help": help, "flag": flag, "group": group,
                                                        "argparse": argparse_kw})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings. Defaults are the paper's: SGD, momentum 0.9, lr 1e-5, ≤ 20 epochs.

    Each field's metadata gives its `speech2vid train` option (`cli_options`), so the two cannot drift.
    """

    epochs: int = _field(20, "epochs at most")
    steps_per_epoch: int = _field(1000, "training steps per epoch")
    val_steps: int | None = _field(None, "validation batches per epoch (default: the whole validation set)",
                                   type=int)
    batch_size: int = _field(32, "global batch size")
    optimizer: str = _field("sgd", "sgd (the paper) or adam", choices=("sgd", "adam"))
    learning_rate: float = _field(1e-5, "learning rate (the paper: 1e-5)", flag="--lr")
    momentum: float = _field(0.9, "SGD momentum")
    lr_schedule: str = _field("constant", "constant, or a cosine decay to lr × --lr-final over the run",
                              choices=LR_SCHEDULES)
    lr_final: float = _field(0.1, "with --lr-schedule cosine: the last learning rate, as a fraction of --lr")
    patience: int = _field(3, "epochs without a better validation L1 before stopping")
    checkpoint_every: int = _field(200, "steps between checkpoints")
    keep_checkpoints: int = _field(3, "checkpoints kept")
    grid_rows: int = _field(4, "examples in the TensorBoard image grid")
    jit_compile: bool = _field(False, "XLA-compile each replica's step (TF driver; the JAX step always is)",
                               flag="--xla")
    # "mixed_bfloat16" computes in bfloat16 with float32 weights (~1.7x faster on CPUs with AVX512-BF16);
    # "mixed_float16" adds loss scaling, for GPUs. Saved models always compute in float32.
    precision: str = _field("float32", "mixed_bfloat16: faster on CPUs with AVX512-BF16 and on GPUs; "
                            "mixed_float16: loss scaling, for GPUs (TF driver)", choices=PRECISIONS)
    # not in the paper, for small data (off by default):
    mouth_weight: float = _field(0.0, "extra L1 weight inside the mouth box (default: 0, the paper's plain L1)",
                                 group=SMALL_DATA)
    freeze: tuple[str, ...] = _field((), "keep the layers whose names start with PREFIX fixed (e.g. audio_)",
                                     group=SMALL_DATA, nargs="+", metavar="PREFIX")
    # loss += shape_weight × mean |expert(composite) − expert(target)|, in landmark pixels, with a frozen
    # mouth-shape expert (.keras from `training.mouth_expert`); composite = the target with the output
    # in the mouth box; over all 40 coordinates (shape_terms "landmarks") or over the three inner-lip
    # openings only ("aperture")
    shape_expert: str | None = _field(None, "a mouth expert .keras (speech2vid train-mouth-expert), for "
                                      "--shape-weight", group=SMALL_DATA, metavar="MODEL")
    shape_weight: float = _field(0.0, "weight of the mouth-shape loss read by --shape-expert (pixels; default 0)",
                                 group=SMALL_DATA)
    shape_terms: str = _field("landmarks", "compare all 20 mouth points, or only the three inner-lip openings",
                              group=SMALL_DATA, choices=SHAPE_TERMS)
    # loss += audio_leak_weight × mean |G(x) − G(x with another example's audio)| above the mouth box
    # (generator only): the audio should move the mouth, not the eyes and brows
    audio_leak_weight: float = _field(0.0, "weight of the upper face's change when the audio is swapped "
                                      "(generator; default 0)", group=SMALL_DATA)

    # loss += sync_weight × −log((1 + cos) / 2) of a frozen SyncNet's embeddings of the generated lower
    # face over 5 consecutive frames and of their speech (Wav2Lip's sync expert); batches are then
    # batch_size / 5 clips of 5 consecutive targets each (generator, TF driver)
    sync_weight: float = _field(0.0, "weight of the sync-expert loss of a frozen SyncNet (generator; default 0)",
                                group=SMALL_DATA)
    sync_expert: str | None = _field(None, "weights folder of the SyncNet for --sync-weight (default: the "
                                     "bundled weights)", group=SMALL_DATA, metavar="WEIGHTS")

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
        if not self.learning_rate >= 0:  # 0 is allowed: a run that only loads and validates
            raise ValueError(f"learning_rate (--lr) must be >= 0. Received: learning_rate={self.learning_rate!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1). Received: momentum={self.momentum!r}")
        if not self.sync_weight >= 0:
            raise ValueError(f"sync_weight must be >= 0. Received: sync_weight={self.sync_weight!r}")
        if self.sync_weight and self.batch_size % CLIP_FRAMES:
            raise ValueError(f"with sync_weight, batch_size must be a multiple of {CLIP_FRAMES} (clips of "
                             f"{CLIP_FRAMES} frames). Received: batch_size={self.batch_size}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}. Received: lr_schedule={self.lr_schedule!r}")
        if not 0 <= self.lr_final <= 1:
            raise ValueError(f"lr_final must be in [0, 1]. Received: lr_final={self.lr_final!r}")
        if self.shape_terms not in SHAPE_TERMS:
            raise ValueError(f"shape_terms must be one of {SHAPE_TERMS}. Received: shape_terms={self.shape_terms!r}")
        object.__setattr__(self, "freeze", tuple(self.freeze))
        for field in ("epochs", "steps_per_epoch", "batch_size", "checkpoint_every"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be >= 1. Received: {field}={getattr(self, field)}")


def cli_options(defaults: dict | None = None):
    """(group, flag, argparse keywords) for every TrainConfig field; `defaults` overrides field defaults
    (e.g. the deblurrer's Adam at 1e-4). The argparse destination is the field name."""
    defaults = defaults or {}
    for f in dataclasses.fields(TrainConfig):
        meta = f.metadata
        default = defaults.get(f.name, f.default)
        kw = {"dest": f.name, "default": default, "help": meta["help"], **meta["argparse"]}
        if isinstance(f.default, bool):
            kw["action"] = "store_true"
        elif "type" not in kw and "nargs" not in kw and f.default is not None:
            kw["type"] = type(f.default)
        yield meta["group"], meta["flag"] or "--" + f.name.replace("_", "-"), kw


def from_cli(args, **overrides) -> TrainConfig:
    """The TrainConfig of parsed `cli_options` arguments."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
    values["freeze"] = tuple(values["freeze"])
    return TrainConfig(**{**values, **overrides})
