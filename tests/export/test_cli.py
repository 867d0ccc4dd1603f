"""`speech2vid export` end to end on a weights folder of tiny `.keras` files."""

import json

import numpy as np
import pytest

from keras_speech2vid.cli import main
from tests.export.conftest import TOL, keras_frames, sample_inputs


@pytest.fixture(scope="module")
def weights_dir(tiny_models, tmp_path_factory):
    generator, deblurrer = tiny_models
    path = tmp_path_factory.mktemp("weights")
    generator.save(path / "generator.keras")
    deblurrer.save(path / "deblurrer.keras")
    return path


def _signature(path, name, **inputs):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    return loaded.signatures[name](**{k: tf.constant(v) for k, v in inputs.items()})["frames"].numpy()


def test_export_savedmodel(weights_dir, tiny_models, tmp_path, capsys):
    out = tmp_path / "export"
    assert main(["export", "--weights", str(weights_dir), "--out", str(out), "--format", "savedmodel",
                 "--version", "3"]) == 0
    version = out / "speech2vid" / "3"
    assert capsys.readouterr().out.strip() == str(version)
    mfcc, identity = sample_inputs(2, seed=50)
    frames = _signature(version, "serving_default", mfcc=mfcc, identity=identity)
    assert np.abs(frames - keras_frames(*tiny_models, mfcc, identity)).max() <= TOL
    # the same version again is refused, in one line, exit status 2
    assert main(["export", "--weights", str(weights_dir), "--out", str(out), "--version", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists" in err and str(version) in err


def test_export_without_deblurrer(weights_dir, tiny_models, tmp_path, capsys):
    only = tmp_path / "weights"
    only.mkdir()
    (only / "generator.keras").write_bytes((weights_dir / "generator.keras").read_bytes())
    out = tmp_path / "export"
    assert main(["export", "--weights", str(only), "--out", str(out)]) == 0  # default format and version
    printed = capsys.readouterr().out
    assert "without deblurring" in printed and str(out / "speech2vid" / "1") in printed
    meta = json.loads((out / "speech2vid" / "1" / "assets.extra" / "speech2vid.json").read_text())
    assert meta["deblurred"] is False
    mfcc, identity = sample_inputs(2, seed=51)
    frames = _signature(out / "speech2vid" / "1", "generate", mfcc=mfcc, identity=identity)
    assert np.abs(frames - keras_frames(tiny_models[0], None, mfcc, identity)).max() <= TOL


def test_export_onnx(weights_dir, tmp_path, capsys):
    out = tmp_path / "onnx"
    assert main(["export", "--weights", str(weights_dir), "--out", str(out), "--format", "onnx"]) == 0
    printed = capsys.readouterr().out
    assert (out / "generator.onnx").is_file() and (out / "deblurrer.onnx").is_file()
    assert printed.count("onnxruntime vs Keras max abs diff") == 2
    assert main(["export", "--weights", str(weights_dir), "--out", str(out), "--format", "onnx",
                 "--version", "2"]) == 2
    assert "--version applies to --format savedmodel only" in capsys.readouterr().err


def test_missing_or_bad_weights(weights_dir, tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert main(["export", "--weights", str(missing), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(missing) in err

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "generator.keras").write_bytes(b"not a zip file")
    assert main(["export", "--weights", str(broken), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(broken / "generator.keras") in err

    assert main(["export", "--weights", str(weights_dir), "--out", str(tmp_path / "o"), "--name", "a/b"]) == 2
    assert "name must be" in capsys.readouterr().err

    from keras_speech2vid.errors import WeightsError
    from keras_speech2vid.export import export_weights

    with pytest.raises(WeightsError, match="nowhere"):
        export_weights(missing, tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_export_defaults_to_the_bundled_weights(tmp_path, monkeypatch):
    import keras_speech2vid.export as E
    from keras_speech2vid.cli import build_parser

    args = build_parser().parse_args(["export", "--out", str(tmp_path / "x")])
    assert args.weights is None
    seen = []

    def load_models(weights_dir):  # stands in for the 28 M-parameter bundled generator
        seen.append(weights_dir)
        raise RuntimeError("stop")

    monkeypatch.setattr(E, "load_models", load_models)
    with pytest.raises(RuntimeError, match="stop"):
        E.export_weights(args.weights, tmp_path / "x")
    assert seen == [None]  # None: `weights.load_models` reads the bundled folder
