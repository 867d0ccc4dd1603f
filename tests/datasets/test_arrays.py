"""Array chunks (for the JAX driver): sizes, the same samples as the tf.data pipeline, one identity rule."""

import json

import numpy as np
import pytest
import tensorflow as tf

from keras_speech2vid.data import sampling
from keras_speech2vid.data.arrays import ArrayData, export_arrays
from keras_speech2vid.data.dataset import identity_positions, make_dataset
from keras_speech2vid.errors import Speech2VidError

LIMIT_MIB = 0.5  # the limit of the `fixture_arrays` fixture


def test_chunks_fit_the_limit_and_hold_every_frame(prepared, fixture_arrays):
    (data_dir, manifest), (out, record) = prepared, fixture_arrays
    assert json.loads((out / "arrays.json").read_text()) == record
    for split in ("train", "val"):
        chunks = record["splits"][split]
        for c in chunks:
            assert (out / c["file"]).stat().st_size == c["bytes"] <= LIMIT_MIB * 2**20
        frames = sum(t["frames"] for v in manifest["videos"] if v["split"] == split for t in v["tracks"])
        assert sum(c["frames"] for c in chunks) == frames
        # every target of the tf.data pipeline is one here
        targets = sum(int(x[1].shape[0]) for x in make_dataset(data_dir, split, "tiny", 64, drop_remainder=False))
        assert len(ArrayData(out, split)) == targets
    assert len(record["splits"]["train"]) >= 3  # the 0.5 MiB limit split the data


def test_samples_equal_the_tf_pipeline(prepared, fixture_arrays):
    data = ArrayData(fixture_arrays[0], "train")
    by_frame = {}
    chunk_video = []
    for c in fixture_arrays[1]["splits"]["train"]:
        with np.load(fixture_arrays[0] / c["file"]) as d:
            chunk_video += list(d["video_id"][d["track"]])
    for i, frame in enumerate(data.targets):
        by_frame[(chunk_video[frame], int(data.frame_index[frame]))] = i
    ds = make_dataset(prepared[0], "train", "paper", 4, shuffle=False, seed=0, return_meta=True)
    checked = 0
    for inputs, target, meta in ds.take(3):
        for b in range(target.shape[0]):
            video = meta["video_id"][b].numpy().decode()
            row = by_frame[(video, int(meta["frame_index"][b]))]
            ours, our_target = data.batch(np.array([row]), np.random.default_rng(0))
            np.testing.assert_allclose(ours["mfcc"][0], inputs["mfcc"][b].numpy(), rtol=2e-3, atol=2e-3)  # float16
            np.testing.assert_array_equal(our_target[0], target[b].numpy())
            # the identity images the TF pipeline drew, decoded here
            frames = [np.flatnonzero((np.array(chunk_video) == video) & (data.frame_index == k))[0]
                      for k in meta["identity_index"][b].numpy()]
            mine = np.concatenate([data._image(f) for f in frames], axis=-1).astype(np.float32) / 255
            np.testing.assert_array_equal(mine, inputs["identity"][b].numpy())
            checked += 1
    assert checked == 12


def test_one_identity_rule_for_numpy_and_tensorflow():
    rng = np.random.default_rng(3)
    length = rng.integers(1, 200, 500).astype(np.float64)
    target = np.floor(rng.random(500) * length)
    u = rng.random(500)
    ours = sampling.identity_positions(length, target, u, 25.0, np)
    theirs = sampling.identity_positions(*(tf.constant(x) for x in (length, target, u)), tf.constant(25.0, tf.float64), tf)
    np.testing.assert_array_equal(ours, theirs.numpy())
    distance = np.abs(ours - target)
    reach = np.maximum(target, length - 1 - target)
    assert ((distance >= np.minimum(25, reach)) & (ours >= 0) & (ours < length)).all()
    # every candidate is reachable: the rule is uniform over them
    counts = np.bincount(sampling.identity_positions(60.0, 30.0, (np.arange(660) + 0.5) / 660, 25.0, np).astype(int),
                         minlength=60)
    candidates = np.abs(np.arange(60) - 30) >= 25
    assert (counts[candidates] == 660 // candidates.sum()).all() and counts[~candidates].sum() == 0
    # the TF pipeline's sampler is this rule
    ids = identity_positions(tf.constant(10, tf.int64), tf.constant(6, tf.int64), 5, 25, tf.constant([1, 2], tf.int64))
    assert set(ids.numpy().tolist()) == {0}


def test_identities_far_from_their_target_in_the_same_track(fixture_arrays):
    data = ArrayData(fixture_arrays[0], "train", identity_images=5, min_identity_distance=25)
    rows = np.arange(len(data))
    ids = data.identity_frames(rows, np.random.default_rng(0))
    frames = data.targets[rows]
    assert (data.track[ids] == data.track[frames][:, None]).all()
    length = data.track_length[data.track[frames]]
    pos = frames - data.track_start[data.track[frames]]
    need = np.minimum(25, np.maximum(pos, length - 1 - pos))
    assert (np.abs(ids - frames[:, None]) >= need[:, None]).all()


def test_batches_depend_on_seed_and_step_only(fixture_arrays):
    data = ArrayData(fixture_arrays[0], "train")
    a, b, c = data.train_batch(7, 4, seed=1), data.train_batch(7, 4, seed=1), data.train_batch(8, 4, seed=1)
    np.testing.assert_array_equal(a[0]["identity"], b[0]["identity"])
    assert not np.array_equal(a[1], c[1])
    assert a[0]["mfcc"].shape == (4, 12, 35, 1) and a[0]["identity"].shape == (4, 112, 112, 15)
    assert a[1].shape == (4, 109, 109, 3) and a[1].dtype == np.float32 and 0 <= a[1].min() <= a[1].max() <= 1
    val = list(ArrayData(fixture_arrays[0], "val").val_batches(8))
    assert sum(len(t) for _, t in val) == len(ArrayData(fixture_arrays[0], "val"))


def test_altered_or_unfinished_folders_are_refused(fixture_arrays, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(fixture_arrays[0], copy)
    chunk = copy / fixture_arrays[1]["splits"]["train"][1]["file"]
    raw = bytearray(chunk.read_bytes())
    raw[len(raw) // 2] ^= 1
    chunk.write_bytes(bytes(raw))
    with pytest.raises(Speech2VidError, match=chunk.name + ".*altered"):
        ArrayData(copy, "train")
    (copy / "arrays.json").unlink()  # what an interrupted export leaves
    with pytest.raises(Speech2VidError, match="no arrays.json"):
        ArrayData(copy, "train")


def test_export_refuses_to_write_over_its_input(prepared):
    with pytest.raises(Speech2VidError, match="overwrite"):
        export_arrays(prepared[0], prepared[0], progress=False)
