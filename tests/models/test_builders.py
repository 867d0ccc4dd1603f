"""Shapes and parameter counts against spec §2–3, serialisation round trips."""

import numpy as np
import pytest

import keras
import keras_speech2vid as s2v
from keras_speech2vid.models import (
    build_audio_encoder,
    build_deblurrer,
    build_decoder,
    build_generator,
    build_identity_encoder,
    build_syncnet,
    get_submodels,
)
from tests.helpers import assert_round_trips

# spec §2.6
TRAINABLE = {
    "audio_encoder": 6_928_000,
    "identity_encoder": {5: 16_159_424, 1: 16_102_976},
    "decoder": 4_958_851,
    "generator": {5: 28_046_275, 1: 27_989_827},
    "deblurrer": 298_947,
}
BN_MOVING = {"audio_encoder": 3_456, "identity_encoder": 5_312}

# every tapped tensor of spec §2.1–2.3: layer name -> (H, W, C) after that layer
AUDIO_SHAPES = {
    "audio_relu1": (12, 35, 64), "audio_pool1": (12, 35, 64), "audio_relu2": (12, 35, 128),
    "audio_pool2": (11, 17, 128), "audio_relu3": (11, 17, 256), "audio_relu4": (11, 17, 256),
    "audio_relu5": (11, 17, 256), "audio_pool5": (5, 8, 256), "audio_relu6": (1, 1, 512),
    "audio_relu7": (1, 1, 256),
}
FACE_SHAPES = {
    "face_relu1": (53, 53, 96), "face_pool1": (26, 26, 96), "face_relu2": (12, 12, 256),
    "face_pool2": (6, 6, 256), "face_relu3": (6, 6, 512), "face_relu4": (6, 6, 512),
    "face_relu5": (6, 6, 512), "face_relu6": (1, 1, 512), "face_relu7": (1, 1, 256),
}
DECODER_SHAPES = {
    "dec_concat8": (1, 1, 512), "dec_conv8": (1, 1, 128), "dec_upsamp1_1": (2, 2, 128),
    "dec_conv1_1": (2, 2, 128), "dec_upsamp1_2": (4, 4, 128), "dec_conv1_2": (4, 4, 256),
    "dec_upsamp1_3": (8, 8, 256), "dec_conv1_3": (6, 6, 512), "dec_upsamp2": (12, 12, 512),
    "dec_conv2": (12, 12, 256), "dec_concat_skip2": (12, 12, 512), "dec_upsamp3_1": (24, 24, 512),
    "dec_conv3_1": (24, 24, 256), "dec_conv3_2": (26, 26, 96), "dec_concat_skip3": (26, 26, 192),
    "dec_upsamp4": (52, 52, 192), "dec_conv4": (53, 53, 96), "dec_concat_skip4": (53, 53, 192),
    "dec_upsamp5_1": (106, 106, 192), "dec_conv5_1": (107, 107, 64), "dec_conv5_2": (108, 108, 32),
    "dec_conv5_3": (109, 109, 3), "dec_sigmoid5_3": (109, 109, 3),
}


