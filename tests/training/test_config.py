"""TrainConfig and its CLI options come from one definition: the options cannot drift from the fields."""

import dataclasses

import pytest

from keras_speech2vid.cli import build_parser
from keras_speech2vid.training.config import TrainConfig, from_cli
from keras_speech2vid.training.shared import learning_rate

BASE = ["--data", "d", "--out", "o"]


def parse(*args):
    return build_parser().parse_args(list(args))


def test_every_field_has_an_option_with_its_default():
    args = parse("train", *BASE)
    assert from_cli(args) == TrainConfig()
    assert all(hasattr(args, f.name) for f in dataclasses.fields(TrainConfig))


def test_options_set_their_fields():
    args = parse("train", *BASE, "--lr", "3e-4", "--lr-schedule", "cosine", "--lr-final", "0.05", "--xla",
                 "--freeze", "audio_", "face_", "--precision", "mixed_bfloat16", "--val-steps", "7")
    cfg = from_cli(args)
    assert (cfg.learning_rate, cfg.lr_schedule, cfg.lr_final, cfg.jit_compile, cfg.freeze, cfg.precision,
            cfg.val_steps) == (3e-4, "cosine", 0.05, True, ("audio_", "face_"), "mixed_bfloat16", 7)


def test_the_deblurrer_keeps_its_own_defaults_and_no_jax_backend():
    cfg = from_cli(parse("train-deblur", *BASE))
    assert (cfg.optimizer, cfg.learning_rate) == ("adam", 1e-4)
    with pytest.raises(SystemExit):
        parse("train-deblur", *BASE, "--backend", "jax")
    assert parse("train", *BASE, "--backend", "jax").backend == "jax"


def test_cosine_schedule_ends_at_the_final_fraction():
    cfg = TrainConfig(learning_rate=1e-3, lr_schedule="cosine", lr_final=0.1, epochs=2, steps_per_epoch=50)
    schedule = learning_rate(cfg)
    assert float(schedule(0)) == pytest.approx(1e-3)
    assert float(schedule(50)) == pytest.approx(0.55e-3, rel=1e-4)  # half way down the cosine
    assert float(schedule(100)) == pytest.approx(1e-4)
    assert learning_rate(TrainConfig(learning_rate=2e-5)) == 2e-5
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="step")
