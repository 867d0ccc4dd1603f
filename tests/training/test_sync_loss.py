"""The sync-expert loss (issue 20): a frozen SyncNet reads clips of 5 consecutive generated frames."""

import dataclasses
import json

import numpy as np
import pytest

from keras_speech2vid.training import TrainConfig, TrainingError


@pytest.fixture(scope="module")
def syncnet_dir(tmp_path_factory):
    import keras

    from keras_speech2vid.config import SYNCNET_PRESETS
    from keras_speech2vid.models.syncnet import build_syncnet
    from keras_speech2vid.weights import save_weights_dir

    keras.utils.set_random_seed(3)
    folder = tmp_path_factory.mktemp("syncnet")
    save_weights_dir(folder, {"syncnet": ("syncnet", build_syncnet("tiny"), SYNCNET_PRESETS["tiny"])})
    return folder


def test_sync_term_reads_a_clip_as_the_syncnet_was_trained(syncnet_dir):
    """The term's crop, grey and frame order are `sync.sync_crop` + `sync.video_windows` (what SyncNet
    learnt from), and its value is −log((1 + cos) / 2) of the two embeddings, per clip."""
    from keras_speech2vid.sync import SyncNet, sync_crop, video_windows
    from keras_speech2vid.training.losses import sync_term

    net = SyncNet.load(syncnet_dir)
    rng = np.random.default_rng(0)
    # two clips of 5; grey (R = G = B), so that sync_crop's uint8 rounding is exact
    frames = np.repeat(rng.integers(0, 256, (10, 109, 109, 1)).astype(np.uint8), 3, axis=-1)
    audio = np.repeat(rng.normal(size=(2, 12, 20, 1)).astype(np.float32), 5, axis=0)
    got = np.asarray(sync_term(net.video, net.audio, frames.astype(np.float32) / 255.0, audio))
    crops = np.stack([sync_crop(f) for f in frames])
    video = np.asarray(net.video(np.concatenate([video_windows(crops[i:i + 5], [2]) for i in (0, 5)]),
                                 training=False))
    speech = np.asarray(net.audio(audio[::5], training=False))
    want = -np.log((1.0 + np.sum(video * speech, axis=1)) / 2.0)
    np.testing.assert_allclose(got, np.repeat(want, 5), atol=1e-4)
    shuffled = frames.copy()
    shuffled[:5] = frames[:5][::-1]  # the same frames in another order are another clip
    moved = np.asarray(sync_term(net.video, net.audio, shuffled.astype(np.float32) / 255.0, audio))
    assert abs(moved[0] - got[0]) > 1e-4 and np.allclose(moved[5:], got[5:], atol=1e-6)


def test_the_sync_term_reaches_the_generators_audio_encoder(syncnet_dir):
    import tensorflow as tf

    from keras_speech2vid.models import build_generator
    from keras_speech2vid.sync import SyncNet
    from keras_speech2vid.training.losses import sync_term

    net = SyncNet.load(syncnet_dir)
    generator = build_generator("tiny")
    rng = np.random.default_rng(1)
    inputs = {"mfcc": rng.normal(size=(5, 12, 35, 1)).astype(np.float32),
              "identity": np.repeat(rng.uniform(size=(1, 112, 112, 15)).astype(np.float32), 5, axis=0)}
    audio = np.repeat(rng.normal(size=(1, 12, 20, 1)).astype(np.float32), 5, axis=0)
    audio_weights = [w for w in generator.trainable_weights if w.path.startswith("audio_")]
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(sync_term(net.video, net.audio, generator(inputs, training=True)["frame"], audio))
    grads = tape.gradient(loss, audio_weights)
    assert audio_weights and all(g is not None for g in grads)
    assert sum(float(tf.reduce_sum(tf.abs(g))) for g in grads) > 0


