"""Whisper encoder port: the log-mel front end against independent numpy references, shapes, round trips."""


import keras
import numpy as np
import pytest

from keras_speech2vid.models.whisper import (WHISPER_PRESETS, WhisperConfig, WhisperLogMel, build_whisper_encoder,
                                             build_whisper_waveform_encoder, get_whisper_config, mel_filters)
from tests.conftest import DATA
from tests.helpers import assert_round_trips, run_under_jax

# --------------------------------------------------------------------------------------------
# Independent references: written from the definitions, sharing no code with the package


def slaney_mel(hz):
    hz = np.asarray(hz, np.float64)
    return np.where(hz < 1000.0, 3.0 * hz / 200.0, 15.0 + 27.0 * np.log(np.maximum(hz, 1.0) / 1000.0) / np.log(6.4))


def slaney_hz(mel):
    mel = np.asarray(mel, np.float64)
    return np.where(mel < 15.0, 200.0 * mel / 3.0, 1000.0 * 6.4 ** ((mel - 15.0) / 27.0))


def reference_filterbank(sr=16000, n_fft=400, n_mels=80) -> np.ndarray:
    """(n_mels, bins): band by band, a piecewise-linear triangle through (lo, 0), (mid, 1), (hi, 0) scaled to
    area 1 (height 2 / (hi − lo)), as librosa.filters.mel(norm="slaney", htk=False)."""
    freqs = np.arange(n_fft // 2 + 1) * sr / n_fft
    edges = slaney_hz(np.linspace(0.0, slaney_mel(sr / 2), n_mels + 2))
    bank = np.zeros((n_mels, len(freqs)))
    for m in range(n_mels):
        lo, mid, hi = edges[m:m + 3]
        bank[m] = np.interp(freqs, [lo, mid, hi], [0.0, 1.0, 0.0], left=0.0, right=0.0) * 2.0 / (hi - lo)
    return bank


def numpy_log_mel(x: np.ndarray, n_mels: int = 80) -> np.ndarray:
    """(frames, n_mels) Whisper log-mel of one waveform in float64: centred 400-sample frames every 160
    (reflect padding), periodic Hann, |rfft|², mel, last frame dropped, log10, floor at max − 8, (x + 4)/4."""
    x = np.pad(np.asarray(x, np.float64), 200, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(x, 400)[::160]
    power = np.abs(np.fft.rfft(frames * np.hanning(401)[:-1], axis=-1)) ** 2  # np.hanning(N+1)[:-1]: periodic
    mel = power[:-1] @ reference_filterbank(n_mels=n_mels).T
    log = np.log10(np.maximum(mel, 1e-10))
    return (np.maximum(log, log.max() - 8.0) + 4.0) / 4.0


def _speech_window(seconds=30.0) -> np.ndarray:
    from keras_speech2vid.io import decode_audio

    wav = decode_audio(DATA / "tmp.wav")
    x = np.zeros(int(seconds * 16000), np.float32)
    x[:min(len(wav), len(x))] = wav[:len(x)]
    return x


# --------------------------------------------------------------------------------------------
# Front end


def test_mel_filterbank_matches_independent_reference():
    ours = mel_filters(16000, 400, 80)
    assert ours.shape == (201, 80)
    np.testing.assert_allclose(ours.T, reference_filterbank(), rtol=1e-9, atol=1e-12)
    # anchors of the Slaney scale: 1 kHz is mel 15, 6.4 kHz is mel 15 + 27
    np.testing.assert_allclose(slaney_mel([1000.0, 6400.0]), [15.0, 42.0])
    # the lowest bands are 200/3 Hz apart: each has area 1 (height × bins × bin width / 2 ≈ 1)
    assert abs(ours[:, 20].sum() * 40.0 - 1.0) < 0.05


def test_mel_filterbank_matches_librosa_when_installed():
    librosa = pytest.importorskip("librosa")
    np.testing.assert_allclose(mel_filters().T, librosa.filters.mel(sr=16000, n_fft=400, n_mels=80), atol=1e-7)


def test_log_mel_matches_numpy_reference_on_speech():
    x = _speech_window()
    ours = np.asarray(WhisperLogMel()(x[None]))[0]
    ref = numpy_log_mel(x)
    assert ours.shape == ref.shape == (3000, 80)
    err = np.abs(ours - ref)
    assert err.max() < 1e-4, f"max abs diff {err.max():.2e} (mean {err.mean():.2e})"
    # the zero padding after the speech (12.7 s) is floored at max − 8 (80 dB): max − 2 once scaled
    np.testing.assert_allclose(ours[1400:], ours.max() - 2.0, atol=1e-5)


def test_log_mel_per_window_maximum_and_batch_independence():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 16000)).astype("float32") * np.array([[1.0], [1e-3]], "float32")
    out = np.asarray(WhisperLogMel()(x))
    assert out.shape == (2, 100, 80)
    for i in range(2):  # a quiet item is normalised on its own maximum, not the batch's
        np.testing.assert_allclose(out[i], numpy_log_mel(x[i]), atol=1e-4)
        np.testing.assert_allclose(out[i], np.asarray(WhisperLogMel()(x[i:i + 1]))[0], atol=1e-6)


