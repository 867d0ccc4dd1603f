"""The generator's training driver on the JAX backend: jit-compiled steps on array chunks, no TensorFlow.

The same run folder, loss, optimiser, schedule, early stopping and log as the TF driver (`training.shared`,
`training.losses`); only the step (`jax_step`), the data (`data.arrays.ArrayData`) and the checkpoint
differ. State (weights, optimiser slots, the loop counters) is saved every `checkpoint_every` steps and
at each epoch end as RUN_DIR/checkpoints/state-<step>.npz, written under a temporary name and renamed,
so a `kill -9` at any moment leaves the previous checkpoint whole; a RUN_DIR holding one continues from
it. Batch k depends only on (seed, k), so a resumed run reads the same batches as an unbroken one.

Run under ``KERAS_BACKEND=jax`` (`speech2vid train --backend jax` sets it).
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import math
from pathlib import Path

import keras
import numpy as np

from keras_speech2vid.config import ModelConfig, get_config
from keras_speech2vid.io import atomic_path
from keras_speech2vid.training import jax_step
from keras_speech2vid.training.config import TrainConfig
from keras_speech2vid.training.losses import GeneratorLoss
from keras_speech2vid.training.shared import (TrainingError, append_csv, check_run_json, current_lr, dtype_policy,
                                              early_stopping, float32_copy, freeze, init_weights, layers_with_weights,
                                              load_expert, make_optimizer)

CHECKPOINTS = "checkpoints"
COUNTERS = ("step", "epochs_done", "best_val", "bad_epochs")


def checkpoints(run_dir) -> list[Path]:
    """The run's JAX checkpoints, oldest first."""
    return sorted((Path(run_dir) / CHECKPOINTS).glob("state-*.npz"))


def _remove_partial_files(run_dir: Path) -> None:
    """The temporaries a kill -9 left mid-write (hidden names: nothing ever read them)."""
    for leftover in [*(run_dir / CHECKPOINTS).glob(".state-*"), *run_dir.glob(".generator.keras.*")]:
        leftover.unlink()