def test_clip_batches_hold_consecutive_frames_one_identity_and_the_syncnet_window(prepared):
    import tensorflow as tf

    from keras_speech2vid.config import SYNCNET_PRESETS
    from keras_speech2vid.data.dataset import make_dataset, parse_track
    from keras_speech2vid.sync import audio_windows, normalise_mfcc

    data, manifest = prepared
    config = SYNCNET_PRESETS["tiny"]
    clips = make_dataset(data, "train", "tiny", 10, clip_frames=5, sync_config=config, shuffle=False,
                         return_meta=True)
    single = make_dataset(data, "train", "tiny", 10, shuffle=False, return_meta=True)
    windows = {(m["video_id"][i].numpy(), int(m["frame_index"][i])): x["mfcc"][i].numpy()
               for x, _, m in single for i in range(len(m["frame_index"]))}
    videos = {v["video_id"]: v for v in manifest["videos"]}
    mfccs = {}
    for v in manifest["videos"]:
        for track in tf.data.TFRecordDataset(str(data / v["record"])).map(parse_track).take(1):
            mfccs[v["video_id"].encode()] = track["mfcc"].numpy()
    clips_seen = 0
    for inputs, target, meta in clips:
        assert len(target) % 5 == 0 and target.shape[1:] == (109, 109, 3)
        for c in range(0, len(target), 5):
            ks = meta["frame_index"][c:c + 5].numpy()
            vid = meta["video_id"][c].numpy()
            assert (np.diff(ks) == 1).all() and ks[2] % manifest["every"] == 0
            assert (meta["video_id"][c:c + 5].numpy() == vid).all()
            identity = inputs["identity"][c:c + 5].numpy()
            assert (identity == identity[:1]).all()
            np.testing.assert_array_equal(inputs["mfcc"][c + 2].numpy(), windows[(vid, int(ks[2]))])
            offset = videos[vid.decode()].get("av_offset", 0.0)
            fps = videos[vid.decode()]["fps"]
            want = audio_windows(normalise_mfcc(mfccs[vid], config), [ks[2]], fps, config, offset)[0]
            for i in range(5):
                np.testing.assert_allclose(inputs["sync_audio"][c + i].numpy(), want, atol=1e-4)
            clips_seen += 1
    assert clips_seen > 10


def test_sync_weight_trains_on_clips_and_records_itself(prepared, syncnet_dir, tmp_path):
    from keras_speech2vid.training.run import start_run

    cfg = TrainConfig(epochs=1, steps_per_epoch=2, batch_size=10, optimizer="adam", learning_rate=1e-3,
                      sync_weight=0.5, sync_expert=str(syncnet_dir))
    result = start_run("generator", prepared[0], tmp_path / "run", "tiny", cfg, seed=0, verbose=0)
    assert result["step"] == 2 and np.isfinite(result["best_val"])
    plain = start_run("generator", prepared[0], tmp_path / "plain", "tiny",
                      TrainConfig(epochs=1, steps_per_epoch=2, batch_size=10, optimizer="adam", learning_rate=1e-3),
                      seed=0, verbose=0)
    assert result["history"][0]["val_loss"] > plain["history"][0]["val_loss"]  # the same untrained net + a term
    recorded = json.loads((tmp_path / "run" / "run.json").read_text())["train"]
    assert recorded["sync_weight"] == 0.5 and recorded["sync_expert"] == str(syncnet_dir)


def test_sync_weight_is_refused_where_it_cannot_work(prepared, syncnet_dir, tmp_path, fixture_arrays):
    from keras_speech2vid.training.run import start_run
    from keras_speech2vid.training.tf_driver import train
    from tests.training.synthetic import synthetic_dataset

    with pytest.raises(ValueError, match="multiple of 5"):
        TrainConfig(batch_size=8, sync_weight=1.0)
    with pytest.raises(ValueError, match="sync_weight"):
        TrainConfig(sync_weight=-1.0)
    cfg = TrainConfig(epochs=1, steps_per_epoch=1, batch_size=10, sync_weight=1.0, sync_expert=str(syncnet_dir))
    with pytest.raises(TrainingError, match="array chunks"):
        start_run("generator", fixture_arrays[0], tmp_path / "j", "tiny", cfg, backend="jax", verbose=0)
    with pytest.raises(TrainingError, match="no audio input"):
        train("deblurrer", "tiny", synthetic_dataset(), tmp_path / "d", cfg, verbose=0)
    with pytest.raises(TrainingError, match="--sync-weight: .*no such weights folder"):
        start_run("generator", prepared[0], tmp_path / "n", "tiny",
                  dataclasses.replace(cfg, sync_expert=str(tmp_path / "nowhere")), verbose=0)
    assert not (tmp_path / "n").exists() or not any((tmp_path / "n").rglob("*.keras"))
