"""Weights folders: compact round trip, checksums, clear errors."""

import json

import numpy as np
import pytest

from keras_speech2vid import PRESETS, build_deblurrer, build_generator
from keras_speech2vid.errors import WeightsError
from keras_speech2vid.weights import load_weights_dir, save_weights_dir


@pytest.fixture(scope="module")
def models():
    return build_generator("tiny"), build_deblurrer("tiny")


@pytest.fixture
def folder(tmp_path, models):
    generator, deblurrer = models
    save_weights_dir(tmp_path, {"generator": ("generator", generator, PRESETS["tiny"]),
                                "deblurrer": ("deblurrer", deblurrer, PRESETS["tiny"])})
    return tmp_path


def test_round_trip_float16_kernels(folder, models):
    generator, _ = models
    loaded = load_weights_dir(folder)
    assert set(loaded) == {"generator", "deblurrer"} and loaded["generator"][0] == "generator"
    x = {"mfcc": np.random.default_rng(0).normal(size=(2, 12, 35, 1)).astype("float32") * 5,
         "identity": np.random.default_rng(1).uniform(size=(2, 112, 112, 15)).astype("float32")}
    a = np.asarray(generator(x)["frame"])
    b = np.asarray(loaded["generator"][1](x)["frame"])
    assert np.abs(a - b).max() < 2e-3  # float16 kernels, float32 compute
    for v in loaded["generator"][1].weights:
        assert v.dtype == "float32"
    with np.load(folder / "generator.npz") as data:
        kernels = [k for k in data.files if k.endswith("kernel")]
        assert kernels and all(data[k].dtype == np.float16 for k in kernels)
        stats = [k for k in data.files if k.endswith("moving_variance")]
        assert stats and all(data[k].dtype == np.float32 for k in stats)


def test_split_over_small_files_loads_the_same_weights(tmp_path, models):
    generator, _ = models
    limit = 0.02  # MiB: below the tiny generator's largest kernel, so it goes in row blocks
    assert max(v.numpy().nbytes // 2 for v in generator.weights) > limit * 2**20
    save_weights_dir(tmp_path, {"generator": ("generator", generator, PRESETS["tiny"])}, max_file_mib=limit)
    files = sorted(tmp_path.glob("generator*.npz"))
    assert len(files) > 3 and all(f.stat().st_size <= limit * 2**20 for f in files)
    whole = save_weights_dir(tmp_path / "whole", {"generator": ("generator", generator, PRESETS["tiny"])}).parent
    split, one = load_weights_dir(tmp_path)["generator"][1], load_weights_dir(whole)["generator"][1]
    for a, b in zip(split.weights, one.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    files[-1].unlink()
    with pytest.raises(WeightsError, match=files[-1].name + ": weights file missing"):
        load_weights_dir(tmp_path)


def test_checksum_mismatch_is_a_clear_error(folder):
    path = folder / "generator.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"generator\.npz: SHA-256 checksum mismatch"):
        load_weights_dir(folder)


def test_truncated_file_is_a_clear_error(folder):
    path = folder / "deblurrer.npz"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(WeightsError, match=r"deblurrer\.npz: truncated"):
        load_weights_dir(folder)


def test_missing_and_unreadable_folders(tmp_path):
    with pytest.raises(WeightsError, match="no such weights folder"):
        load_weights_dir(tmp_path / "nope")
    with pytest.raises(WeightsError, match="not a weights folder"):
        load_weights_dir(tmp_path)
    (tmp_path / "manifest.json").write_text("{broken")
    with pytest.raises(WeightsError, match="unreadable manifest"):
        load_weights_dir(tmp_path)


def test_file_not_matching_its_config(folder):
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["models"]["deblurrer"]["config"]["deblur_width"] = 16
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(WeightsError, match="deblurrer.npz"):
        load_weights_dir(folder)


def test_pack_training_runs(tmp_path):
    from keras_speech2vid.cli import main
    from tests.training.synthetic import run

    run(tmp_path / "gen", epochs=1, steps_per_epoch=1, checkpoint_every=1)
    run(tmp_path / "deb", epochs=1, steps_per_epoch=1, checkpoint_every=1, task="deblurrer")
    assert main(["pack-weights", str(tmp_path / "gen"), str(tmp_path / "deb"), "--out", str(tmp_path / "w")]) == 0
    loaded = load_weights_dir(tmp_path / "w")
    assert {k: v[0] for k, v in loaded.items()} == {"generator": "generator", "deblurrer": "deblurrer"}
    assert loaded["generator"][2] == PRESETS["tiny"]
    with pytest.raises(WeightsError, match="no run.json"):
        main(["--verbose", "pack-weights", str(tmp_path / "w"), "--out", str(tmp_path / "w2")])


def test_weights_messages_name_the_variable_and_a_truncated_keras_file(tmp_path, monkeypatch):
    from keras_speech2vid.models import build_syncnet
    from keras_speech2vid.weights import load_keras_file, load_models

    monkeypatch.setenv("SPEECH2VID_WEIGHTS", str(tmp_path / "nowhere"))
    with pytest.raises(WeightsError, match="SPEECH2VID_WEIGHTS") as e:
        load_models()
    assert "nowhere" in str(e.value) and "\n" not in str(e.value)
    path = tmp_path / "s.keras"
    build_syncnet("tiny").save(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(WeightsError, match="truncated") as e:
        load_keras_file(path)
    assert str(path) in str(e.value)


def test_whisper_encoder_round_trip_with_details(tmp_path):
    from keras_speech2vid.models.whisper import WHISPER_PRESETS, build_whisper_encoder
    from keras_speech2vid.weights import read_manifest

    c = WHISPER_PRESETS["tiny"]
    encoder = build_whisper_encoder(c)
    details = {"source": {"sha256": "0" * 64}, "licence": "MIT", "note": "encoder only", "parameters": 1}
    save_weights_dir(tmp_path, {"w": ("whisper_encoder", encoder, c)}, details={"w": details})
    entry = read_manifest(tmp_path)["models"]["w"]
    assert entry["kind"] == "whisper_encoder" and entry["config"] == c.to_dict()
    assert {k: entry[k] for k in details} == details and "sha256" in entry
    kind, loaded, config = load_weights_dir(tmp_path)["w"]
    assert (kind, config) == ("whisper_encoder", c)
    x = np.random.default_rng(0).normal(size=(1, c.n_frames, c.n_mels)).astype("float32")
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(encoder(x)), atol=2e-2)  # float16 kernels
    with pytest.raises(ValueError, match="may not replace"):
        save_weights_dir(tmp_path, {"w": ("whisper_encoder", encoder, c)}, details={"w": {"sha256": "x"}})
    with pytest.raises(ValueError, match="name models being written"):
        save_weights_dir(tmp_path, {"w": ("whisper_encoder", encoder, c)}, details={"v": {}})
