import numpy as np
import pytest
import tensorflow as tf

from keras_speech2vid.config import get_config
from keras_speech2vid.models.layers import UpSamp2, align_corners_matrix


@pytest.mark.parametrize("size", [1, 2, 3, 6, 13, 53])
def test_upsamp2_equals_tf_align_corners(size):
    rng = np.random.default_rng(size)
    x = rng.normal(size=(2, size, size, 5)).astype(np.float32)
    ours = UpSamp2()(x)
    ref = tf.compat.v1.image.resize_bilinear(x, (2 * size, 2 * size), align_corners=True)
    assert ours.shape == (2, 2 * size, 2 * size, 5)
    np.testing.assert_allclose(np.asarray(ours), ref.numpy(), atol=1e-6)


def test_upsamp2_is_not_keras_half_pixel_bilinear():
    import keras

    x = np.random.default_rng(0).normal(size=(1, 6, 6, 2)).astype(np.float32)
    half_pixel = keras.layers.UpSampling2D(interpolation="bilinear")(x)
    assert np.abs(np.asarray(UpSamp2()(x)) - np.asarray(half_pixel)).max() > 1e-2


def test_align_corners_matrix_rows_sum_to_one_and_hit_corners():
    m = align_corners_matrix(4)
    np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-7)
    assert m[0, 0] == 1.0 and m[-1, -1] == 1.0
    np.testing.assert_array_equal(align_corners_matrix(1), [[1.0], [1.0]])


def test_mouth_mask_fills_the_box_of_every_image_and_round_trips():
    import keras

    from keras_speech2vid.models import MouthMask

    images = np.random.default_rng(0).uniform(size=(2, 112, 112, 15)).astype(np.float32)
    layer = MouthMask((60, 98, 25, 90), fill=0.5)
    out = np.asarray(layer(images))
    inside = np.zeros((112, 112), bool)
    inside[60:98, 25:90] = True
    assert np.all(out[:, inside] == 0.5) and np.array_equal(out[:, ~inside], images[:, ~inside])
    again = MouthMask.from_config(layer.get_config())
    assert again.box == (60, 98, 25, 90) and np.array_equal(np.asarray(again(images)), out)
    assert not layer.weights and isinstance(layer, keras.layers.Layer)


def test_mouth_mask_ring_fills_with_each_channels_mean_around_the_box():
    from keras_speech2vid.models import MouthMask

    images = np.random.default_rng(2).uniform(size=(2, 112, 112, 15)).astype(np.float32)
    images[1] *= 0.3  # another skin tone
    layer = MouthMask((60, 98, 25, 90), ring=6)
    out = np.asarray(layer(images))
    band = np.zeros((112, 112), bool)
    band[54:104, 19:96] = True
    band[60:98, 25:90] = False
    expected = images[:, band].mean(axis=1)  # (2, 15)
    np.testing.assert_allclose(out[:, 70, 50], expected, rtol=1e-5)
    np.testing.assert_allclose(out[:, 97, 89], expected, rtol=1e-5)
    outside = np.ones((112, 112), bool)
    outside[60:98, 25:90] = False
    assert np.array_equal(out[:, outside], images[:, outside])
    assert MouthMask.from_config(layer.get_config()).ring == 6
    with pytest.raises(ValueError, match="identity_mouth_fill"):
        get_config("tiny").replace(identity_mouth_fill="black")


@pytest.mark.parametrize("fill", ["grey", "skin"])
def test_identity_mouth_mask_makes_the_identity_encoder_blind_to_the_mouth(tmp_path, fill):
    import keras

    from keras_speech2vid.config import get_config
    from keras_speech2vid.face.canonical import mouth_box
    from keras_speech2vid.models import build_generator, build_identity_encoder

    config = get_config("tiny").replace(identity_mouth_mask=True, identity_mouth_fill=fill)
    encoder = build_identity_encoder(config)
    faces = np.random.default_rng(1).uniform(size=(2, 112, 112, 15)).astype(np.float32)
    other = faces.copy()
    top, bottom, left, right = mouth_box(size=112)
    other[:, top:bottom, left:right] = 0.0  # another mouth
    other_eyes = faces.copy()
    other_eyes[:, 20:40, 20:90] = 0.0
    same = [np.asarray(t) for t in encoder(faces)], [np.asarray(t) for t in encoder(other)]
    assert all(np.array_equal(a, b) for a, b in zip(*same))
    assert not np.array_equal(np.asarray(encoder(faces)[1]), np.asarray(encoder(other_eyes)[1]))
    plain = build_identity_encoder("tiny")
    assert not np.array_equal(np.asarray(plain(faces)[1]), np.asarray(plain(other)[1]))
    assert encoder.count_params() == plain.count_params()
    generator = build_generator(config)
    generator.save(tmp_path / "g.keras")
    loaded = keras.saving.load_model(tmp_path / "g.keras", safe_mode=True)
    mask = loaded.get_layer("identity_encoder").get_layer("face_mouth_mask")
    assert mask.box == (top, bottom, left, right) and mask.ring == (6 if fill == "skin" else 0)


def test_lower_mouth_mask_hides_the_opening_and_shows_the_upper_lip():
    from keras_speech2vid.config import get_config
    from keras_speech2vid.face.canonical import canonical_landmarks, lower_mouth_box, mouth_box
    from keras_speech2vid.models import build_identity_encoder

    top, bottom, left, right = lower_mouth_box(size=112)
    assert (bottom, left, right) == mouth_box(size=112)[1:]
    upper_inner_lip = canonical_landmarks(112)[61:64, 1].mean()  # landmarks 61..63
    assert top == int(np.floor(upper_inner_lip)) and mouth_box(size=112)[0] < top
    assert lower_mouth_box() == tuple(v - 1 for v in (top, bottom, left, right))  # 109 crop
    config = get_config("tiny").replace(identity_mouth_mask=True, identity_mouth_region="lower")
    encoder = build_identity_encoder(config)
    faces = np.random.default_rng(2).uniform(size=(1, 112, 112, 15)).astype(np.float32)
    lower, upper_lip = faces.copy(), faces.copy()
    lower[:, top:bottom, left:right] = 0.0  # another opening and chin
    upper_lip[:, top - 4:top, left:right] = 0.0  # another upper lip
    skip = lambda x: np.asarray(encoder(x)[1])  # noqa: E731  (the 26 px skip)
    assert np.array_equal(skip(faces), skip(lower))
    assert not np.array_equal(skip(faces), skip(upper_lip))
    whole = build_identity_encoder(get_config("tiny").replace(identity_mouth_mask=True))
    assert np.array_equal(np.asarray(whole(faces)[1]), np.asarray(whole(upper_lip)[1]))
    with pytest.raises(ValueError, match="identity_mouth_region"):
        get_config("tiny").replace(identity_mouth_region="chin")
