"""The int8 path: the quantised per-frame graph against Keras float32, its cache, ``--precision int8``."""

import numpy as np
import pytest

from keras_speech2vid.cli import main
from keras_speech2vid.errors import Speech2VidError
from tests.export.conftest import DATA, keras_frames, make_models


@pytest.fixture(scope="module")
def models():
    return make_models("tiny", seed=3)


@pytest.fixture(scope="module")
def quantised(models, tmp_path_factory):
    from keras_speech2vid.export.int8 import quantize_frame_model

    generator, deblurrer = models
    return quantize_frame_model(generator, deblurrer, tmp_path_factory.mktemp("int8") / "frame_int8.onnx")


@pytest.fixture(scope="module")
def real_feeds(models):
    """Held-out real inputs: the authors' faces and real speech (calibration used the bundled demo files)."""
    from keras_speech2vid.export.int8 import calibration_feeds
    from keras_speech2vid.io import read_image

    faces = [read_image(p) for p in sorted((DATA / "faceimg1").glob("*.png"))][:1]
    return calibration_feeds(*models, faces=faces, audio=DATA / "transcript.mp3", windows=32)


def test_every_convolution_of_the_int8_file_has_int8_weights(quantised):
    import onnx

    graph = onnx.load(str(quantised)).graph
    int8 = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.INT8}
    dequantised = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert len(convs) >= 20  # audio encoder, decoder, deblurrer
    assert all(dequantised.get(n.input[1]) in int8 for n in convs), "a Conv kept float32 weights"
    activations = [n for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] not in int8]
    assert len(activations) >= len(convs)  # the activations are quantised too, not only the weights


def test_int8_frames_match_float32_on_held_out_real_inputs(models, quantised, real_feeds):
    from keras_speech2vid.export.int8 import check_int8
    from keras_speech2vid.inference.int8_engine import onnx_session

    value = check_int8(*models, quantised, real_feeds)
    assert value >= 35.0
    # the error is far below the frames' own contrast (a flat grey image would be near 35 dB too)
    from keras_speech2vid.export.int8 import psnr

    (frames,) = onnx_session(quantised).run(None, real_feeds[0])
    assert value >= psnr(frames, np.full_like(frames, frames.mean())) + 15.0
    with pytest.raises(Speech2VidError, match="dB from float32"):
        check_int8(*models, quantised, real_feeds, min_psnr=value + 20)


def test_int8_frames_equal_the_full_generator_with_identity_from_onnx(models, quantised, tmp_path):
    """The exported pair (identity encoder, int8 frame graph) gives the Keras generator + deblurrer frames."""
    from keras_speech2vid.export.int8 import IDENTITY_INPUTS, export_identity_onnx, psnr
    from keras_speech2vid.inference.int8_engine import onnx_session
    from tests.export.conftest import sample_inputs

    path = export_identity_onnx(models[0], tmp_path / "identity_encoder.onnx")
    mfcc, identity = sample_inputs(6, seed=9)
    identity = identity[:1]
    tensors = onnx_session(path).run(list(IDENTITY_INPUTS), {"identity": identity})
    (frames,) = onnx_session(quantised).run(None, {"mfcc": mfcc, **dict(zip(IDENTITY_INPUTS, tensors))})
    assert frames.shape == (6, 109, 109, 3)
    assert psnr(frames, keras_frames(*models, mfcc, identity)) >= 30.0  # random MFCC: outside calibration


def test_the_cache_quantises_once_per_set_of_weights(models, monkeypatch, tmp_path):
    import keras_speech2vid.export.int8 as I

    monkeypatch.setenv("SPEECH2VID_CACHE", str(tmp_path / "cache"))
    made = []

    def fake(generator, deblurrer, path, deblur=True):
        made.append(path)
        path.write_bytes(b"onnx")
        return path

    monkeypatch.setattr(I, "quantize_frame_model", fake)
    notes = []
    first = I.int8_model_path(*models, notify=notes.append)
    assert I.int8_model_path(*models) == first and len(made) == 1 and len(notes) == 1
    assert first.parent == tmp_path / "cache"
    assert I.int8_model_path(*models, deblur=False) != first  # another graph, another file
    other, _ = make_models("tiny", seed=4)
    assert I.int8_model_path(other, models[1]) not in (first, made[1])
    assert len(made) == 3


def test_speech2vid_int8_generates_the_float32_frames(models, quantised, monkeypatch):
    import keras_speech2vid.export.int8 as I
    from keras_speech2vid.inference import Speech2Vid
    from keras_speech2vid.io import read_image

    monkeypatch.setattr(I, "int8_model_path", lambda *a, deblur=True, **k: quantised)  # the fixture's file
    faces = [read_image(p) for p in sorted((DATA / "faceimg1").glob("*.png"))]
    wave = np.sin(np.linspace(0, 900, 16000)).astype(np.float32) * 0.3
    fp32 = np.stack(list(Speech2Vid(models[0], deblurrer=models[1]).generate(faces, wave, aligned=True)))
    s2v = Speech2Vid(models[0], deblurrer=models[1], precision="int8", batch_size=8, int8_runtime="onnxruntime")
    int8 = np.stack(list(s2v.generate(faces, wave, aligned=True)))
    assert int8.shape == fp32.shape == (25, 109, 109, 3) and int8.dtype == np.uint8
    assert I.psnr(int8 / 255.0, fp32 / 255.0) >= 35.0
    with pytest.raises(ValueError, match="precision"):
        Speech2Vid(models[0], precision="int16")


def test_cli_int8_export_needs_onnx_in_one_line(capsys, tmp_path):
    assert main(["export", "--out", str(tmp_path / "x"), "--precision", "int8"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--format onnx" in err
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_cli_exports_int8(models, tmp_path, capsys):
    folder = tmp_path / "weights"
    folder.mkdir()
    models[0].save(folder / "generator.keras")
    models[1].save(folder / "deblurrer.keras")
    out = tmp_path / "onnx"
    assert main(["export", "--weights", str(folder), "--out", str(out), "--format", "onnx",
                 "--precision", "int8"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert sorted(p.name for p in out.iterdir()) == ["frame_int8.onnx", "identity_encoder.onnx"]
    psnr = float(next(line for line in lines if "frame_int8" in line).split("frames: ")[1].split(" dB")[0])
    assert psnr >= 35.0


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["onnxruntime", "tflite"])
def test_demo_weights_int8_on_the_authors_faces(runtime, tmp_path, monkeypatch):
    """The bundled weights: int8 against fp32 on the authors' faces speaking real speech (PSNR, mouth opening)."""
    from keras_speech2vid.evaluation import metrics as M
    from keras_speech2vid.export.int8 import psnr
    from keras_speech2vid.inference import Speech2Vid

    monkeypatch.setenv("SPEECH2VID_CACHE", str(tmp_path))
    faces = sorted((DATA / "faceimg1").glob("*.png"))
    loaded = {p: Speech2Vid.load(precision=p, int8_runtime=runtime) for p in ("fp32", "int8")}
    runs = {p: np.stack(list(s2v.generate(faces, DATA / "transcript.mp3"))) for p, s2v in loaded.items()}
    assert psnr(runs["int8"] / 255.0, runs["fp32"] / 255.0) >= 35.0
    aperture = {p: np.array([M.mouth_aperture(M.face_landmarks(f)[0]) for f in fr]) for p, fr in runs.items()}
    assert abs(aperture["int8"].std() / aperture["fp32"].std() - 1) <= 0.05
    assert np.corrcoef(aperture["int8"], aperture["fp32"])[0, 1] >= 0.85
