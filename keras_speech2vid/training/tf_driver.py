"""One resumable training loop for both nets (generator and deblurrer), under any tf.distribute strategy.

Per-pixel L1 loss. State (weights, optimiser slots, step, epochs done, early-stopping state) lives in
a `tf.train.Checkpoint` under RUN_DIR/checkpoints, saved every `checkpoint_every` steps and at each
epoch end. TF writes the checkpoint files first and then atomically replaces the `checkpoint` index,
so a `kill -9` at any moment leaves the previous checkpoint intact and loses at most
`checkpoint_every` steps. A RUN_DIR holding a checkpoint always continues from the latest one.

Not in the paper, for small datasets (all off by default): `init_from` starts a new run from saved
weights (layer by layer, by name), `TrainConfig.mouth_weight` weights the L1 more inside the mouth
box, `TrainConfig.freeze` keeps layers fixed, `TrainConfig.shape_weight` adds a mouth-shape term
read by a frozen expert (`models.mouth_expert`), `TrainConfig.audio_leak_weight` penalises
changes of the upper face when an example gets another example's audio, `TrainConfig.sync_weight`
adds a frozen SyncNet's sync loss on clips of 5 consecutive frames (`training.losses.sync_term`).

RUN_DIR afterwards: `<task>.keras` (best weights by validation loss), `run.json` (configs),
`log.csv`, `logs/{train,val}` (TensorBoard: losses, learning rate, image grid), `checkpoints/`.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_speech2vid.config import ModelConfig, get_config
from keras_speech2vid.io import atomic_path
from keras_speech2vid.training.config import TrainConfig
from keras_speech2vid.training.losses import GeneratorLoss
from keras_speech2vid.training.shared import (TrainingError, append_csv, check_run_json, current_lr, dtype_policy,
                                              early_stopping, float32_copy, freeze, init_weights, layers_with_weights,
                                              load_expert, load_sync_streams, make_optimizer)
from keras_speech2vid.training.tasks import TASKS, Task, image_grid

STRATEGIES = ("auto", "one", "mirrored", "multiworker", "tpu")
def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """The tf.distribute strategy named by the CLI flag. `multiworker` reads TF_CONFIG."""
    if name == "auto":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    if name == "one":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"Unknown strategy. Expected one of {STRATEGIES}. Received: {name!r}")


def _worker_dir(run_dir: Path, strategy) -> tuple[Path, bool]:
    """Where this worker writes: RUN_DIR for the chief, a scratch folder for the others."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    task_id = getattr(resolver, "task_id", 0) or 0
    chief = task_type in (None, "chief") or (task_type == "worker" and task_id == 0
                                             and "chief" not in (resolver.cluster_spec().as_dict() or {}))
    return (run_dir, True) if chief else (run_dir / f".worker{task_id}", False)


def _frame(out) -> tf.Tensor:
    """The float32 image of a model output (the generator returns a dict, the deblurrer a tensor)."""
    return tf.cast(out["frame"] if isinstance(out, dict) else out, tf.float32)


def _predict(model, inputs):
    return _frame(model(inputs, training=False))