def count(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


@pytest.fixture(scope="module", params=["paper", "paper_1img"])
def paper_generator(request):
    return request.param, build_generator(request.param)


def test_tapped_shapes(paper_generator):
    preset, generator = paper_generator
    audio, identity, decoder = get_submodels(generator)
    for model, table in ((audio, AUDIO_SHAPES), (identity, FACE_SHAPES), (decoder, DECODER_SHAPES)):
        for layer_name, shape in table.items():
            assert tuple(model.get_layer(layer_name).output.shape[1:]) == shape, (preset, layer_name)
    n = s2v.PRESETS[preset].identity_images
    assert tuple(generator.input["identity"].shape[1:]) == (112, 112, 3 * n)
    assert tuple(generator.input["mfcc"].shape[1:]) == (12, 35, 1)
    assert tuple(generator.output["frame"].shape[1:]) == (109, 109, 3)
    emb, s53, s26, s12 = (tuple(t.shape[1:]) for t in identity.outputs)
    assert (emb, s53, s26, s12) == ((1, 1, 256), (53, 53, 96), (26, 26, 96), (12, 12, 256))


def test_parameter_counts(paper_generator):
    preset, generator = paper_generator
    n = s2v.PRESETS[preset].identity_images
    audio, identity, decoder = get_submodels(generator)
    assert count(audio.trainable_weights) == TRAINABLE["audio_encoder"]
    assert count(identity.trainable_weights) == TRAINABLE["identity_encoder"][n]
    assert count(decoder.trainable_weights) == TRAINABLE["decoder"]
    assert count(generator.trainable_weights) == TRAINABLE["generator"][n]
    assert count(audio.non_trainable_weights) == BN_MOVING["audio_encoder"]
    assert count(identity.non_trainable_weights) == BN_MOVING["identity_encoder"]
    assert count(decoder.non_trainable_weights) == 0  # no BatchNorm in the decoder


def test_deblurrer_parameters_and_clip():
    deblurrer = build_deblurrer("paper")
    assert count(deblurrer.trainable_weights) == TRAINABLE["deblurrer"]
    assert len([layer for layer in deblurrer.layers if isinstance(layer, keras.layers.Conv2D)]) == 10
    x = np.random.default_rng(0).uniform(size=(2, 109, 109, 3)).astype(np.float32)
    # push the residual far positive: the sum must still be clipped to [0, 1]
    last = deblurrer.get_layer("deblur_conv9")
    kernel, bias = last.get_weights()
    last.set_weights([kernel, bias + 5.0])
    y = np.asarray(deblurrer(x))
    assert y.shape == x.shape and y.max() == 1.0 and y.min() >= 0.0


def test_deblurrer_is_residual():
    deblurrer = build_deblurrer("tiny")
    last = deblurrer.get_layer("deblur_conv9")
    last.set_weights([np.zeros_like(w) for w in last.get_weights()])
    x = np.random.default_rng(1).uniform(size=(1, 109, 109, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(deblurrer(x)), x, atol=1e-7)


def test_layer_names_carry_module_prefix():
    generator = build_generator("tiny")
    audio, identity, decoder = get_submodels(generator)
    for model, prefix in ((audio, "audio_"), (identity, "face_"), (decoder, "dec_")):
        for layer in model.layers:
            if not isinstance(layer, keras.layers.InputLayer):
                assert layer.name.startswith(prefix), layer.name
    assert all(layer.name.startswith("deblur_") for layer in build_deblurrer("tiny").layers[1:])


def test_generator_equals_composed_submodels():
    generator = build_generator("tiny")
    audio, identity, decoder = get_submodels(generator)
    rng = np.random.default_rng(2)
    mfcc = rng.normal(scale=8.0, size=(3, 12, 35, 1)).astype(np.float32)
    faces = rng.uniform(size=(3, 112, 112, 15)).astype(np.float32)
    whole = np.asarray(generator({"mfcc": mfcc, "identity": faces})["frame"])
    composed = np.asarray(decoder([np.asarray(audio(mfcc)), *map(np.asarray, identity(faces))]))
    np.testing.assert_allclose(whole, composed, atol=1e-6)
    # the identity branch run once and broadcast over the batch gives the same frames
    cached = [np.repeat(np.asarray(t), 3, axis=0) for t in identity(faces[:1])]
    same = np.repeat(faces[:1], 3, axis=0)
    np.testing.assert_allclose(np.asarray(generator({"mfcc": mfcc, "identity": same})["frame"]),
                               np.asarray(decoder([np.asarray(audio(mfcc)), *cached])), atol=1e-6)


BUILDERS = [build_audio_encoder, build_identity_encoder, build_decoder, build_generator, build_deblurrer, build_syncnet]


@pytest.mark.parametrize("builder", BUILDERS, ids=lambda b: b.__name__)
def test_config_and_keras_file_round_trip(builder, tmp_path):
    assert_round_trips(builder("tiny"), tmp_path)


def test_unknown_preset_and_bad_config():
    with pytest.raises(ValueError, match="Received"):
        build_generator("huge")
    with pytest.raises(ValueError, match="Received"):
        s2v.ModelConfig(identity_images=0)


def test_mouth_expert_reads_only_its_box_and_round_trips(tmp_path):
    from keras_speech2vid.models import build_mouth_expert
    from keras_speech2vid.models.mouth_expert import EXPERT_BOX

    model = build_mouth_expert()
    assert model.input_shape == (None, 109, 109, 3) and model.output_shape == (None, 40)
    assert all(layer.name.startswith("mouth_expert_") for layer in model.layers[1:])
    x = np.random.default_rng(5).uniform(size=(2, 109, 109, 3)).astype(np.float32)
    top, bottom, left, right = EXPERT_BOX
    outside, inside = x.copy(), x.copy()
    outside[:, :top] = 0.0
    outside[:, :, right:] = 1.0
    inside[:, top + 10:top + 20, left + 30:left + 40] = 0.0
    np.testing.assert_array_equal(model(outside), model(x))
    assert np.abs(np.asarray(model(inside)) - np.asarray(model(x))).max() > 1e-4
    model.save(tmp_path / "expert.keras")
    loaded = keras.saving.load_model(tmp_path / "expert.keras", safe_mode=True)
    np.testing.assert_array_equal(loaded(x), model(x))
    # it reads luma only: a colour cast with no luma change does not move its reading
    cast = x + np.array([0.587, -0.299, 0.0], np.float32) * 0.2
    np.testing.assert_allclose(model(cast), model(x), atol=1e-4)
    colour = build_mouth_expert(grey=False)
    assert np.abs(np.asarray(colour(cast)) - np.asarray(colour(x))).max() > 1e-3
    assert len(model.trainable_weights) == len(colour.trainable_weights)  # the luma weights are fixed
    with pytest.raises(ValueError, match="Received: size=100"):
        build_mouth_expert(100)
    with pytest.raises(ValueError, match="Received: widths"):
        build_mouth_expert(widths=())


def test_whisper_front_end_generators(tmp_path):
    """The `whisper` presets: a Whisper-feature audio encoder before the paper's decoder, and nothing else changed."""
    from keras_speech2vid.config import PRESETS
    from keras_speech2vid.models.generator import audio_front_end

    generator, paper = build_generator("whisper"), build_generator("paper")
    audio = generator.get_layer("audio_encoder")
    assert audio.input.shape[1:] == (18, 384) and audio.output.shape[1:] == (1, 1, 256)
    assert audio_front_end(generator) == "whisper" and audio_front_end(paper) == "mfcc"
    # conv1 (1×3, 384→256), conv2 (1×3 stride 2, 256→256), fc6 (1×9, 256→512), fc7 (1×1, 512→256), each + BN
    expected = sum(k * i * o + o + 4 * o for k, i, o in [(3, 384, 256), (3, 256, 256), (9, 256, 512), (1, 512, 256)])
    assert audio.count_params() == expected
    # the identity encoder and decoder are the paper's
    for name in ("identity_encoder", "decoder"):
        assert generator.get_layer(name).count_params() == paper.get_layer(name).count_params()
    assert all(layer.name.startswith("audio_") for layer in audio.layers[1:])
    assert PRESETS["whisper_1img"].identity_images == 1 and PRESETS["whisper"].audio_front_end == "whisper"
    with pytest.raises(ValueError, match="audio_front_end"):
        PRESETS["paper"].replace(audio_front_end="wav2vec")
    assert_round_trips(build_generator("whisper_tiny"), tmp_path)


def test_a_whisper_generator_starts_from_a_paper_generator_s_face_and_decoder(tmp_path):
    from keras_speech2vid.training.shared import init_weights, layers_with_weights

    paper, whisper = build_generator("tiny"), build_generator("whisper_tiny")
    paper.save(tmp_path / "generator.keras")
    count = init_weights("generator", whisper, tmp_path / "generator.keras")
    shared = [n for n in layers_with_weights(whisper) if not n.startswith("audio_")]
    assert count == len(shared) > 20
    for name in shared:
        for a, b in zip(layers_with_weights(whisper)[name].weights,
                        layers_with_weights(paper)[name].weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
