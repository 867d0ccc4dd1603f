"""SavedModel and ONNX exports of a generator with the Whisper front end: the same frames as Keras and as
`Speech2Vid.generate`, Whisper's encoder running inside `from_waveform`."""

import numpy as np
import pytest

from tests.export.conftest import DATA, TOL, keras_frames, make_models, sample_inputs


@pytest.fixture(scope="module")
def whisper_export(tmp_path_factory):
    import tensorflow as tf

    from keras_speech2vid.export.saved_model import export_saved_model

    generator, deblurrer = make_models("whisper_tiny")
    path = export_saved_model(generator, tmp_path_factory.mktemp("whisper_export"), deblurrer)
    return generator, deblurrer, path, tf.saved_model.load(str(path))


def _whisper_inputs(batch, seed=0):
    _, identity = sample_inputs(batch, seed=seed)
    return np.random.default_rng(seed).normal(0, 1, (batch, 18, 384)).astype(np.float32), identity


def test_signatures_take_whisper_windows(whisper_export):
    import json

    import tensorflow as tf

    generator, deblurrer, path, loaded = whisper_export
    features, identity = _whisper_inputs(5, seed=1)
    out = loaded.signatures["generate"](whisper=tf.constant(features), identity=tf.constant(identity))["frames"]
    assert np.abs(out.numpy() - keras_frames(generator, deblurrer, features, identity)).max() <= TOL
    cached = loaded.signatures["encode_identity"](identity=tf.constant(identity[:1]))
    decoded = loaded.signatures["decode"](whisper=tf.constant(features), **cached)["frames"]
    assert np.abs(decoded.numpy() - keras_frames(generator, deblurrer, features, identity[:1])).max() <= TOL
    meta = json.loads((path / "assets.extra" / "speech2vid.json").read_text())
    assert meta["audio_input"] == "whisper" and meta["mfcc_shape"] == [18, 384]
    with pytest.raises(tf.errors.InvalidArgumentError, match="whisper must be"):
        loaded.signatures["generate"](whisper=tf.constant(features[:, :17]), identity=tf.constant(identity))


@pytest.mark.parametrize("seconds", [4.1, 35.0])  # one Whisper window; two, across the 30 s boundary
def test_from_waveform_equals_the_python_pipeline(whisper_export, seconds):
    import tensorflow as tf

    from keras_speech2vid import audio, io
    from keras_speech2vid.whisper import iter_whisper_windows

    generator, deblurrer, _, loaded = whisper_export
    speech = io.decode_audio(DATA / "tmp.wav")
    wave = np.resize(speech, int(seconds * 16000)).astype(np.float32)
    _, identity = sample_inputs(1, seed=6)
    out = loaded.signatures["from_waveform"](waveform=tf.constant(wave), identity=tf.constant(identity))["frames"]
    n = audio.num_video_frames(len(wave), 25.0)
    windows = np.concatenate(list(iter_whisper_windows(wave, 25.0, n)))
    expected = np.concatenate([keras_frames(generator, deblurrer, windows[i:i + 64], identity)
                               for i in range(0, n, 64)])
    assert out.shape == expected.shape == (n, 109, 109, 3)
    # the reloaded graph's Whisper (grappler-optimised attention) rounds differently from eager Keras, and the
    # randomised tiny generator amplifies it: a few pixels move by up to ~1.5 grey levels, the mean by none
    diff = np.abs(out.numpy() - expected)
    assert diff.max() <= 0.01 and diff.mean() <= 5e-5, (diff.max(), diff.mean())


def test_onnx_generator_takes_whisper_windows(tmp_path):
    from keras_speech2vid.export.onnx import export_onnx, onnx_session

    generator, deblurrer = make_models("whisper_tiny")
    result = export_onnx(generator, tmp_path, deblurrer, batch_sizes=(1, 4))
    assert result["generator"]["max_abs_diff"] <= 1e-4
    inputs = {i.name: i.shape for i in onnx_session(result["generator"]["path"]).get_inputs()}
    assert inputs == {"whisper": ["batch", 18, 384], "identity": ["batch", 112, 112, 15]}


def test_the_serving_client_sends_whisper_windows(whisper_export, client, tmp_path):
    from keras_speech2vid import io
    from keras_speech2vid.whisper import iter_whisper_windows

    generator, deblurrer, path, _ = whisper_export
    transport = client.LocalTransport(path)
    signatures = client.parse_metadata(transport.metadata())
    assert client.audio_input(signatures) == "whisper"
    wave = io.decode_audio(DATA / "tmp.wav")[:16000 * 2]
    windows = client.whisper_windows(wave)
    np.testing.assert_array_equal(windows, np.concatenate(list(iter_whisper_windows(wave, 25.0, 50))))
    identity = client.load_identity(sorted((DATA / "faceimg1").glob("*.png")), 5)
    frames = client.generate_frames(transport, signatures, identity, windows, batch=16)
    assert np.abs(frames - keras_frames(generator, deblurrer, windows, identity)).max() <= TOL
