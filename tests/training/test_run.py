"""`training.run.start_run`, the one entry point of every training run (CLI, notebooks, tests)."""

from keras_speech2vid.training.run import start_run


def test_a_whisper_preset_trains_with_the_tf_driver_and_its_validation_loss_falls(prepared_whisper, tmp_path):
    import keras

    from keras_speech2vid.training.config import TrainConfig

    keras.utils.set_random_seed(0)  # the initial weights: the data pipeline is seeded by start_run's seed
    cfg = TrainConfig(epochs=2, steps_per_epoch=8, batch_size=4, optimizer="adam", learning_rate=1e-3)
    result = start_run("generator", prepared_whisper[0], tmp_path, "whisper_tiny", cfg, seed=0, verbose=0)
    val = [row["val_loss"] for row in result["history"]]
    assert result["step"] == 16 and val[-1] < 0.95 * val[0], val
