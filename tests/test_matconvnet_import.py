"""`speech2vid import-matconvnet`: synthetic v201/v114 DagNN files (every layer name of v201.xlsx, the real
shapes, random values), in MATLAB v5/v7 and v7.3 (HDF5) format, against an independent NumPy DagNN forward
pass on the authors' aligned faces and real MFCC windows."""

import numpy as np
import pytest

from tests import dagnn_reference as ref

DATA = ref.DATA
TOL = 1e-4


@pytest.fixture(scope="module")
def inputs():
    from keras_speech2vid.audio import audio_windows
    from keras_speech2vid.io import decode_audio, read_image

    faces = [read_image(DATA / "faceimg1" / f"faceimg1_{k}.png") for k in range(1, 6)]
    windows = np.asarray(audio_windows(decode_audio(DATA / "tmp.wav")))
    picked = windows[[30, 55, 80]]  # speech, not the padding
    assert np.all(picked != 0.0)
    stacks = [np.concatenate(faces[i:] + faces[:i], axis=-1) for i in range(len(picked))]  # the five in turn
    return {"input_audio": picked.astype(np.float32),
            "input_face": np.stack(stacks).astype(np.float32)}  # 0-255, as the original


@pytest.fixture(scope="module")
def v201(inputs):
    """(layers, params, reference variables): the moments calibrated on the inputs, then the forward pass."""
    rng = np.random.default_rng(201)
    layers = ref.v201_layers()
    params = ref.add_parameters(layers, rng, ref.bn_channels(layers), last_scale=0.5)
    ref.forward(layers, params, inputs, calibrate_rng=rng)
    return layers, params, ref.forward(layers, params, inputs)


@pytest.fixture(scope="module")
def v114(v201):
    rng = np.random.default_rng(114)
    layers = ref.v114_layers()
    params = ref.add_parameters(layers, rng, {}, last_scale=0.1)
    prediction = v201[2]["prediction"]
    residual = ref.forward(layers, params, {"input_lip": prediction})["sup9"]
    return layers, params, prediction + residual  # the demo's final image: prediction + residual, unclipped


def _write(kind, tmp_path, layers, params, stem):
    if kind == "v7.3":
        return ref.write_v73(tmp_path / f"{stem}.mat", layers, params)
    return ref.write_v5(tmp_path / f"{stem}.mat", layers, params, wrap=(kind == "v7-net"))


@pytest.mark.parametrize("kind", ["v7", "v7-net", "v7.3"])
def test_imported_models_equal_the_dagnn_forward_pass(kind, v201, v114, inputs, tmp_path):
    import keras

    from keras_speech2vid.matconvnet_import import import_deblurrer, import_generator

    layers, params, expected = v201
    prediction = expected["prediction"]
    assert 0.05 < prediction.std() and 0.01 < prediction.mean() < 0.99  # the random net is not saturated
    generator, config, skipped = import_generator(_write(kind, tmp_path, layers, params, "v201"))
    assert config.identity_images == 5
    assert sorted(skipped) == sorted(la["name"] for la in layers if "_face_lip_" in la["name"]
                                     or la["name"].startswith("loss"))
    ours = generator({"mfcc": inputs["input_audio"], "identity": inputs["input_face"] / 255.0},
                     training=False)["frame"]
    assert np.abs(np.asarray(ours) - prediction).max() <= TOL
    # the identity embedding (relu7_face) too, where a wrong BN conversion would show first
    identity = generator.get_layer("identity_encoder")(inputs["input_face"] / 255.0, training=False)[0]
    assert np.abs(np.asarray(identity).reshape(len(prediction), -1) - expected["x23_face"].reshape(len(prediction), -1)
                  ).max() <= TOL * max(1.0, np.abs(expected["x23_face"]).max())

    layers, params, final = v114
    deblurrer, _, skipped = import_deblurrer(_write(kind, tmp_path, layers, params, "v114"))
    assert skipped == ["loss_SR"]
    unclipped = keras.Model(deblurrer.input, deblurrer.get_layer("deblur_add").output)
    got = np.asarray(unclipped(prediction.astype(np.float32), training=False))
    assert np.abs(got - final).max() <= TOL
    assert np.abs(got - prediction).max() > 0.01  # the residual is not nothing
    clipped = np.asarray(deblurrer(prediction.astype(np.float32), training=False))
    assert np.abs(clipped - np.clip(final, 0, 1)).max() <= TOL


