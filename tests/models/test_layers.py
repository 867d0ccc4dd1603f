import numpy as np
import pytest
import tensorflow as tf

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
