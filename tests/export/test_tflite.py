"""The TFLite int8 runtime: the full-integer per-frame graph against Keras float32, its engine (fixed batch,
last batch padded), its cache, and the runtime choice by CPU."""

import numpy as np
import pytest

from tests.export.conftest import DATA, make_models


@pytest.fixture(scope="module")
def models():
    return make_models("tiny", seed=3)


@pytest.fixture(scope="module")
def tflite_file(models, tmp_path_factory):
    from keras_speech2vid.export.tflite import convert_frame_tflite

    return convert_frame_tflite(*models, tmp_path_factory.mktemp("tflite") / "frame_int8.tflite", batch_size=8)


def test_weights_and_activations_are_int8(tflite_file):
    from keras_speech2vid.inference.int8_engine import tflite_runner

    details = tflite_runner(tflite_file).interpreter.get_tensor_details()
    filters = [d for d in details if d["dtype"] == np.int8 and len(d["shape"]) == 4
               and len(d["quantization_parameters"]["scales"]) == d["shape"][0] > 1]  # per output channel
    assert len(filters) >= 20  # audio encoder, decoder, deblurrer convolutions
    float_filters = [d for d in details if d["dtype"] == np.float32 and len(d["shape"]) == 4 and d["shape"][0] > 1
                     and d["shape"][1] <= 7 and d["shape"][1] == d["shape"][2]]  # k×k float kernels
    assert not float_filters, [d["name"] for d in float_filters][:5]
    int8_activations = [d for d in details if d["dtype"] == np.int8 and d not in filters]
    assert len(int8_activations) >= len(filters)


def test_tflite_frames_match_float32_on_held_out_real_inputs(models, tflite_file):
    from keras_speech2vid.errors import Speech2VidError
    from keras_speech2vid.export.int8 import calibration_feeds, check_int8
    from keras_speech2vid.io import read_image

    faces = [read_image(p) for p in sorted((DATA / "faceimg1").glob("*.png"))][:1]
    feeds = calibration_feeds(*models, faces=faces, audio=DATA / "transcript.mp3", windows=32, batch=8)
    value = check_int8(*models, tflite_file, feeds)
    assert value >= 35.0
    with pytest.raises(Speech2VidError, match="dB from float32"):
        check_int8(*models, tflite_file, feeds, min_psnr=value + 20)


def test_speech2vid_tflite_generates_the_float32_frames_with_a_padded_last_batch(models, tflite_file, monkeypatch):
    import keras_speech2vid.export.int8 as I
    from keras_speech2vid.inference import Speech2Vid
    from keras_speech2vid.inference.int8_engine import TfliteFrameEngine
    from keras_speech2vid.io import read_image

    asked = []
    monkeypatch.setattr(I, "int8_model_path", lambda *a, **k: asked.append(k) or tflite_file)
    faces = [read_image(p) for p in sorted((DATA / "faceimg1").glob("*.png"))]
    wave = np.sin(np.linspace(0, 900, 16000)).astype(np.float32) * 0.3  # 25 frames: 3 batches of 8 and 1 of 1
    fp32 = np.stack(list(Speech2Vid(models[0], deblurrer=models[1]).generate(faces, wave, aligned=True)))
    s2v = Speech2Vid(models[0], deblurrer=models[1], precision="int8", int8_runtime="tflite", batch_size=8)
    int8 = np.stack(list(s2v.generate(faces, wave, aligned=True)))
    assert isinstance(s2v.engine(5), TfliteFrameEngine)
    assert asked[0]["runtime"] == "tflite" and asked[0]["batch_size"] == 8
    assert int8.shape == fp32.shape == (25, 109, 109, 3)
    assert I.psnr(int8 / 255.0, fp32 / 255.0) >= 35.0
    assert I.psnr(int8[-1:] / 255.0, fp32[-1:] / 255.0) >= 35.0  # the padded batch's one real frame
    with pytest.raises(ValueError, match="int8_runtime"):
        Speech2Vid(models[0], precision="int8", int8_runtime="tensorrt")


def test_the_tflite_cache_is_per_batch_and_apart_from_onnx(models, monkeypatch, tmp_path):
    import keras_speech2vid.export.int8 as I
    import keras_speech2vid.export.tflite as T

    monkeypatch.setenv("SPEECH2VID_CACHE", str(tmp_path))
    made = []

    def fake(generator, deblurrer, path, deblur=True, batch_size=8):
        made.append((path.name, batch_size))
        path.write_bytes(b"tflite")
        return path

    monkeypatch.setattr(T, "convert_frame_tflite", fake)
    monkeypatch.setattr(I, "quantize_frame_model", lambda g, d, path, deblur=True: path.write_bytes(b"onnx"))
    b8 = I.int8_model_path(*models, runtime="tflite", batch_size=8)
    assert I.int8_model_path(*models, runtime="tflite", batch_size=8) == b8 and len(made) == 1
    b16 = I.int8_model_path(*models, runtime="tflite", batch_size=16)
    onnx = I.int8_model_path(*models)
    assert len({b8, b16, onnx}) == 3 and b8.suffix == ".tflite" and onnx.suffix == ".onnx"
    assert made[1][1] == 16


@pytest.mark.parametrize("flags, runtime", [
    ("fpu sse2 avx2 fma avx512f avx512_vnni avx512_bf16", "tflite"),  # Zen 4, Ice Lake and later
    ("fpu sse2 avx2 fma avx_vnni", "tflite"),  # Alder Lake and later
    ("fpu sse2 avx2 fma avx512f avx512bw", "onnxruntime"),  # Skylake-SP: AVX-512 without VNNI
    ("fpu sse2 avx2 fma", "onnxruntime"),
    (None, "onnxruntime"),  # no flags line (another OS)
])
def test_auto_runtime_follows_the_cpus_vnni(flags, runtime):
    from keras_speech2vid.inference.int8_engine import default_int8_runtime

    cpuinfo = "processor\t: 0\nmodel name\t: test\n" + (f"flags\t\t: {flags}\n" if flags else "")
    assert default_int8_runtime(cpuinfo) == runtime
