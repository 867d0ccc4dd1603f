"""Whisper's audio encoder (Radford et al., 2022) as a Keras functional model, with its log-mel front end.

The pretrained speech features of issue 19: a 30 s window of 16 kHz audio → (1500, d_model) at 50 Hz.
The weights are OpenAI's tiny.en (MIT), converted by `keras_speech2vid.whisper_convert`; loading and
long-audio windowing are in `keras_speech2vid.whisper`.

* `WhisperLogMel` (keras.ops only, so TF and JAX alike): periodic Hann window of 400 samples, hop 160,
  centred frames with reflect padding (torch.stft's convention), power spectrum, 80 Slaney mel bands
  (`mel_filters`, librosa's default filterbank), the last frame dropped, log10(max(x, 1e-10)), floor at
  the window's maximum − 8, then (x + 4)/4. (B, 480000) → (B, 3000, 80). The maximum is taken per
  window (Whisper computes one clip at a time, so its global maximum is the same thing).
* `build_whisper_encoder`: conv1 (k3, pad 1) → GELU → conv2 (k3, stride 2, pad 1) → GELU → + sinusoids
  → pre-LN transformer blocks (the key projection has no bias, as Whisper) → final LayerNorm.
  (B, 3000, 80) → (B, 1500, 384). Output frame i is centred on input time 0.02·i s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from keras_speech2vid.config import _Serialisable, preset


@dataclass(frozen=True)
class WhisperConfig(_Serialisable):
    """Whisper encoder and front-end hyper-parameters (defaults: tiny.en)."""

    name: str = "tiny.en"
    n_mels: int = 80
    d_model: int = 384
    layers: int = 4
    heads: int = 6
    n_ctx: int = 1500  # encoder frames per window (50 Hz × 30 s)
    ffn: int = 1536
    sample_rate: int = 16000
    n_fft: int = 400
    hop_length: int = 160
    ln_epsilon: float = 1e-5

    def __post_init__(self):
        if self.d_model % self.heads:
            raise ValueError(f"d_model must be a multiple of heads. Received: d_model={self.d_model}, "
                             f"heads={self.heads}")
        if self.d_model % 2 or self.d_model < 4:
            raise ValueError(f"d_model must be even and >= 4 (sin and cos halves). Received: d_model={self.d_model}")
        if min(self.n_mels, self.layers, self.n_ctx, self.ffn) < 1:
            raise ValueError(f"n_mels, layers, n_ctx and ffn must be positive. Received: {self}")
        if self.n_mels > self.n_fft // 2 + 1:
            raise ValueError(f"n_mels must be <= n_fft // 2 + 1. Received: n_mels={self.n_mels}, n_fft={self.n_fft}")

    @property
    def n_frames(self) -> int:
        """Log-mel frames per window (the stride-2 conv halves them)."""
        return 2 * self.n_ctx

    @property
    def n_samples(self) -> int:
        """Waveform samples per window (30 s for the real models)."""
        return self.n_frames * self.hop_length

    @property
    def frame_rate(self) -> float:
        """Encoder frames per second (50)."""
        return self.sample_rate / (2 * self.hop_length)


WHISPER_PRESETS: dict[str, WhisperConfig] = {
    "tiny.en": WhisperConfig(),
    # same front end, a 0.16 s window and a narrow encoder: for fast tests only
    "tiny": WhisperConfig(name="tiny", d_model=16, layers=2, heads=2, n_ctx=8, ffn=32),
}


def get_whisper_config(config: "WhisperConfig | str") -> WhisperConfig:
    """Return `config` itself, or the preset it names."""
    return preset(config, WhisperConfig, WHISPER_PRESETS, "Whisper preset")


# --------------------------------------------------------------------------------------------
# Constants (float64 numpy, cast once)


def _hz_to_slaney_mel(hz):
    """Slaney's mel scale: linear (200/3 Hz per mel) below 1 kHz, logarithmic (27 mels per ×6.4) above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3.0)
    log = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log, linear)


def _slaney_mel_to_hz(mel):
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), mel * (200.0 / 3.0))