def _save_state(run_dir: Path, state, counters: dict, keep: int) -> None:
    arrays = {f"{group}{i}": np.asarray(value) for group, values in zip("tno", state) for i, value in enumerate(values)}
    arrays["counters"] = np.array([counters[k] for k in COUNTERS], np.float64)
    path = run_dir / CHECKPOINTS / f"state-{int(counters['step']):09d}.npz"
    path.parent.mkdir(exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    for old in checkpoints(run_dir)[:-keep]:
        old.unlink()


def _load_state(path: Path, state):
    with np.load(path, allow_pickle=False) as d:
        loaded = tuple([d[f"{group}{i}"] for i in range(len(values))] for group, values in zip("tno", state))
        counters = dict(zip(COUNTERS, d["counters"].tolist()))
    for values, new in zip(state, loaded):
        for old, value in zip(values, new):
            if tuple(old.shape) != tuple(value.shape):
                raise TrainingError(f"{path}: a checkpoint of another model (shape {value.shape}, not {old.shape})")
    return loaded, counters


def _prefetch(make, steps, depth: int = 2):
    """make(step) for each of `steps`, computed `depth` ahead on a thread (JPEG decoding overlaps the step)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        queue = collections.deque()
        for step in steps:
            queue.append(pool.submit(make, step))
            if len(queue) > depth:
                yield queue.popleft().result()
        while queue:
            yield queue.popleft().result()


def train_jax(model_config: ModelConfig | str, train_data, run_dir, train_config: TrainConfig = TrainConfig(),
              val_data=None, seed: int = 0, verbose: int = 1, init_from=None) -> dict:
    """Train the generator on `train_data` (an `ArrayData`); returns {"step", "epochs", "best_val", "history"}.

    `val_data` (an `ArrayData`) is read in full each epoch (or `val_steps` batches) for early stopping;
    `init_from` (a `generator.keras` or a RUN_DIR) gives the starting weights of a new run."""
    from keras_speech2vid.models import build_generator

    if keras.backend.backend() != "jax":
        raise TrainingError(f"the JAX driver needs KERAS_BACKEND=jax (Keras runs on {keras.backend.backend()})")
    model_config, cfg, run_dir = get_config(model_config), train_config, Path(run_dir)
    if cfg.precision == "mixed_float16":
        raise TrainingError("precision mixed_float16 (loss scaling) is for the TF driver; use mixed_bfloat16")
    if train_data.n != model_config.identity_images:
        raise TrainingError(f"the data gives {train_data.n} identity images, the model takes "
                            f"{model_config.identity_images}")
    run_dir.mkdir(parents=True, exist_ok=True)
    check_run_json(run_dir, {"task": "generator", "backend": "jax", "model": model_config.to_dict(),
                             "train": dataclasses.asdict(cfg), "init_from": None if init_from is None else str(init_from)})

    # === model, optimiser, loss and steps ===
    keras.utils.set_random_seed(seed)  # the initial weights too: a run is a function of its seed
    with dtype_policy(cfg.precision):
        model = build_generator(model_config)
        freeze(model, cfg.freeze)
        optimizer = make_optimizer(cfg)
    with dtype_policy("float32"):
        expert = load_expert(cfg.shape_expert, model_config.output_size) if cfg.shape_weight else None
    loss = GeneratorLoss(cfg, model_config.output_size, expert)
    train_step = jax_step.make_train_step(model, optimizer, loss)
    eval_step = jax_step.make_eval_step(model, loss)
    state = jax_step.state_of(model, optimizer)
    counters = {"step": 0, "epochs_done": 0, "best_val": math.inf, "bad_epochs": 0}
    _remove_partial_files(run_dir)
    saved = checkpoints(run_dir)
    if saved:
        state, counters = _load_state(saved[-1], state)
        if verbose:
            print(f"Resuming generator from {saved[-1]} (step {int(counters['step'])}, "
                  f"epoch {int(counters['epochs_done']) + 1})")
    elif init_from is not None:
        count = init_weights("generator", model, init_from)
        state = jax_step.state_of(model, optimizer)
        if verbose:
            print(f"Starting generator from the weights of {init_from} ({count} of "
                  f"{len(layers_with_weights(model))} layers)")

    def evaluate():
        if val_data is None:
            return None
        total = count = 0.0
        for inputs, target in val_data.val_batches(cfg.batch_size, cfg.val_steps):
            total, count = total + float(eval_step(state, inputs, target)), count + len(target)
        return total / count if count else None

    def save_best():
        jax_step.assign_state(model, optimizer, state)
        with atomic_path(run_dir / "generator.keras") as tmp:
            float32_copy(build_generator, model_config, model, cfg).save(tmp)

    # === loop ===
    csv_path, history, spe = run_dir / "log.csv", [], cfg.steps_per_epoch
    if counters["step"] == 0 and counters["epochs_done"] == 0:  # the untrained model, the baseline of every curve
        val0 = evaluate()
        history.append({"epoch": 0, "step": 0, "loss": "", "val_loss": "" if val0 is None else val0,
                        "learning_rate": current_lr(optimizer)})
        append_csv(csv_path, history[-1])
    while counters["epochs_done"] < cfg.epochs and counters["bad_epochs"] < cfg.patience:
        epoch = int(counters["epochs_done"])
        first = int(counters["step"])
        done = first - epoch * spe
        bar = keras.utils.Progbar(spe - done, verbose=verbose, stateful_metrics=["loss"]) if verbose else None
        if verbose:
            print(f"Epoch {epoch + 1}/{cfg.epochs}" + (f" (from step {done} of {spe})" if done else ""))
        losses = []
        batches = _prefetch(lambda k: train_data.train_batch(k, cfg.batch_size, seed), range(first, (epoch + 1) * spe))
        for inputs, target in batches:
            value, state = train_step(state, inputs, target)
            value = float(value)
            if not math.isfinite(value):
                raise TrainingError(f"{run_dir}: training loss became {value} at step {int(counters['step']) + 1}")
            counters["step"] += 1
            losses.append(value)
            if bar:
                bar.update(len(losses), [("loss", value)])
            if counters["step"] % cfg.checkpoint_every == 0:
                _save_state(run_dir, state, counters, cfg.keep_checkpoints)
        val = evaluate()
        train_loss = float(np.mean(losses)) if losses else float("nan")
        save, counters["best_val"], counters["bad_epochs"] = early_stopping(val, counters["best_val"],
                                                                            int(counters["bad_epochs"]))
        if save:
            save_best()
        counters["epochs_done"] += 1
        _save_state(run_dir, state, counters, cfg.keep_checkpoints)
        jax_step.assign_state(model, optimizer, state)  # for the learning rate at this step
        row = {"epoch": epoch + 1, "step": int(counters["step"]), "loss": train_loss,
               "val_loss": "" if val is None else val, "learning_rate": current_lr(optimizer)}
        history.append(row)
        append_csv(csv_path, row)
        if verbose:
            print(f"epoch {epoch + 1}: loss {train_loss:.5f}" + ("" if val is None else f", val_loss {val:.5f}"))
    return {"step": int(counters["step"]), "epochs": int(counters["epochs_done"]),
            "best_val": float(counters["best_val"]), "history": history}
