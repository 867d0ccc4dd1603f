import numpy as np
import pytest

from keras_speech2vid.config import SyncNetConfig, get_syncnet_config
from keras_speech2vid.models.syncnet import SYNC_CROP, build_syncnet, get_streams


def _stream_params(widths, first_in, flat, hidden, embedding):
    """Parameters of one stream, counted from the layer table (convs without bias, BN 4 per channel)."""
    n, cin = 0, first_in
    for w in widths:
        n += 9 * cin * w + 4 * w
        cin = w
    return n + flat * hidden + 4 * hidden + hidden * embedding + embedding


@pytest.mark.parametrize("preset", ["small", "tiny"])
def test_shapes_unit_embeddings_and_parameter_count(preset):
    c = get_syncnet_config(preset)
    model = build_syncnet(preset)
    video, audio = get_streams(model)
    rng = np.random.default_rng(0)
    v = np.asarray(video(rng.uniform(size=(3, *SYNC_CROP, 5)).astype("float32")))
    a = np.asarray(audio(rng.normal(size=(7, 12, 20, 1)).astype("float32") * 10))  # other batch size
    assert v.shape == (3, c.embedding) and a.shape == (7, c.embedding)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    # both streams end at 3×5 before the fc layers
    assert video.get_layer("video_flatten").output.shape[-1] == 15 * c.video_widths[-1]
    assert audio.get_layer("audio_flatten").output.shape[-1] == 15 * c.audio_widths[-1]
    assert video.count_params() == _stream_params(c.video_widths, 5, 15 * c.video_widths[-1], c.hidden, c.embedding)
    assert audio.count_params() == _stream_params(c.audio_widths, 1, 15 * c.audio_widths[-1], c.hidden, c.embedding)


def test_layer_names_prefixed():
    video, audio = get_streams(build_syncnet("tiny"))
    assert all(layer.name.startswith("video_") for layer in video.layers[1:])  # after the input
    assert all(layer.name.startswith("audio_") for layer in audio.layers[1:])


def test_dropout_acts_in_training_only(tmp_path):
    from tests.helpers import assert_round_trips

    model = build_syncnet(get_syncnet_config("tiny").replace(dropout=0.5))
    video, _ = get_streams(model)
    x = np.random.default_rng(4).uniform(size=(4, *SYNC_CROP, 5)).astype("float32")
    np.testing.assert_array_equal(np.asarray(video(x)), np.asarray(video(x)))
    # in training two calls differ by their dropout masks (BatchNorm alone gives equal calls)
    assert np.abs(np.asarray(video(x, training=True)) - np.asarray(video(x, training=True))).max() > 1e-3
    plain, _ = get_streams(build_syncnet("tiny"))
    np.testing.assert_array_equal(np.asarray(plain(x, training=True)), np.asarray(plain(x, training=True)))
    assert_round_trips(model, tmp_path)


def test_streams_see_only_their_input_and_bad_configs_raise():
    model = build_syncnet("tiny")
    video, _ = get_streams(model)
    x = np.random.default_rng(3).uniform(size=(2, *SYNC_CROP, 5)).astype("float32")
    y = x.copy()
    y[..., 2] = 1.0 - y[..., 2]  # the middle frame changes: the video embedding must move
    assert np.abs(np.asarray(video(x)) - np.asarray(video(y))).max() > 1e-3
    with pytest.raises(ValueError, match="Received"):
        SyncNetConfig(video_widths=(8, 8))
    with pytest.raises(ValueError, match="Received"):
        build_syncnet("huge")