def mel_filters(sample_rate: int = 16000, n_fft: int = 400, n_mels: int = 80) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels) float64 filterbank: librosa.filters.mel's default (Slaney scale and area
    normalisation, 0 Hz to Nyquist), which is what Whisper's mel_filters.npz holds.

    Band m is a triangle from edge m to edge m + 2 (n_mels + 2 edges uniform in mel), peak at edge m + 1,
    scaled by 2 / (width in Hz) so that every band has the same area.
    """
    edges = _slaney_mel_to_hz(np.linspace(0.0, _hz_to_slaney_mel(sample_rate / 2.0), n_mels + 2))
    freqs = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]  # (M, 1) each
    rising = (freqs - lo) / (mid - lo)
    falling = (hi - freqs) / (hi - mid)
    bank = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (hi - lo))
    return bank.T


def hann_window(n: int) -> np.ndarray:
    """Periodic Hann window (torch.hann_window's default, which Whisper uses)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def sinusoids(length: int, channels: int) -> np.ndarray:
    """(length, channels) float64 positional embedding of Whisper's encoder: sin then cos halves, with
    timescales geometric from 1 to 10000 over channels // 2 steps."""
    half = channels // 2
    inv_timescales = np.exp(-math.log(10000.0) / (half - 1) * np.arange(half))
    t = np.arange(length)[:, None] * inv_timescales[None, :]
    return np.concatenate([np.sin(t), np.cos(t)], axis=1)


# --------------------------------------------------------------------------------------------
# Layers


@keras.saving.register_keras_serializable(package="keras_speech2vid")
class WhisperLogMel(keras.layers.Layer):
    """(B, samples) 16 kHz waveform → (B, samples // hop_length, n_mels) Whisper log-mel features."""

    def __init__(self, n_mels: int = 80, sample_rate: int = 16000, n_fft: int = 400, hop_length: int = 160,
                 **kwargs):
        super().__init__(**kwargs)
        self.n_mels, self.sample_rate, self.n_fft, self.hop_length = n_mels, sample_rate, n_fft, hop_length
        # numpy constants, not weights: they are fixed by the hyper-parameters
        self._filters = mel_filters(sample_rate, n_fft, n_mels).astype(np.float32)
        self._window = hann_window(n_fft).astype(np.float32)

    def call(self, waveform):
        x = ops.cast(waveform, "float32")
        real, imag = ops.stft(x, self.n_fft, self.hop_length, self.n_fft, window=self._window, center=True)
        power = (real * real + imag * imag)[:, :-1, :]  # (B, frames, n_fft/2 + 1); Whisper drops the last frame
        mel = ops.matmul(power, ops.convert_to_tensor(self._filters))  # (B, frames, n_mels)
        log = ops.log(ops.maximum(mel, 1e-10)) * (1.0 / math.log(10.0))
        log = ops.maximum(log, ops.max(log, axis=(1, 2), keepdims=True) - 8.0)  # 80 dB range per window
        return (log + 4.0) / 4.0

    def compute_output_shape(self, input_shape):
        samples = input_shape[1]
        return (input_shape[0], None if samples is None else samples // self.hop_length, self.n_mels)

    def get_config(self):
        return {**super().get_config(), "n_mels": self.n_mels, "sample_rate": self.sample_rate,
                "n_fft": self.n_fft, "hop_length": self.hop_length}


@keras.saving.register_keras_serializable(package="keras_speech2vid")
class SinusoidalPositions(keras.layers.Layer):
    """Adds Whisper's fixed sinusoidal embedding to (B, length, channels): a constant, not a weight."""

    def __init__(self, length: int, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.length, self.channels = length, channels
        self._table = sinusoids(length, channels).astype(np.float32)

    def call(self, x):
        return x + ops.convert_to_tensor(self._table)[None]

    def get_config(self):
        return {**super().get_config(), "length": self.length, "channels": self.channels}


@keras.saving.register_keras_serializable(package="keras_speech2vid")
class HeadsAttention(keras.layers.Layer):
    """Scaled dot-product attention over `heads` heads of already-projected [q, k, v], each (B, T, d)."""

    def __init__(self, heads: int, **kwargs):
        super().__init__(**kwargs)
        self.heads = heads

    def call(self, inputs):
        q, k, v = inputs
        batch, steps, width = ops.shape(q)[0], ops.shape(q)[1], q.shape[-1]
        split = (batch, steps, self.heads, width // self.heads)
        # softmax(q·kᵀ/√d_head) v, which is Whisper's d_head^-1/4 scaling of both q and k
        out = ops.dot_product_attention(ops.reshape(q, split), ops.reshape(k, split), ops.reshape(v, split))
        return ops.reshape(out, (batch, steps, width))

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {**super().get_config(), "heads": self.heads}


# --------------------------------------------------------------------------------------------
# Builders


def _block(x, i: int, c: WhisperConfig):
    p = f"whisper_block{i}"
    h = keras.layers.LayerNormalization(epsilon=c.ln_epsilon, name=f"{p}_attn_ln")(x)
    q = keras.layers.Dense(c.d_model, name=f"{p}_attn_q")(h)
    k = keras.layers.Dense(c.d_model, use_bias=False, name=f"{p}_attn_k")(h)  # softmax ignores a key bias
    v = keras.layers.Dense(c.d_model, name=f"{p}_attn_v")(h)
    h = HeadsAttention(c.heads, name=f"{p}_attn")([q, k, v])
    h = keras.layers.Dense(c.d_model, name=f"{p}_attn_out")(h)
    x = keras.layers.Add(name=f"{p}_attn_add")([x, h])
    h = keras.layers.LayerNormalization(epsilon=c.ln_epsilon, name=f"{p}_mlp_ln")(x)
    h = keras.layers.Dense(c.ffn, name=f"{p}_mlp_fc1")(h)
    h = keras.layers.Activation("gelu", name=f"{p}_mlp_gelu")(h)  # exact (erf) GELU, as Whisper
    h = keras.layers.Dense(c.d_model, name=f"{p}_mlp_fc2")(h)
    return keras.layers.Add(name=f"{p}_mlp_add")([x, h])


def build_whisper_encoder(config: WhisperConfig | str = "tiny.en") -> keras.Model:
    """(B, n_frames, n_mels) log-mel (`WhisperLogMel`) → (B, n_ctx, d_model): (B, 3000, 80) → (B, 1500, 384)."""
    c = get_whisper_config(config)

    # === layers and functional model ===
    log_mel = keras.Input((c.n_frames, c.n_mels), name="log_mel")
    # explicit symmetric padding: Keras "same" pads a stride-2 conv on the right only, PyTorch on both sides
    x = keras.layers.ZeroPadding1D(1, name="whisper_conv1_pad")(log_mel)
    x = keras.layers.Conv1D(c.d_model, 3, name="whisper_conv1")(x)
    x = keras.layers.Activation("gelu", name="whisper_conv1_gelu")(x)  # (B, 3000, 384)
    x = keras.layers.ZeroPadding1D(1, name="whisper_conv2_pad")(x)
    x = keras.layers.Conv1D(c.d_model, 3, strides=2, name="whisper_conv2")(x)
    x = keras.layers.Activation("gelu", name="whisper_conv2_gelu")(x)  # (B, 1500, 384)
    x = SinusoidalPositions(c.n_ctx, c.d_model, name="whisper_positions")(x)
    for i in range(c.layers):
        x = _block(x, i, c)
    x = keras.layers.LayerNormalization(epsilon=c.ln_epsilon, name="whisper_ln_post")(x)  # (B, 1500, 384)
    return keras.Model(log_mel, x, name="whisper_encoder")


def build_whisper_waveform_encoder(config: WhisperConfig | str = "tiny.en",
                                   encoder: keras.Model | None = None) -> keras.Model:
    """(B, n_samples) waveform → log-mel in the graph → (B, n_ctx, d_model); wraps `encoder` if given
    (its weights are shared), else a new `build_whisper_encoder(config)`."""
    c = get_whisper_config(config)
    encoder = encoder if encoder is not None else build_whisper_encoder(c)
    waveform = keras.Input((c.n_samples,), name="waveform")
    log_mel = WhisperLogMel(c.n_mels, c.sample_rate, c.n_fft, c.hop_length, name="whisper_log_mel")(waveform)
    return keras.Model(waveform, encoder(log_mel), name="whisper_waveform_encoder")
