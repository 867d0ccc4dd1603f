"""Start or continue a training run: `start_run`, the one entry point of the CLI, the notebooks and the tests.

It checks the run folder and the options, finds the validation split, and hands over to a driver:
`tf_driver.train` (TFRecords from `prepare`) or `jax_driver.train_jax` (chunks from `export-arrays`).
"""

from __future__ import annotations

from pathlib import Path

from keras_speech2vid.config import ModelConfig
from keras_speech2vid.errors import TrainingError
from keras_speech2vid.training.config import TrainConfig

BACKENDS = ("tensorflow", "jax")


def has_checkpoint(run_dir) -> bool:
    """Whether RUN_DIR holds a checkpoint of either driver."""
    folder = Path(run_dir) / "checkpoints"
    return any(folder.glob("ckpt-*.index")) or any(folder.glob("state-*.npz"))


def start_run(task: str, data, run_dir, model_config: ModelConfig | str = "paper",
              train_config: TrainConfig = TrainConfig(), backend: str = "tensorflow", *, strategy: str = "auto",
              seed: int | None = None, init_from=None, resume: bool = False, model_overrides: dict | None = None,
              verbose: int = 1) -> dict:
    """Start or continue a training run: the one entry point of the CLI, the notebooks and the tests.

    `data` is a folder of `speech2vid prepare` (TF driver) or of `speech2vid export-arrays` (JAX driver);
    its validation split, when it has one, drives early stopping (without one the last weights are kept).
    `model_overrides` are `ModelConfig` fields set on the preset. `resume` requires a checkpoint.
    Returns the driver's {"step", "epochs", "best_val", "history"}.
    """
    from keras_speech2vid.config import get_config
    from keras_speech2vid.data.arrays import ArrayData, is_arrays_dir

    if backend not in BACKENDS:
        raise TrainingError(f"backend must be one of {BACKENDS}. Received: backend={backend!r}")
    if resume and not has_checkpoint(run_dir):
        raise TrainingError(f"{run_dir}: --resume given but there is no checkpoint to continue from")
    try:
        config = get_config(model_config).replace(**(model_overrides or {}))
    except (ValueError, TypeError) as e:
        raise TrainingError(f"model config: {e}") from None
    if backend == "jax":
        if train_config.sync_weight:
            raise TrainingError("--sync-weight needs clips of consecutive frames, which array chunks do not "
                                "hold yet; use the TF driver")
        if task != "generator":
            raise TrainingError(f"the JAX driver trains the generator; train the {task} with the TF driver")
        if config.audio_front_end != "mfcc":
            raise TrainingError(f"array chunks hold MFCC windows only; train the {config.name} preset "
                                f"({config.audio_front_end} front end) with the TF driver")
        if not is_arrays_dir(data):
            raise TrainingError(f"{data}: the JAX driver reads array chunks; make them with "
                                "`speech2vid export-arrays DATA_DIR --out ARRAYS_DIR`")
        from keras_speech2vid.data.arrays import read_arrays_json
        from keras_speech2vid.training.jax_driver import train_jax

        has_val = bool(read_arrays_json(data)["splits"].get("val"))
        train_data = ArrayData(data, "train", config.identity_images)
        val_data = ArrayData(data, "val", config.identity_images) if has_val else None
        return train_jax(config, train_data, run_dir, train_config, val_data, seed=seed or 0, verbose=verbose,
                         init_from=init_from)
    if is_arrays_dir(data):
        raise TrainingError(f"{data}: array chunks are for --backend jax; the TF driver reads a prepare folder")
    from keras_speech2vid.data.dataset import make_dataset, read_manifest
    from keras_speech2vid.training.tf_driver import make_strategy, train

    tf_strategy = make_strategy(strategy)
    clips = {}
    if train_config.sync_weight:  # clips of consecutive frames, with the SyncNet's audio windows
        from keras_speech2vid.training.config import CLIP_FRAMES
        from keras_speech2vid.training.shared import load_sync_streams

        clips = {"clip_frames": CLIP_FRAMES, "sync_config": load_sync_streams(train_config.sync_expert)[2]}
    train_ds = make_dataset(data, "train", config, train_config.batch_size, seed=seed, **clips)
    has_val = any(v["split"] == "val" for v in read_manifest(data)["videos"])
    val_ds = make_dataset(data, "val", config, train_config.batch_size, seed=0, **clips) if has_val else None
    return train(task, config, train_ds, run_dir, train_config, val_ds=val_ds, strategy=tf_strategy,
                 verbose=verbose, init_from=init_from)