def test_one_image_variant_is_recognised(inputs, tmp_path):
    from keras_speech2vid.matconvnet_import import import_generator

    rng = np.random.default_rng(1)
    layers = ref.v201_layers()
    for layer in layers:
        if layer["name"] == "conv1_face":
            layer["kernel"] = [7, 7, 3, 96]
    params = ref.add_parameters(layers, rng, ref.bn_channels(layers), last_scale=0.5)
    one = {"input_audio": inputs["input_audio"], "input_face": inputs["input_face"][..., :3]}
    ref.forward(layers, params, one, calibrate_rng=rng)
    expected = ref.forward(layers, params, one)["prediction"]
    generator, config, _ = import_generator(ref.write_v5(tmp_path / "v201_1img.mat", layers, params))
    assert config.identity_images == 1
    ours = generator({"mfcc": one["input_audio"], "identity": one["input_face"] / 255.0}, training=False)["frame"]
    assert np.abs(np.asarray(ours) - expected).max() <= TOL


def _broken(v201, change):
    layers, params, _ = v201
    layers = [dict(la) for la in layers]
    params = dict(params)
    change(layers, params)
    return layers, params


def _drop_layer(name):
    return lambda layers, params: layers.remove(next(la for la in layers if la["name"] == name))


def _reshape_param(name, shape):
    return lambda layers, params: params.__setitem__(name, np.zeros(shape, np.float32))


def _rewire(layers, params):
    layer = next(la for la in layers if la["name"] == "concat8")
    layer["inputs"] = layer["inputs"][::-1]


def _drop_param(layers, params):
    del params["bn3_facex"]