def train(task: Task | str, model_config: ModelConfig | str, train_ds: tf.data.Dataset, run_dir,
          train_config: TrainConfig = TrainConfig(), val_ds: tf.data.Dataset | None = None,
          strategy: tf.distribute.Strategy | None = None, verbose: int = 1, init_from=None) -> dict:
    """Train `task` ("generator" or "deblurrer") on batches of ``({"mfcc", "identity"}, target)``.

    `train_ds` yields global batches and is repeated here; `val_ds` is read in full each epoch
    (or `val_steps` batches). `init_from` (a `<task>.keras` or a RUN_DIR) gives the starting weights
    of a new run; a run with a checkpoint ignores it. Returns {"step", "epochs", "best_val", "history"}.
    """
    task = TASKS[task] if isinstance(task, str) else task
    model_config = get_config(model_config)
    cfg = train_config
    strategy = strategy or tf.distribute.get_strategy()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_dir, chief = _worker_dir(run_dir, strategy)
    write_dir.mkdir(parents=True, exist_ok=True)
    if chief:
        check_run_json(run_dir, {"task": task.name, "backend": "tensorflow", "model": model_config.to_dict(),
                                  "train": dataclasses.asdict(cfg),
                                  "init_from": None if init_from is None else str(init_from)})

    # === model, optimiser and checkpointed state ===
    with strategy.scope(), dtype_policy(cfg.precision):
        model = task.build(model_config)
        freeze(model, cfg.freeze)
        view = task.train_view(model)
        optimizer = make_optimizer(cfg)
        optimizer.build(view.trainable_variables)
    with strategy.scope(), dtype_policy("float32"):
        expert = load_expert(cfg.shape_expert, model_config.output_size) if cfg.shape_weight else None
        sync = load_sync_streams(cfg.sync_expert)[:2] if cfg.sync_weight else None
    for name in ("audio_leak_weight", "sync_weight"):
        if getattr(cfg, name) and task.name != "generator":
            raise TrainingError(f"{name} is for the generator; the {task.name} has no audio input")
    # a deblurrer's output is the 109 frame too (its inputs are degraded targets)
    loss_of = GeneratorLoss(cfg, model_config.output_size, expert, sync)
    # loop counters live outside the strategy: plain host variables, the same on every worker
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    epochs_done = tf.Variable(0, dtype=tf.int64, trainable=False, name="epochs_done")
    best_val = tf.Variable(np.inf, dtype=tf.float64, trainable=False, name="best_val")
    bad_epochs = tf.Variable(0, dtype=tf.int64, trainable=False, name="bad_epochs")
    ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step, epochs_done=epochs_done,
                               best_val=best_val, bad_epochs=bad_epochs)
    manager = tf.train.CheckpointManager(ckpt, write_dir / "checkpoints", max_to_keep=cfg.keep_checkpoints)
    latest = tf.train.latest_checkpoint(run_dir / "checkpoints")
    if latest:
        ckpt.restore(latest).assert_existing_objects_matched()
        if verbose:
            print(f"Resuming {task.name} from {latest} (step {int(step)}, epoch {int(epochs_done) + 1})")
    elif init_from is not None:
        count = init_weights(task.name, model, init_from)
        if verbose:
            print(f"Starting {task.name} from the weights of {init_from} ({count} of "
                  f"{len(layers_with_weights(model))} layers)")

    # === distributed step functions ===
    def loss_fn(inputs, target, training):  # per-example loss (`training.losses`)
        return loss_of(lambda x, t: _frame(view(x, training=t)), inputs, target, training)

    def replica_update(inputs, target):
        with tf.GradientTape() as tape:
            loss = tf.nn.compute_average_loss(loss_fn(inputs, target, True))
        grads = tape.gradient(loss, view.trainable_variables)
        optimizer.apply_gradients(zip(grads, view.trainable_variables))
        return loss

    if cfg.jit_compile:  # the update only: the deblurrer's random degradation does not compile
        replica_update = tf.function(replica_update, jit_compile=True)

    def replica_train_step(inputs, target):
        return replica_update(*task.map_batch(inputs, target, True))

    def replica_val_step(inputs, target):
        inputs, target = task.map_batch(inputs, target, False)
        per_example = loss_fn(inputs, target, False)
        return tf.reduce_sum(per_example), tf.cast(tf.size(per_example), tf.float32)

    @tf.function
    def train_step(iterator):
        return strategy.reduce("SUM", strategy.run(replica_train_step, args=next(iterator)), axis=None)

    @tf.function
    def val_step(batch):
        total, count = strategy.run(replica_val_step, args=batch)
        return strategy.reduce("SUM", total, axis=None), strategy.reduce("SUM", count, axis=None)

    def evaluate():
        if val_ds is None:
            return None
        total = count = 0.0
        for i, batch in enumerate(strategy.experimental_distribute_dataset(val_ds)):
            if cfg.val_steps is not None and i >= cfg.val_steps:
                break
            t, c = val_step(batch)
            total, count = total + float(t), count + float(c)
        return total / count if count else None

    grid_batch = next(iter(val_ds if val_ds is not None else train_ds))
    grid_inputs, grid_target = task.map_batch(*grid_batch, False)
    if isinstance(grid_inputs, dict):  # the sync term's speech is not a model input
        grid_inputs = {k: v for k, v in grid_inputs.items() if k != "sync_audio"}

    def write_grid(writer, at_step):
        panels = task.panels(grid_inputs, grid_target, _predict(model, grid_inputs))
        with writer.as_default():
            tf.summary.image("grid (input | generated | ground truth)", image_grid(panels, cfg.grid_rows), step=at_step)

    # === loop ===
    logs = write_dir / "logs"
    train_writer = tf.summary.create_file_writer(str(logs / "train"))
    val_writer = tf.summary.create_file_writer(str(logs / "val"))
    csv_path = write_dir / "log.csv"
    history = []
    iterator = iter(strategy.experimental_distribute_dataset(train_ds.repeat()))
    spe = cfg.steps_per_epoch
    if int(step) == 0 and int(epochs_done) == 0:  # the untrained model, the baseline of every curve
        val0 = evaluate()
        if val0 is not None:
            with val_writer.as_default():
                tf.summary.scalar("epoch_l1", val0, step=0)
        write_grid(val_writer, 0)
        history.append({"epoch": 0, "step": 0, "loss": "", "val_loss": "" if val0 is None else val0,
                        "learning_rate": current_lr(optimizer)})
        append_csv(csv_path, history[-1])
    while int(epochs_done) < cfg.epochs and int(bad_epochs) < cfg.patience:
        epoch = int(epochs_done)
        done = int(step) - epoch * spe
        # the bar counts this session's steps only, so its time per step is a true rate after a resume
        bar = keras.utils.Progbar(spe - done, verbose=verbose, stateful_metrics=["loss"]) if verbose else None
        if verbose:
            print(f"Epoch {epoch + 1}/{cfg.epochs}" + (f" (from step {done} of {spe})" if done else ""))
        losses = []
        for _ in range(max(0, spe - done)):
            loss = float(train_step(iterator))
            if not math.isfinite(loss):
                raise TrainingError(f"{run_dir}: training loss became {loss} at step {int(step) + 1}")
            step.assign_add(1)
            losses.append(loss)
            if bar:
                bar.update(len(losses), [("loss", loss)])
            if int(step) % cfg.checkpoint_every == 0:
                manager.save(checkpoint_number=int(step))
            if int(step) % 10 == 0:
                with train_writer.as_default():
                    tf.summary.scalar("l1", loss, step=int(step))
                    tf.summary.scalar("learning_rate", current_lr(optimizer), step=int(step))
        val = evaluate()
        train_loss = float(np.mean(losses)) if losses else float("nan")
        with train_writer.as_default():
            tf.summary.scalar("epoch_l1", train_loss, step=int(step))
        if val is not None:
            with val_writer.as_default():
                tf.summary.scalar("epoch_l1", val, step=int(step))
        write_grid(val_writer, int(step))
        save, best, bad = early_stopping(val, float(best_val), int(bad_epochs))
        best_val.assign(best)
        bad_epochs.assign(bad)
        if save:
            with atomic_path(write_dir / f"{task.name}.keras") as tmp:
                float32_copy(task.build, model_config, model, cfg).save(tmp)
        epochs_done.assign_add(1)
        manager.save(checkpoint_number=int(step))
        row = {"epoch": epoch + 1, "step": int(step), "loss": train_loss,
               "val_loss": "" if val is None else val, "learning_rate": current_lr(optimizer)}
        history.append(row)
        append_csv(csv_path, row)
        if verbose:
            print(f"epoch {epoch + 1}: loss {train_loss:.5f}" + ("" if val is None else f", val_loss {val:.5f}"))
    train_writer.flush()
    val_writer.flush()
    if not chief:
        shutil.rmtree(write_dir, ignore_errors=True)
    return {"step": int(step), "epochs": int(epochs_done), "best_val": float(best_val), "history": history}
