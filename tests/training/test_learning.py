"""Learning on real prepared clips (tiny preset): the generator's validation L1 falls, the deblurrer deblurs."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from keras_speech2vid.cli import main
from keras_speech2vid.data.dataset import make_dataset
from keras_speech2vid.data.prepare import PrepareConfig, prepare
from keras_speech2vid.training import TrainConfig, train
from keras_speech2vid.training.degrade import degrade
from tests.conftest import CLIPS, ROOT



@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    prepare(CLIPS, out, PrepareConfig(every=2, val_fraction=0.0), val_groups=["grid_lbbc2a_woman_pink_top"],
            progress=False)
    return out


def test_generator_validation_l1_falls_by_30_percent(data_dir, tmp_path):
    run = tmp_path / "run"
    rc = main(["train", "--data", str(data_dir), "--out", str(run), "--preset", "tiny", "--epochs", "3",
               "--steps-per-epoch", "25", "--batch-size", "8", "--optimizer", "adam", "--lr", "1e-3", "--seed", "0"])
    assert rc == 0
    rows = list(csv.DictReader(open(run / "log.csv")))
    initial, best = float(rows[0]["val_loss"]), min(float(r["val_loss"]) for r in rows[1:])
    assert rows[0]["epoch"] == "0" and best <= 0.7 * initial, (initial, best)
    events = [e for f in (run / "logs" / "val").glob("events.*") for e in tf.compat.v1.train.summary_iterator(str(f))]
    assert any(v.tag.startswith("grid") for e in events for v in e.summary.value)


def test_cli_small_data_options_reach_the_run(data_dir, tmp_path):
    import json

    import keras

    from keras_speech2vid.face.canonical import lower_mouth_box

    common = ["--data", str(data_dir), "--preset", "tiny", "--epochs", "1", "--steps-per-epoch", "2",
              "--batch-size", "4", "--optimizer", "adam", "--lr", "1e-3", "--seed", "0"]
    assert main(["train", "--out", str(tmp_path / "a"), *common]) == 0
    assert main(["train", "--out", str(tmp_path / "b"), *common, "--init-from", str(tmp_path / "a"),
                 "--mouth-weight", "4", "--freeze", "audio_", "--identity-mouth-mask",
                 "--identity-mouth-region", "lower", "--audio-leak-weight", "2"]) == 0
    assert main(["train", "--out", str(tmp_path / "c"), *common, "--identity-mouth-region", "lower"]) == 2
    assert not (tmp_path / "c").exists()
    record = json.loads((tmp_path / "b" / "run.json").read_text())
    assert record["init_from"] == str(tmp_path / "a")
    assert record["train"]["mouth_weight"] == 4.0 and record["train"]["freeze"] == ["audio_"]
    assert record["train"]["audio_leak_weight"] == 2.0
    assert record["model"]["identity_mouth_mask"] is True
    a, b = (keras.saving.load_model(tmp_path / r / "generator.keras", safe_mode=True) for r in "ab")
    audio_a, audio_b = a.get_layer("audio_encoder").get_weights(), b.get_layer("audio_encoder").get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(audio_a, audio_b))  # started from a, then frozen
    decoder_a, decoder_b = a.get_layer("decoder").get_weights(), b.get_layer("decoder").get_weights()
    assert not all(np.array_equal(x, y) for x, y in zip(decoder_a, decoder_b))
    assert record["model"]["identity_mouth_region"] == "lower"
    mask = b.get_layer("identity_encoder").get_layer("face_mouth_mask")
    assert mask.box == lower_mouth_box(size=112)


def _psnr(a, b):
    return float(tf.reduce_mean(tf.image.psnr(a, b, max_val=1.0)))


def test_deblurrer_beats_blurred_input_on_held_out_faces(data_dir, tmp_path):
    import keras

    keras.utils.set_random_seed(0)  # the initial weights too: the gain after 80 steps varies by run
    train_ds = make_dataset(data_dir, "train", "tiny", 8, seed=0)
    result = train("deblurrer", "tiny", train_ds, tmp_path, TrainConfig(
        epochs=2, steps_per_epoch=40, optimizer="adam", learning_rate=1e-3, checkpoint_every=40), verbose=0)
    assert result["step"] == 80
    deblurrer = keras.saving.load_model(tmp_path / "deblurrer.keras", safe_mode=True)
    sharp = np.concatenate([y.numpy() for _, y in make_dataset(data_dir, "val", "tiny", 16, shuffle=False)])
    assert len(sharp) >= 30  # the held-out clip (never seen in training)
    blurred = np.stack([degrade(tf.constant(s), tf.constant([i, 1], tf.int64)).numpy() for i, s in enumerate(sharp)])
    restored = np.asarray(deblurrer(blurred))
    before, after = _psnr(blurred, sharp), _psnr(restored, sharp)
    assert after > before + 0.3, (before, after)


@pytest.mark.slow
def test_multiworker_mirrored_two_local_workers(tmp_path):
    import json
    import socket

    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    code = ("import sys; sys.path.insert(0, %r); from tests.training.synthetic import synthetic_dataset; "
            "from keras_speech2vid.training import TrainConfig, make_strategy, train; "
            "s = make_strategy('multiworker'); "
            "r = train('generator', 'tiny', synthetic_dataset(batch_size=8), %r, TrainConfig(epochs=1, steps_per_epoch=4, "
            "checkpoint_every=2, optimizer='adam', learning_rate=1e-3), strategy=s, verbose=0); print('STEP', r['step'])"
            % (str(ROOT), str(tmp_path / "run")))
    procs = []
    for i in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}
        procs.append(subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0 and "STEP 4" in out, err[-3000:]
    # the chief wrote the usual checkpoint format; the other worker left nothing behind
    ckpt = tf.train.latest_checkpoint(tmp_path / "run" / "checkpoints")
    reader = tf.train.load_checkpoint(ckpt)
    assert int(reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE")) == 4
    assert not list((tmp_path / "run").glob(".worker*"))


def test_mouth_expert_reads_held_out_mouths_and_feeds_the_shape_loss(data_dir, tmp_path):
    import json

    from keras_speech2vid.evaluation.metrics import face_landmarks
    from keras_speech2vid.training.mouth_expert import mouth_targets

    out = tmp_path / "expert"
    assert main(["train-mouth-expert", "--data", str(data_dir), "--out", str(out), "--epochs", "10",
                 "--seed", "0"]) == 0
    # the cached targets are dlib's mouth points of the stored faces (checked here with detection)
    crops, points = mouth_targets(data_dir, "val", out)
    record = json.loads((out / "mouth_expert.json").read_text())
    assert len(crops) == record["frames"]["val"] > 20
    track = next(iter(tf.data.TFRecordDataset(str(next((data_dir / "records").glob("grid_lbbc2a*")))).map(
        __import__("keras_speech2vid.data.dataset", fromlist=["parse_track"]).parse_track)))
    face = tf.io.decode_jpeg(track["frames"][0]).numpy()
    assert np.abs(face_landmarks(face)[0][48:68] - 1 - points[0]).mean() < 1.0
    # it learnt to read the mouth of the held-out speaker, on sharp and on blurred faces
    last = record["history"][-1]["val"]
    assert last["blur1"]["aperture_r"] > 0.5 and last["blur2"]["aperture_r"] > 0.5, last
    # and the generator trains with it
    assert main(["train", "--data", str(data_dir), "--out", str(tmp_path / "gen"), "--preset", "tiny",
                 "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "4", "--optimizer", "adam",
                 "--shape-expert", str(out / "mouth_expert.keras"), "--shape-weight", "0.1",
                 "--shape-terms", "aperture", "--identity-mouth-mask", "skin"]) == 0
    record = json.loads((tmp_path / "gen" / "run.json").read_text())
    assert record["train"]["shape_weight"] == 0.1 and record["train"]["shape_terms"] == "aperture"
    assert record["model"]["identity_mouth_mask"] and record["model"]["identity_mouth_fill"] == "skin"
