"""What every training driver shares, without TensorFlow: the run folder, the optimiser and its schedule,
starting weights, freezing, the mouth expert, early stopping and the log.

RUN_DIR holds `run.json` (task, backend, model and train configs), `log.csv` (one row per epoch),
`<task>.keras` (the best weights by validation loss, float32) and the driver's checkpoints. A RUN_DIR
continues only the run it holds: the same task, model config and backend.
"""

from __future__ import annotations

import contextlib
import csv
import json
from pathlib import Path

import keras

from keras_speech2vid.config import ModelConfig
from keras_speech2vid.errors import TrainingError  # noqa: F401  (re-exported)
from keras_speech2vid.io import write_text
from keras_speech2vid.training.config import TrainConfig


@contextlib.contextmanager
def dtype_policy(name: str):
    """Build layers under Keras dtype policy `name`, restoring the global policy afterwards."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def learning_rate(cfg: TrainConfig):
    """The learning rate of `cfg.lr_schedule`: a constant, or a cosine decay to lr × lr_final over the run."""
    if cfg.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(cfg.learning_rate, cfg.epochs * cfg.steps_per_epoch,
                                                      alpha=cfg.lr_final)
    return cfg.learning_rate


def make_optimizer(cfg: TrainConfig) -> keras.optimizers.Optimizer:
    lr = learning_rate(cfg)
    if cfg.optimizer == "adam":
        optimizer = keras.optimizers.Adam(lr)
    else:
        optimizer = keras.optimizers.SGD(lr, momentum=cfg.momentum)
    return keras.optimizers.LossScaleOptimizer(optimizer) if cfg.precision == "mixed_float16" else optimizer


def current_lr(optimizer) -> float:
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def check_run_json(run_dir: Path, record: dict) -> None:
    """Write RUN_DIR/run.json, refusing a folder that holds another task, model config or backend."""
    path = run_dir / "run.json"
    record = json.loads(json.dumps(record))  # tuples as lists, as they come back from the file
    if path.exists():
        old = json.loads(path.read_text())
        # through ModelConfig, so that fields added since (with their defaults) still match
        old_model = ModelConfig.from_dict(old["model"]).to_dict() if "model" in old else None
        if old.get("task") != record["task"] or json.loads(json.dumps(old_model)) != record["model"]:
            raise TrainingError(f"{run_dir}: holds a {old.get('task')} run with another model config; "
                                "use a new --out folder")
        old_backend = old.get("backend", "tensorflow")  # runs from before the JAX driver
        if old_backend != record["backend"]:
            raise TrainingError(f"{run_dir}: holds a run of the {old_backend} driver, whose checkpoints the "
                                f"{record['backend']} driver cannot continue; use a new --out folder")
        record["init_from"] = record.get("init_from") or old.get("init_from")  # a resume does not repeat it
    write_text(path, json.dumps(record, indent=2))


def float32_copy(build, config: ModelConfig, model: keras.Model, cfg: TrainConfig) -> keras.Model:
    """`model` itself when trained in float32, else the same weights in a float32-policy model."""
    if cfg.precision == "float32":
        return model
    with dtype_policy("float32"):
        copy = build(config)
    copy.set_weights(model.get_weights())
    return copy


def layers_with_weights(model: keras.Model) -> dict:
    return {layer.name: layer for layer in model._flatten_layers(include_self=False, recursive=True)
            if layer.weights and not isinstance(layer, keras.Model)}


def load_model_file(path: Path, what: str) -> keras.Model:
    """A `.keras` file loaded in safe mode; a missing or unloadable file is a one-line TrainingError."""
    if not path.is_file():
        raise TrainingError(f"{path}: no such {what}")
    import keras_speech2vid.models  # noqa: F401  (registers the custom layers)

    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as e:  # noqa: BLE001  (Keras raises many types for a bad file)
        raise TrainingError(f"{path}: cannot be loaded as a Keras model ({type(e).__name__})") from e


def init_weights(task_name: str, model: keras.Model, source) -> int:
    """Start `model` from a saved model (`.keras`, or a RUN_DIR holding `<task>.keras`): every layer
    with the same name takes its weights (all of them from the same task's model; e.g. only the
    `audio_*` layers from a model that shares just those). Returns the number of layers set."""
    source = Path(source)
    if source.is_dir():
        source = source / f"{task_name}.keras"
    trained = load_model_file(source, "model file to start from")
    ours, theirs = layers_with_weights(model), layers_with_weights(trained)
    shared = sorted(set(ours) & set(theirs))

    def shapes(layer):
        return [tuple(w.shape) for w in layer.weights]

    misfits = [n for n in shared if shapes(ours[n]) != shapes(theirs[n])]
    if misfits or not shared:
        raise TrainingError(f"{source}: its weights do not fit the {task_name} of this model config "
                            f"({'layers ' + ', '.join(misfits[:3]) if misfits else 'no layer names in common'})")
    for name in shared:
        ours[name].set_weights(theirs[name].get_weights())
    return len(shared)


def load_expert(path, size: int) -> keras.Model:
    """The frozen mouth-shape expert of `TrainConfig.shape_expert`, checked against the output size."""
    path = Path(path)
    expert = load_model_file(path, "mouth-expert file")
    if tuple(expert.input_shape[1:]) != (size, size, 3):
        raise TrainingError(f"{path}: the expert reads {expert.input_shape[1:]} images, the model "
                            f"makes {(size, size, 3)}")
    expert.trainable = False
    return expert


def load_sync_streams(weights_dir):
    """(video stream, audio stream, SyncNetConfig) of the frozen SyncNet of `TrainConfig.sync_expert`
    (a weights folder; None: the bundled weights)."""
    from keras_speech2vid.errors import WeightsError
    from keras_speech2vid.sync import SyncNet

    try:
        syncnet = SyncNet.load(weights_dir)
    except WeightsError as e:
        raise TrainingError(f"--sync-weight: {e}") from None
    from keras_speech2vid.training.config import CLIP_FRAMES

    if syncnet.config.video_frames != CLIP_FRAMES:
        raise TrainingError(f"--sync-weight: the SyncNet of {weights_dir or 'the bundled weights'} reads "
                            f"{syncnet.config.video_frames} frames; the sync loss makes clips of {CLIP_FRAMES}")
    syncnet.video.trainable = syncnet.audio.trainable = False
    return syncnet.video, syncnet.audio, syncnet.config


def freeze(model: keras.Model, prefixes: tuple[str, ...]) -> None:
    """Make every layer whose name starts with one of `prefixes` untrainable (BN then uses its moving stats)."""
    if not prefixes:
        return
    layers = [layer for layer in layers_with_weights(model).values() if layer.name.startswith(prefixes)]
    if not layers:
        raise TrainingError(f"freeze {', '.join(prefixes)}: no layer of {model.name} has such a name")
    for layer in layers:
        layer.trainable = False


def early_stopping(val: float | None, best: float, bad_epochs: int) -> tuple[bool, float, int]:
    """(save the weights?, new best, new count of epochs without improvement) after an epoch's validation.
    Without validation every epoch's weights are kept and training never stops early."""
    if val is None:
        return True, best, 0
    if val < best:
        return True, val, 0
    return False, best, bad_epochs + 1


def append_csv(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
