"""ONNX export: onnxruntime against Keras at two batch sizes, dynamic batch, named inputs/outputs."""

import numpy as np
import pytest

from tests.export.conftest import make_models

ATOL = 1e-4


def _check(generator, deblurrer, out_dir, batch_sizes):
    from keras_speech2vid.export import export_onnx
    from keras_speech2vid.export.onnx import max_abs_diff, onnx_session

    results = export_onnx(generator, out_dir, deblurrer, batch_sizes=batch_sizes)
    assert sorted(p.name for p in out_dir.iterdir()) == ["deblurrer.onnx", "generator.onnx"]  # no temp files
    import os

    umask = os.umask(0)
    os.umask(umask)
    for p in out_dir.iterdir():  # the mode of every other output, not mkstemp's 0600
        assert p.stat().st_mode & 0o777 == 0o666 & ~umask, oct(p.stat().st_mode)
    for key, model in (("generator", generator), ("deblurrer", deblurrer)):
        path = results[key]["path"]
        assert results[key]["max_abs_diff"] <= ATOL
        # checked again here, independently of export_onnx's own check, on other inputs
        assert max_abs_diff(model, path, batch_sizes, seed=100) <= ATOL
        session = onnx_session(path)
        inputs = {i.name: i.shape for i in session.get_inputs()}
        outputs = {o.name: o.shape for o in session.get_outputs()}
        if key == "generator":
            assert inputs == {"mfcc": ["batch", 12, 35, 1], "identity": ["batch", 112, 112, 15]}
            assert outputs == {"frame": ["batch", 109, 109, 3]}
        else:
            assert inputs == {"image": ["batch", 109, 109, 3]} and outputs == {"deblurred": ["batch", 109, 109, 3]}
    return results


def test_onnx_matches_keras(tiny_models, tmp_path):
    generator, deblurrer = tiny_models
    _check(generator, deblurrer, tmp_path, (1, 7))


def test_onnx_matches_keras_with_identity_mouth_mask(tmp_path):
    from keras_speech2vid.config import get_config

    # the "skin" fill: the per-image band mean is the part with ops beyond multiply-add
    generator, deblurrer = make_models(get_config("tiny").replace(identity_mouth_mask=True, identity_mouth_fill="skin"))
    assert generator.get_layer("identity_encoder").get_layer("face_mouth_mask") is not None
    _check(generator, deblurrer, tmp_path, (1, 3))


def test_onnx_pipeline_with_silence(tiny_models, tmp_path):
    """generator.onnx → deblurrer.onnx on real MFCC windows (silent padding included) equals Keras."""
    from keras_speech2vid import audio
    from keras_speech2vid.export import export_onnx
    from keras_speech2vid.export.onnx import onnx_session
    from tests.export.conftest import keras_frames, sample_inputs

    generator, deblurrer = tiny_models
    results = export_onnx(generator, tmp_path, deblurrer, validate=False)
    assert all(r["max_abs_diff"] is None for r in results.values())
    rng = np.random.default_rng(1)
    windows = np.asarray(audio.audio_windows((0.1 * rng.standard_normal(8000)).astype(np.float32)))[:5]
    assert np.all(windows[0][:, :10] == 0.0)  # the 1 s zero padding gives silent columns
    _, identity = sample_inputs(1)
    identity = np.repeat(identity, len(windows), axis=0)
    (raw,) = onnx_session(results["generator"]["path"]).run(None, {"mfcc": windows, "identity": identity})
    (frames,) = onnx_session(results["deblurrer"]["path"]).run(None, {"image": raw})
    assert np.abs(frames - keras_frames(generator, deblurrer, windows, identity)).max() <= ATOL


@pytest.mark.slow
def test_onnx_paper_matches_keras(tmp_path):
    generator, deblurrer = make_models("paper")
    _check(generator, deblurrer, tmp_path, (1, 7))
