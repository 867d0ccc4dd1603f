"""Training machinery: resume, kill -9, logs. Learning itself is tested on real clips in test_learning.py."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_speech2vid.training import TrainConfig, TrainingError, train
from tests.training.synthetic import run, synthetic_dataset

ROOT = Path(__file__).resolve().parents[2]


def _steps(run_dir):
    return sorted(int(p.name.split("-")[1].split(".")[0]) for p in (run_dir / "checkpoints").glob("ckpt-*.index"))


def test_resume_continues_step_count_and_logs(tmp_path):
    first = run(tmp_path, epochs=2, steps_per_epoch=3, checkpoint_every=2)
    assert first["step"] == 6 and first["epochs"] == 2
    second = run(tmp_path, epochs=3, steps_per_epoch=3, checkpoint_every=2)
    assert second["step"] == 9 and [h["epoch"] for h in second["history"]] == [3]
    rows = list(csv.DictReader(open(tmp_path / "log.csv")))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3] and [int(r["step"]) for r in rows] == [0, 3, 6, 9]
    # a finished run does nothing more
    assert run(tmp_path, epochs=3, steps_per_epoch=3, checkpoint_every=2)["history"] == []


def test_event_file_has_losses_lr_and_image_grid(tmp_path):
    run(tmp_path, epochs=1, steps_per_epoch=10, checkpoint_every=5)
    tags = {}
    for event_file in (tmp_path / "logs").rglob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            for value in event.summary.value:
                tags[value.tag] = value
    assert {"l1", "learning_rate", "epoch_l1"} <= set(tags)
    grid = next(v for t, v in tags.items() if t.startswith("grid"))
    image = tf.io.decode_png(tf.make_ndarray(grid.tensor)[2]).numpy()  # [width, height, png]
    # 3 panels side by side (identity | generated | ground truth), one 109-px row per example
    assert image.shape[1] == 3 * 109 and image.shape[0] % 109 == 0


def test_a_run_json_from_before_a_new_config_field_still_resumes(tmp_path):
    run(tmp_path, epochs=1, steps_per_epoch=2, checkpoint_every=2)
    record = json.loads((tmp_path / "run.json").read_text())
    del record["model"]["identity_mouth_fill"]  # as written before that field existed
    (tmp_path / "run.json").write_text(json.dumps(record))
    assert run(tmp_path, epochs=2, steps_per_epoch=2, checkpoint_every=2)["step"] == 4


def test_other_model_config_in_run_dir_is_refused(tmp_path):
    run(tmp_path, epochs=1, steps_per_epoch=1, checkpoint_every=1)
    ds = synthetic_dataset(identity_images=1)
    with pytest.raises(TrainingError, match="another model config"):
        train("generator", "paper_1img", ds, tmp_path, TrainConfig(epochs=1, steps_per_epoch=1), verbose=0)


def test_kill_9_then_resume(tmp_path):
    code = ("import sys; sys.path.insert(0, %r); from tests.training.synthetic import run; "
            "run(%r, epochs=1, steps_per_epoch=400, checkpoint_every=3)" % (str(ROOT), str(tmp_path)))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    child = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and (not (tmp_path / "checkpoints").exists() or not _steps(tmp_path)
                                      or _steps(tmp_path)[-1] < 9):
        assert child.poll() is None, child.stderr.read().decode()[-2000:]
        time.sleep(0.2)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert _steps(tmp_path), "no checkpoint was written before the kill"
    last = tf.train.latest_checkpoint(tmp_path / "checkpoints")
    saved_step = int(tf.train.load_checkpoint(last).get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE"))
    assert saved_step >= 9 and saved_step % 3 == 0
    # every checkpoint left behind is readable
    for s in _steps(tmp_path):
        tf.train.load_checkpoint(str(tmp_path / "checkpoints" / f"ckpt-{s}"))
    result = run(tmp_path, epochs=1, steps_per_epoch=saved_step + 2, checkpoint_every=3)
    assert result["step"] == saved_step + 2  # continued: only the 2 missing steps were run
    model = keras.saving.load_model(tmp_path / "generator.keras", safe_mode=True)
    frame = model({"mfcc": np.zeros((1, 12, 35, 1), "float32"), "identity": np.zeros((1, 112, 112, 15), "float32")})
    assert np.isfinite(np.asarray(frame["frame"])).all()


def test_deblurrer_task_trains_pre_clip_view_with_xla(tmp_path):
    models = {}
    for jit in (True, False):  # the same seed: XLA must train the same weights as the plain graph
        keras.utils.set_random_seed(7)
        result = run(tmp_path / str(jit), epochs=1, steps_per_epoch=2, checkpoint_every=1, task="deblurrer",
                     jit_compile=jit)
        assert result["step"] == 2
        models[jit] = keras.saving.load_model(tmp_path / str(jit) / "deblurrer.keras", safe_mode=True)
    assert models[True].get_layer("deblur_clip") is not None  # the saved model is the full, clipped deblurrer
    moved = 0.0
    for a, b in zip(models[True].weights, models[False].weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-4)
    keras.utils.set_random_seed(7)
    from keras_speech2vid.models import build_deblurrer

    for a, b in zip(build_deblurrer("tiny").weights, models[True].weights):  # and training moved them
        moved = max(moved, float(np.abs(np.asarray(a) - np.asarray(b)).max()))
    assert moved > 1e-4


@pytest.mark.parametrize("task", ["generator", "deblurrer"])
def test_mixed_bfloat16_trains_and_saves_a_float32_model(tmp_path, task):
    result = run(tmp_path, epochs=1, steps_per_epoch=2, checkpoint_every=1, task=task, precision="mixed_bfloat16")
    assert result["step"] == 2 and np.isfinite(result["best_val"])
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
    model = keras.saving.load_model(tmp_path / f"{task}.keras", safe_mode=True)
    convs = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.Conv2D)]
    assert convs and all(layer.dtype_policy.name == "float32" for layer in convs)


def test_l1_weight_map_puts_mouth_weight_in_the_mouth_box_and_averages_to_one():
    from keras_speech2vid.evaluation.metrics import mouth_box
    from keras_speech2vid.training.losses import l1_weight_map

    assert np.allclose(np.asarray(l1_weight_map(109, 0.0)), 1.0)
    for size in (109, 112):
        w = np.asarray(l1_weight_map(size, 4.0))[0, :, :, 0]
        top, bottom, left, right = mouth_box(size=size)
        assert w.shape == (size, size) and np.isclose(w.mean(), 1.0, atol=1e-6)
        inside = np.zeros_like(w, bool)
        inside[top:bottom, left:right] = True
        assert np.allclose(w[inside] / w[~inside].max(), 5.0) and np.ptp(w[~inside]) < 1e-6
        assert top > size // 2  # the mouth box is in the lower half of the face


def _weighted_val_l1(model, ds, mouth_weight):
    from keras_speech2vid.training.losses import l1_weight_map

    errors = []
    for inputs, target in ds:
        frame = np.asarray(model(inputs, training=False)["frame"])
        weights = np.asarray(l1_weight_map(109, mouth_weight))
        errors.append(np.mean(np.abs(target.numpy() - frame) * weights, axis=(1, 2, 3)))
    return float(np.mean(np.concatenate(errors)))


def test_mouth_weight_is_the_validation_loss_and_init_from_starts_from_those_weights(tmp_path):
    from keras_speech2vid.evaluation.metrics import mouth_box

    ds = synthetic_dataset()
    inputs, target = next(iter(ds))
    top, bottom, left, right = mouth_box()
    target = target.numpy()
    target[:, top:bottom, left:right] = 1.0  # errors in the mouth box differ from those elsewhere
    val = tf.data.Dataset.from_tensors((inputs, target))
    cfg = TrainConfig(epochs=1, steps_per_epoch=3, optimizer="adam", learning_rate=1e-3, mouth_weight=4.0)
    first = train("generator", "tiny", ds, tmp_path / "a", cfg, val_ds=val, verbose=0)
    model = keras.saving.load_model(tmp_path / "a" / "generator.keras", safe_mode=True)
    weighted, plain = _weighted_val_l1(model, val, 4.0), _weighted_val_l1(model, val, 0.0)
    assert np.isclose(first["best_val"], weighted, rtol=1e-4) and weighted > 1.2 * plain
    # a new run from those weights: its untrained (epoch 0) validation loss is the first run's final one
    second = train("generator", "tiny", ds, tmp_path / "b", cfg, val_ds=val, verbose=0, init_from=tmp_path / "a")
    assert np.isclose(float(second["history"][0]["val_loss"]), first["best_val"], rtol=1e-5)
    assert json.loads((tmp_path / "b" / "run.json").read_text())["init_from"] == str(tmp_path / "a")
    # resuming ignores init_from and keeps the record of it
    again = train("generator", "tiny", ds, tmp_path / "b", TrainConfig(**{**cfg.__dict__, "epochs": 2}), val_ds=val,
                  verbose=0)
    assert again["step"] == 6
    assert json.loads((tmp_path / "b" / "run.json").read_text())["init_from"] == str(tmp_path / "a")


def test_init_from_a_missing_or_unfitting_model_is_refused(tmp_path):
    ds = synthetic_dataset()
    cfg = TrainConfig(epochs=1, steps_per_epoch=1)
    with pytest.raises(TrainingError, match="no such model file"):
        train("generator", "tiny", ds, tmp_path / "a", cfg, verbose=0, init_from=tmp_path / "missing.keras")
    train("generator", "tiny", ds, tmp_path / "b", cfg, verbose=0)
    with pytest.raises(TrainingError, match="do not fit"):
        train("generator", "paper_1img", synthetic_dataset(identity_images=1), tmp_path / "c",
              cfg, verbose=0, init_from=tmp_path / "b")


def test_init_from_a_model_sharing_some_layers_sets_only_those(tmp_path):
    from keras_speech2vid.models import build_audio_encoder

    encoder = build_audio_encoder("tiny")
    for v in encoder.weights:  # recognisable values
        v.assign(np.full(v.shape, 0.125, "float32"))
    encoder.save(tmp_path / "audio.keras")
    cfg = TrainConfig(epochs=1, steps_per_epoch=1, optimizer="sgd", learning_rate=0.0, momentum=0.0)
    train("generator", "tiny", synthetic_dataset(), tmp_path / "run", cfg, verbose=0,
          init_from=tmp_path / "audio.keras")
    model = keras.saving.load_model(tmp_path / "run" / "generator.keras", safe_mode=True)
    audio = model.get_layer("audio_encoder")
    conv_kernels = [layer.kernel.numpy() for layer in audio.layers if isinstance(layer, keras.layers.Conv2D)]
    assert conv_kernels and all(np.all(k == 0.125) for k in conv_kernels)  # lr 0: the copied values stay
    face = [layer.kernel.numpy() for layer in model.get_layer("identity_encoder").layers
            if isinstance(layer, keras.layers.Conv2D)]
    assert not any(np.all(k == 0.125) for k in face)


def test_frozen_layers_keep_their_weights_and_the_rest_trains(tmp_path):
    ds = synthetic_dataset()
    first = TrainConfig(epochs=1, steps_per_epoch=1)
    train("generator", "tiny", ds, tmp_path / "a", first, verbose=0)
    cfg = TrainConfig(epochs=1, steps_per_epoch=3, optimizer="adam", learning_rate=1e-2, freeze=["audio_"])
    train("generator", "tiny", ds, tmp_path / "b", cfg, val_ds=ds.take(1), verbose=0, init_from=tmp_path / "a")
    before = keras.saving.load_model(tmp_path / "a" / "generator.keras", safe_mode=True)
    after = keras.saving.load_model(tmp_path / "b" / "generator.keras", safe_mode=True)
    for name in ("audio_encoder", "identity_encoder", "decoder"):
        old, new = before.get_layer(name).get_weights(), after.get_layer(name).get_weights()
        same = all(np.array_equal(o, n) for o, n in zip(old, new))
        assert same == (name == "audio_encoder"), name  # BN moving stats of frozen layers stay too
    with pytest.raises(TrainingError, match="no layer"):
        train("generator", "tiny", ds, tmp_path / "c", TrainConfig(epochs=1, steps_per_epoch=1, freeze=("nope_",)),
              verbose=0)


def _expert(path, size=109, gain=50.0):
    """A small random mouth expert with outputs large enough that the shape term matters."""
    from keras_speech2vid.models import build_mouth_expert

    keras.utils.set_random_seed(3)
    expert = build_mouth_expert(size, widths=(4, 4, 4, 4), hidden=8)
    kernel, bias = expert.get_layer("mouth_expert_fc2").get_weights()
    expert.get_layer("mouth_expert_fc2").set_weights([kernel * gain, bias])
    expert.save(path)
    return expert


@pytest.mark.parametrize("terms", ["landmarks", "aperture"])
def test_shape_weight_adds_the_experts_mouth_distance_to_the_loss(tmp_path, terms):
    from keras_speech2vid.face.canonical import mouth_box
    from keras_speech2vid.models.mouth_expert import aperture_matrix

    expert = _expert(tmp_path / "expert.keras")
    ds = synthetic_dataset()
    val = ds.take(1)
    cfg = TrainConfig(epochs=1, steps_per_epoch=2, optimizer="adam", learning_rate=1e-3,
                      shape_expert=str(tmp_path / "expert.keras"), shape_weight=0.5, shape_terms=terms)
    result = train("generator", "tiny", ds, tmp_path / "run", cfg, val_ds=val, verbose=0)
    model = keras.saving.load_model(tmp_path / "run" / "generator.keras", safe_mode=True)
    inputs, target = next(iter(val))
    frame = np.asarray(model(inputs, training=False)["frame"])
    l1 = np.mean(np.abs(target.numpy() - frame), axis=(1, 2, 3))
    top, bottom, left, right = mouth_box()
    composite = target.numpy().copy()  # the expert judges the mouth box of the output only
    composite[:, top:bottom, left:right] = frame[:, top:bottom, left:right]
    shape = expert.predict(composite, verbose=0) - expert.predict(target.numpy(), verbose=0)
    if terms == "aperture":  # the y of each lower inner-lip point minus its upper partner's
        pts = shape.reshape(-1, 20, 2)
        shape = np.stack([pts[:, lo, 1] - pts[:, up, 1] for up, lo in ((13, 19), (14, 18), (15, 17))], axis=1)
        assert np.allclose(shape, (pts.reshape(-1, 40) @ aperture_matrix()), atol=1e-5)
    shape = np.mean(np.abs(shape), axis=1)
    assert 0.5 * shape.mean() > 0.2 * l1.mean()  # the term is not negligible here
    assert np.isclose(result["best_val"], np.mean(l1 + 0.5 * shape), rtol=1e-4)
    # the expert stays as it was (only the generator trains)
    after = keras.saving.load_model(tmp_path / "expert.keras", safe_mode=True)
    assert all(np.array_equal(a, b) for a, b in zip(after.get_weights(), expert.get_weights()))
    assert json.loads((tmp_path / "run" / "run.json").read_text())["train"]["shape_weight"] == 0.5


def test_shape_expert_missing_unfitting_or_without_weight_is_refused(tmp_path):
    ds = synthetic_dataset()
    with pytest.raises(ValueError, match="go together"):
        TrainConfig(shape_weight=0.1)
    with pytest.raises(ValueError, match="go together"):
        TrainConfig(shape_expert="x.keras")
    with pytest.raises(ValueError, match="shape_terms"):
        TrainConfig(shape_expert="x.keras", shape_weight=0.1, shape_terms="lips")
    with pytest.raises(TrainingError, match="no such mouth-expert file"):
        train("generator", "tiny", ds, tmp_path / "a", TrainConfig(epochs=1, steps_per_epoch=1,
              shape_expert=str(tmp_path / "missing.keras"), shape_weight=0.1), verbose=0)
    _expert(tmp_path / "e112.keras", size=112)
    with pytest.raises(TrainingError, match="reads"):
        train("generator", "tiny", ds, tmp_path / "b", TrainConfig(epochs=1, steps_per_epoch=1,
              shape_expert=str(tmp_path / "e112.keras"), shape_weight=0.1), verbose=0)


def test_audio_leak_weight_adds_the_upper_face_change_under_another_audio(tmp_path):
    from keras_speech2vid.face.canonical import mouth_box
    from keras_speech2vid.training.losses import upper_face_mask

    mask = upper_face_mask(109)
    assert mask[:mouth_box()[0]].all() and not mask[mouth_box()[0]:].any()
    ds = synthetic_dataset()
    val = ds.take(1)
    cfg = TrainConfig(epochs=1, steps_per_epoch=2, optimizer="adam", learning_rate=1e-3, audio_leak_weight=3.0)
    result = train("generator", "tiny", ds, tmp_path / "run", cfg, val_ds=val, verbose=0)
    model = keras.saving.load_model(tmp_path / "run" / "generator.keras", safe_mode=True)
    inputs, target = next(iter(val))
    frame = np.asarray(model(inputs, training=False)["frame"])
    # each example's identity with the previous example's audio
    swapped = {"identity": inputs["identity"].numpy(), "mfcc": np.roll(inputs["mfcc"].numpy(), 1, axis=0)}
    other = np.asarray(model(swapped, training=False)["frame"])
    l1 = np.mean(np.abs(target.numpy() - frame), axis=(1, 2, 3))
    leak = np.mean(np.abs(frame - other)[:, :mouth_box()[0]], axis=(1, 2, 3))
    assert leak.mean() > 1e-6  # the audio does reach the upper face of this model
    # the validation loss holds the term, resolved to a tenth of its size
    assert abs(result["best_val"] - np.mean(l1 + 3.0 * leak)) < 0.1 * 3.0 * leak.mean()
    assert json.loads((tmp_path / "run" / "run.json").read_text())["train"]["audio_leak_weight"] == 3.0


def test_audio_leak_weight_is_refused_for_the_deblurrer_and_when_negative(tmp_path):
    with pytest.raises(ValueError, match="audio_leak_weight"):
        TrainConfig(audio_leak_weight=-1.0)
    with pytest.raises(TrainingError, match="no audio input"):
        train("deblurrer", "tiny", synthetic_dataset(), tmp_path / "d",
              TrainConfig(epochs=1, steps_per_epoch=1, audio_leak_weight=1.0), verbose=0)
    assert not (tmp_path / "d" / "deblurrer.keras").exists()


def test_loss_terms_match_a_numpy_reference():
    """Each piece of `training.losses`, in keras.ops, against the formula written out in NumPy."""
    from keras_speech2vid.models.mouth_expert import aperture_matrix
    from keras_speech2vid.training import losses as L

    rng = np.random.default_rng(0)
    out, tgt, swapped = (rng.uniform(size=(3, 109, 109, 3)).astype("float32") for _ in range(3))
    w = L.l1_weight_map(109, 4.0)
    np.testing.assert_allclose(np.asarray(L.weighted_l1(out, tgt, w)), (np.abs(tgt - out) * w).mean(axis=(1, 2, 3)),
                               rtol=1e-5)
    upper = L.upper_face_mask(109)[None, :, :, None]
    np.testing.assert_allclose(np.asarray(L.audio_leak_term(out, swapped, upper)),
                               (np.abs(out - swapped) * upper).mean(axis=(1, 2, 3)), rtol=1e-5)
    proj = rng.normal(size=(109 * 109 * 3, 40)).astype("float32") / 100

    def expert(x, training=False):  # a linear stand-in for the mouth expert
        return np.asarray(x).reshape(len(x), -1) @ proj

    box = L.mouth_mask(109)[None, :, :, None]
    composite = tgt + (out - tgt) * box
    diff = expert(composite) - expert(tgt)
    np.testing.assert_allclose(np.asarray(L.shape_term(expert, out, tgt, box)), np.abs(diff).mean(axis=1), rtol=1e-4)
    np.testing.assert_allclose(np.asarray(L.shape_term(expert, out, tgt, box, aperture_matrix())),
                               np.abs(diff @ aperture_matrix()).mean(axis=1), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("option", [["--preset", "huge"], ["--batch-size", "0"], ["--epochs", "0"]])
def test_train_refuses_bad_settings_in_one_line_before_reading_data(option, tmp_path, capsys):
    from keras_speech2vid.cli import main

    # the data folder does not exist: a refusal must come from the option, before any data is read
    assert main(["train", "--data", str(tmp_path / "nodata"), "--out", str(tmp_path / "run"), *option]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and ("Received" in err or "Unknown preset" in err), err
    assert not (tmp_path / "run").exists()