def test_log_mel_under_jax_backend():
    out = run_under_jax("import numpy as np;"
                        "from keras_speech2vid.models.whisper import WhisperLogMel;"
                        "from tests.models.test_whisper import numpy_log_mel;"
                        "x = np.random.default_rng(1).normal(size=(1, 8000)).astype('float32');"
                        "print(np.abs(np.asarray(WhisperLogMel()(x))[0] - numpy_log_mel(x[0])).max())", timeout=120)
    assert float(out.split()[-1]) < 1e-4


# --------------------------------------------------------------------------------------------
# Encoder


def _encoder_params(c: WhisperConfig) -> int:
    """From the layer table: two convs, per block 2 LayerNorms, q/v/out with bias, k without, the MLP; ln_post."""
    convs = 3 * c.n_mels * c.d_model + c.d_model + 3 * c.d_model * c.d_model + c.d_model
    block = 2 * 2 * c.d_model + 4 * c.d_model * c.d_model + 3 * c.d_model + 2 * c.d_model * c.ffn + c.ffn + c.d_model
    return convs + c.layers * block + 2 * c.d_model


def test_tiny_en_shapes_names_and_parameter_count():
    model = build_whisper_encoder("tiny.en")
    assert tuple(model.input.shape) == (None, 3000, 80) and tuple(model.output.shape) == (None, 1500, 384)
    assert model.count_params() == _encoder_params(WHISPER_PRESETS["tiny.en"]) == 7_632_384
    assert all(layer.name.startswith("whisper_") for layer in model.layers[1:])
    assert {"whisper_conv1", "whisper_conv2", "whisper_block0_attn_q", "whisper_block3_mlp_fc2",
            "whisper_ln_post"} <= {layer.name for layer in model.layers}
    assert model.get_layer("whisper_block0_attn_k").use_bias is False


def test_tiny_config_outputs_and_frame_alignment():
    c = get_whisper_config("tiny")
    model = build_whisper_encoder(c)
    x = np.random.default_rng(0).normal(size=(3, c.n_frames, c.n_mels)).astype("float32")
    assert np.asarray(model(x)).shape == (3, c.n_ctx, c.d_model)
    # conv2 is padded on both sides (PyTorch), so output frame i sees log-mel frames 2i − 2 .. 2i + 2 only
    front = keras.Model(model.input, model.get_layer("whisper_conv2_gelu").output)
    y = x.copy()
    y[:, 9] += 1.0  # log-mel frame 9 feeds frames i = 4 and 5 (2i − 2 ≤ 9 ≤ 2i + 2)
    moved = np.abs(np.asarray(front(y)) - np.asarray(front(x))).max(axis=(0, 2)) > 1e-6
    assert np.flatnonzero(moved).tolist() == [4, 5]


def test_round_trips(tmp_path):
    assert_round_trips(build_whisper_encoder("tiny"), tmp_path)
    assert_round_trips(build_whisper_waveform_encoder("tiny"), tmp_path)  # WhisperLogMel in the graph


def test_config_presets_and_errors():
    c = get_whisper_config("tiny.en")
    assert (c.n_frames, c.n_samples, c.frame_rate) == (3000, 480000, 50.0)
    assert WhisperConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="multiple of heads"):
        WhisperConfig(d_model=384, heads=5)
    with pytest.raises(ValueError, match="Unknown Whisper preset"):
        get_whisper_config("base.en")


def test_exported_by_models_package():
    import keras_speech2vid.models as models

    assert (models.WhisperConfig, models.WhisperLogMel, models.build_whisper_encoder,
            models.build_whisper_waveform_encoder) == (WhisperConfig, WhisperLogMel, build_whisper_encoder,
                                                       build_whisper_waveform_encoder)
    assert {"WhisperConfig", "WhisperLogMel", "build_whisper_encoder", "build_whisper_waveform_encoder"} <= set(
        models.__all__)