@pytest.mark.parametrize("change, message", [
    (_drop_layer("conv2_face"), "layer 'conv2_face' missing"),
    (_drop_layer("bn5_audio"), "layer 'bn5_audio' missing"),
    (_reshape_param("conv3_audiof", (3, 3, 128, 128)), "parameter 'conv3_audiof' of layer 'conv3_audio' has shape "
                                                       "3x3x128x128, expected 3x3x128x256"),
    (_reshape_param("bn2_facex", (256, 3)), "parameter 'bn2_facex' of layer 'bn2_face' has shape 256x3"),
    (_rewire, "layer 'concat8' reads ['x23_face', 'x24_audio']"),
    (_drop_param, "parameter 'bn3_facex' of layer 'bn3_face' missing"),
])
def test_a_broken_file_gives_one_line_naming_what_is_wrong(change, message, v201, tmp_path, capsys):
    from keras_speech2vid.cli import main

    layers, params = _broken(v201, change)
    path = ref.write_v5(tmp_path / "v201.mat", layers, params)
    out = tmp_path / "out"
    assert main(["import-matconvnet", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and str(path) in err, err
    assert not out.exists() or not any(out.iterdir())


def test_files_that_are_not_dagnn_speech2vid_models(v201, tmp_path, capsys):
    import scipy.io

    from keras_speech2vid.cli import main

    text = tmp_path / "notes.mat"
    text.write_text("not a MATLAB file\n")
    other = tmp_path / "other.mat"
    scipy.io.savemat(other, {"weights": np.ones((3, 3))})
    simple = tmp_path / "simplenn.mat"
    scipy.io.savemat(simple, {"layers": np.array([[{"type": "conv", "weights": np.ones(2)}]], dtype=object)})
    layers, params = _broken(v201, lambda la, pa: None)
    deblur_as_generator = ref.write_v5(tmp_path / "v114.mat", ref.v114_layers(), ref.add_parameters(
        ref.v114_layers(), np.random.default_rng(0), {}))
    v201_file = ref.write_v5(tmp_path / "v201.mat", layers, params)
    cases = [([str(text)], "not a readable MATLAB file"),
             ([str(other)], "not a DagNN network (no 'layers' and 'params' structs; variables: weights)"),
             ([str(simple)], "not a DagNN"),
             ([str(deblur_as_generator)], "layer 'conv1_face' missing"),
             ([str(v201_file), str(v201_file)], "layer 'supr0' missing"),
             ([str(tmp_path / "absent.mat")], "no such file")]
    for args, message in cases:
        out = tmp_path / "out"
        assert main(["import-matconvnet", *args, "--out", str(out)]) == 2, args
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, (args, err)
        assert not (out / "manifest.json").exists()


@pytest.mark.slow
def test_the_imported_folder_generates_evaluates_and_exports(v201, v114, tmp_path, capsys):
    """The folder of `speech2vid import-matconvnet` in generate, evaluate and export (SavedModel, ONNX)."""
    import json

    import tensorflow as tf

    from keras_speech2vid.cli import main
    from keras_speech2vid.export.onnx import max_abs_diff
    from keras_speech2vid.io import probe
    from keras_speech2vid.weights import load_models

    g = ref.write_v73(tmp_path / "v201.mat", *v201[:2])
    d = ref.write_v5(tmp_path / "v114.mat", *v114[:2])
    weights = tmp_path / "weights_v201"
    assert main(["import-matconvnet", str(g), str(d), "--out", str(weights)]) == 0
    manifest = json.loads((weights / "manifest.json").read_text())
    assert manifest["models"]["generator"]["source"] == "v201.mat" and "x 255" in manifest["input_convention"]
    models = load_models(weights)
    assert models.generator.get_layer("identity_encoder").get_layer("face_conv1").kernel.dtype == "float32"
    faces = [a for k in range(1, 6) for a in ("--face", str(DATA / "faceimg1" / f"faceimg1_{k}.png"))]
    video = tmp_path / "out.mp4"
    assert main(["generate", "--weights", str(weights), *faces, "--aligned", "--audio",
                 str(DATA / "tmp.wav"), "--outfile", str(video)]) == 0
    assert probe(video).has_audio and probe(video).duration > 1.0
    assert main(["evaluate", "--clips", str(DATA / "vox2_00086_man_suit_red_bg.mp4"), "--weights", str(weights),
                 "--outdir", str(tmp_path / "eval"), "--max-seconds", "2", "--no-sync"]) == 0
    assert (tmp_path / "eval" / "report.md").is_file()
    assert main(["export", "--weights", str(weights), "--out", str(tmp_path / "sm"), "--version", "1"]) == 0
    loaded = tf.saved_model.load(str(tmp_path / "sm" / "speech2vid" / "1"))
    mfcc = np.asarray(v201[2]["input_audio"], np.float32)
    identity = (np.asarray(v201[2]["input_face"], np.float32) / 255.0)
    frames = loaded.signatures["serving_default"](mfcc=tf.constant(mfcc), identity=tf.constant(identity))["frames"]
    assert np.abs(frames.numpy() - np.clip(v114[2], 0, 1)).max() <= TOL
    assert main(["export", "--weights", str(weights), "--out", str(tmp_path / "onnx"), "--format", "onnx"]) == 0
    assert max_abs_diff(models.generator, tmp_path / "onnx" / "generator.onnx", (1, 3), seed=3) <= TOL
    capsys.readouterr()


def test_batchnorm_moments_become_keras_statistics_even_below_epsilon():
    """(μ, σ) with σ = sqrt(var + ε) → moving_variance = σ² − ε; a σ under sqrt(ε) (1e-5 here) is folded into γ."""
    import keras

    from keras_speech2vid.dagnn import DagLayer, DagNN
    from keras_speech2vid.matconvnet_import import _bn_weights

    sigma = np.array([2.0, 0.5, 0.01, 0.002], np.float32)  # 0.002 < sqrt(1e-5) = 0.00316
    mu = np.array([0.3, -1.0, 0.05, 0.0], np.float32)
    gamma, beta = np.array([1.5, 0.7, 1.0, 2.0], np.float32), np.array([0.1, 0.0, -0.2, 0.3], np.float32)
    net = DagNN("bn.mat", [DagLayer("bn", "dagnn.BatchNorm", ["x"], ["y"], ["m", "b", "x"])],
                {"m": gamma, "b": beta, "x": np.stack([mu, sigma], 1)})
    bn = keras.layers.BatchNormalization(epsilon=1e-5)
    bn.build((None, 4))
    bn.set_weights(_bn_weights(net, net.layers[0], 4, bn.epsilon))
    x = np.random.default_rng(0).normal(0.0, 0.05, (64, 4)).astype(np.float32)
    expected = gamma * (x - mu) / sigma + beta
    np.testing.assert_allclose(np.asarray(bn(x, training=False)), expected, rtol=1e-4, atol=1e-4)
    net.params["x"][0, 1] = -1.0
    with pytest.raises(Exception, match="sigma <= 0"):
        _bn_weights(net, net.layers[0], 4, 1e-5)
