"""Audio front end: waveform → MFCC exactly as the original demo (spec §1.1) → 12×35 windows.

Everything that touches samples is written with TensorFlow ops, so it runs eagerly, inside
`tf.function` (including ``jit_compile=True``/XLA) and inside a `tf.data` map; the frame/index
arithmetic also works on plain NumPy/Python integers.

MFCC (`mfcc`)
    Pre-emphasis 0.97 over the whole signal (y[0] = x[0]); frames of 400 samples every 160
    (F = floor((L − 400)/160) + 1, the last partial frame dropped); symmetric Hamming window;
    magnitude of the 512-point FFT; 40 triangles, linear in Hz between edges spaced uniformly on
    the HTK mel scale 1127·ln(1 + f/700) from 300 to 3700 Hz, evaluated at the bin frequencies
    k·8000/256 (peak 1, no area normalisation, no floor); natural log; the spec's DCT
    sqrt(2/M)·cos(π·k·(m − 0.5)/M); HTK lifter 1 + 11·sin(π·k/22); keep c1..c12.

    Layout: ``(..., 12, frames)`` float32, rows c1..c12, columns time: the network's (12, 35, 1)
    input is a column slice of it plus a channel axis. Any leading batch dims are allowed.

    Scale: the original multiplied its [-1, 1) samples by 2^15 before the MFCC. We do not. A gain
    g adds ln(g) to every log filterbank energy, and the DCT rows k ≥ 1 sum to zero, so only c0
    (which is dropped) changes; c1..c12 are the same up to float rounding. Feed floats in [-1, 1)
    (what `io.decode_audio` returns); int16-scaled input gives the same c1..c12 too.

Silence (spec §1.4)
    The original takes ln(0) on a silent frame and feeds NaN columns to the network, where
    MatConvNet's ReLU (max(x, 0), NaN → 0) zeroes relu1_audio in the ±1-column neighbourhood of
    every NaN column. Our NaN-free equivalent: any frame whose 40 filterbank energies contain a zero
    (exactly the frames that are non-finite in the original) is written as an exact all-zero column
    of c1..c12, and the audio encoder's `SilenceMask` layer detects all-zero columns and zeroes
    relu1_audio in their ±1 neighbourhood. No NaN or Inf ever appears. (A real frame of speech
    never gives an exactly-zero column.)

Windows and timing (spec §1.2–1.3)
    The waveform gets 1 s of exact zeros on each side (`pad_waveform`) and the MFCC is taken on the
    padded signal (`padded_mfcc`). MFCC frame j covers padded samples [160·j, 160·j + 400), i.e.
    unpadded time 0.01·j − 1 s. A window is the 35 MFCC frames starting at index s.

    Our timeline: video frame k (0-based) starts at time k/fps of the *unpadded* audio; ``offset``
    (seconds, positive = the audio is later than the video, e.g. a clip's measured av_offset) is
    added to that time. With r = sample_rate/frame_step = 100 MFCC frames per second, the window
    start is s = floor(x + 0.5) (round half up, evaluated in float64) with

    * ``"centre"`` (default, spec H2; `AudioConfig.alignment`): the window's middle frame (index
      s + 17) is centred on the video frame's centre:
      x = ((k + 0.5)/fps + offset + 1)·r − 200/160 − 17, which at 25 fps is s = 4k + 84
      (the middle frame's centre falls 2.5 ms after the frame centre).
    * ``"start"`` (spec H1): the window starts at the video frame's start:
      x = (k/fps + offset + 1)·r, at 25 fps s = 4k + 100.
    * ``"demo"``: run_demo.m exactly: frame k uses padded MFCC frames 4k .. 4k + 34, i.e.
      x = (k/fps + offset)·r on the padded timeline, at 25 fps s = 4k. Demo frames live on the
      padded timeline: mux them with the padded audio, as run_demo.m does, to reproduce it.

    Number of video frames for n samples (`num_video_frames`):

    * centre/start: N = max(1, floor(n·fps/sample_rate + 0.5)), so the video lasts as long as the
      audio to within half a frame; a 0.1 s clip gives 3 frames at 25 fps, an empty one 1 frame.
    * demo: N = floor((F − 35)·fps/r) + 1 with F = floor((n + 32000 − 400)/160) + 1 padded MFCC
      frames; at 25 fps this is the spec's floor((F − 35)/4) + 1 (358 for tmp.wav).

    Other frame rates (30, 29.97 = 30000/1001, ...) use the same formulas; only the rounding of s
    (round half up) and of N (round half up) is involved, and both are computed identically in
    NumPy and TF. Window indices outside the padded MFCC (large offsets) read as all-zero columns,
    which is exactly what a longer zero padding would produce, so every frame gets a full 35-wide
    window and no index is ever clamped onto real speech.

Public functions
    mfcc, pad_waveform, padded_mfcc, num_mfcc_frames, num_video_frames, window_starts,
    gather_windows, windows, audio_windows, mel_filterbank, dct_lifter_matrix.
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import tensorflow as tf

from keras_speech2vid.config import AudioConfig

ALIGNMENTS = ("centre", "start", "demo")
_DEFAULT = AudioConfig()


# --------------------------------------------------------------------------------------------
# Constant matrices (float64 NumPy, cast once when used)


def _config(config: AudioConfig | None) -> AudioConfig:
    if config is None:
        return _DEFAULT
    if not isinstance(config, AudioConfig):
        raise ValueError(f"config must be an AudioConfig. Received: config={config!r}")
    return config


def _hz_to_mel(hz):
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


def _mel_to_hz(mel):
    return 700.0 * np.expm1(np.asarray(mel, dtype=np.float64) / 1127.0)


def mel_filterbank(config: AudioConfig | None = None) -> np.ndarray:
    """(fft_length/2 + 1, num_filters) = (257, 40) float64 triangular filterbank of spec §1.1.

    Edges: num_filters + 2 frequencies uniform on the mel scale between lower_hz and upper_hz.
    Filter m rises linearly in Hz from edge m to edge m+1 and falls to edge m+2, sampled at the
    FFT bin frequencies k·sample_rate/fft_length; peak 1, no area normalisation.
    """
    c = _config(config)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(c.lower_hz), _hz_to_mel(c.upper_hz), c.num_filters + 2))
    freqs = np.arange(c.fft_length // 2 + 1, dtype=np.float64) * c.sample_rate / c.fft_length
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]  # (M, 1) each
    rising = (freqs - lo) / (mid - lo)
    falling = (hi - freqs) / (hi - mid)
    bank = np.clip(np.minimum(rising, falling), 0.0, None)  # (M, K)
    return bank.T


def dct_lifter_matrix(config: AudioConfig | None = None) -> np.ndarray:
    """(num_filters, num_coeffs) = (40, 12) float64: log-energies → liftered c1..c12.

    Column k−1 holds sqrt(2/M)·cos(π·k·(m − 0.5)/M)·(1 + (L/2)·sin(π·k/L)), m = 1..M, k = 1..12.
    """
    c = _config(config)
    m = np.arange(1, c.num_filters + 1, dtype=np.float64)[:, None]
    k = np.arange(1, c.num_coeffs + 1, dtype=np.float64)[None, :]
    dct = math.sqrt(2.0 / c.num_filters) * np.cos(np.pi * k * (m - 0.5) / c.num_filters)
    lifter = 1.0 + (c.lifter / 2.0) * np.sin(np.pi * k / c.lifter)
    return dct * lifter


def _hamming(config: AudioConfig) -> np.ndarray:
    n = np.arange(config.frame_length, dtype=np.float64)
    return 0.54 - 0.46 * np.cos(2.0 * np.pi * n / (config.frame_length - 1))


# --------------------------------------------------------------------------------------------
# MFCC (TF ops)


def _pad_last_axis(x: tf.Tensor, before: int, after: int) -> tf.Tensor:
    """Zero-pad the last axis; works for any (even unknown) rank."""
    paddings = tf.concat([tf.zeros([tf.rank(x) - 1, 2], tf.int32), [[before, after]]], axis=0)
    return tf.pad(x, paddings)


def mfcc(waveform, config: AudioConfig | None = None) -> tf.Tensor:
    """MFCC c1..c12 of a 16 kHz waveform, exactly spec §1.1, silent frames as zero columns.

    Args:
        waveform: (..., samples) float (any leading batch dims), values nominally in [-1, 1).
        config: an `AudioConfig`; the default is the original demo's front end.

    Returns:
        (..., 12, frames) float32, frames = floor((samples − 400)/160) + 1 (0 if shorter than 400).
    """
    c = _config(config)
    x = tf.cast(tf.convert_to_tensor(waveform), tf.float32)
    if x.shape.rank == 0:
        raise ValueError(f"waveform must have a samples axis. Received: shape={x.shape}")
    # pre-emphasis over the whole signal: y[0] = x[0], y[n] = x[n] − a·x[n−1]
    y = tf.concat([x[..., :1], x[..., 1:] - c.preemphasis * x[..., :-1]], axis=-1)
    frames = tf.signal.frame(y, c.frame_length, c.frame_step, pad_end=False, axis=-1)  # (..., F, 400)
    frames = frames * tf.constant(_hamming(c), tf.float32)
    # zero-pad each frame to the FFT size explicitly (rfft's own padding fails on 0 frames)
    frames = _pad_last_axis(frames, 0, c.fft_length - c.frame_length)
    magnitude = tf.abs(tf.signal.rfft(frames, fft_length=[c.fft_length]))  # (..., F, 257)
    energies = tf.linalg.matmul(magnitude, tf.constant(mel_filterbank(c), tf.float32))  # (..., F, 40)
    # a zero energy is ln 0 = −inf in the original (a NaN column): write the frame as zeros instead
    silent = tf.reduce_any(energies <= 0.0, axis=-1, keepdims=True)  # (..., F, 1)
    log_energies = tf.math.log(tf.where(energies > 0.0, energies, tf.ones_like(energies)))
    ceps = tf.linalg.matmul(log_energies, tf.constant(dct_lifter_matrix(c), tf.float32))  # (..., F, 12)
    ceps = tf.where(silent, tf.zeros_like(ceps), ceps)
    return tf.linalg.matrix_transpose(ceps)  # (..., 12, F)


def pad_waveform(waveform, config: AudioConfig | None = None) -> tf.Tensor:
    """Add `pad_seconds` (1 s) of exact zeros before and after the last axis (spec §1.2)."""
    c = _config(config)
    x = tf.cast(tf.convert_to_tensor(waveform), tf.float32)
    pad = _pad_samples(c)
    return _pad_last_axis(x, pad, pad)


def padded_mfcc(waveform, config: AudioConfig | None = None) -> tf.Tensor:
    """`mfcc` of the zero-padded waveform: (..., 12, F) with F = floor((n + 32000 − 400)/160) + 1."""
    return mfcc(pad_waveform(waveform, config), config)


# --------------------------------------------------------------------------------------------
# Frame arithmetic: NumPy/Python integers or TF tensors alike


def _check_alignment(alignment, config: AudioConfig) -> str:
    alignment = config.alignment if alignment is None else alignment
    if alignment not in ALIGNMENTS:
        raise ValueError(f"alignment must be one of {ALIGNMENTS}. Received: alignment={alignment!r}")
    return alignment


def _check_fps(fps):
    if not tf.is_tensor(fps) and not float(fps) > 0:
        raise ValueError(f"fps must be positive. Received: fps={fps!r}")


def _uses_tf(*values) -> bool:
    return any(tf.is_tensor(v) for v in values)


def _f64(value, use_tf: bool):
    if use_tf:
        return tf.cast(value, tf.float64)
    return np.asarray(value, dtype=np.float64)


def _int_out(value, like, use_tf: bool):
    """Cast a float64 result of floor() back to the integer type of `like` (int64 for NumPy)."""
    if use_tf:
        dtype = like.dtype if tf.is_tensor(like) and like.dtype.is_integer else tf.int64
        return tf.cast(value, dtype)
    out = value.astype(np.int64)
    return out if out.ndim else int(out)


def _pad_samples(config: AudioConfig) -> int:
    return int(round(config.pad_seconds * config.sample_rate))


def num_mfcc_frames(num_samples, padded: bool = True, config: AudioConfig | None = None):
    """MFCC frame count F = floor((n [+ 2·pad] − 400)/160) + 1 (0 when too short).

    1266 for tmp.wav unpadded, 1466 padded.
    """
    c = _config(config)
    use_tf = _uses_tf(num_samples)
    extra = 2 * _pad_samples(c) if padded else 0
    if use_tf:
        n = tf.cast(num_samples, tf.int64) + extra - c.frame_length
        frames = tf.where(n >= 0, n // c.frame_step + 1, tf.zeros_like(n))
        return tf.cast(frames, num_samples.dtype if num_samples.dtype.is_integer else tf.int64)
    n = np.asarray(num_samples, dtype=np.int64) + extra - c.frame_length
    frames = np.where(n >= 0, n // c.frame_step + 1, 0)
    return frames if frames.ndim else int(frames)


def num_video_frames(num_samples, fps=25.0, alignment: str | None = None, config: AudioConfig | None = None):
    """Number of video frames N for a waveform of `num_samples` (unpadded) samples.

    centre/start: N = max(1, floor(n·fps/sample_rate + 0.5)).
    demo: N = max(1, floor((F − 35)·fps/100) + 1), F the padded MFCC frame count (358 for tmp.wav).
    Works on Python/NumPy integers (returns int / int64 array) and TF tensors (same integer dtype).
    """
    c = _config(config)
    alignment = _check_alignment(alignment, c)
    _check_fps(fps)
    use_tf = _uses_tf(num_samples, fps)
    floor = tf.math.floor if use_tf else np.floor
    maximum = tf.maximum if use_tf else np.maximum
    fps64 = _f64(fps, use_tf)
    if alignment == "demo":
        frames = _f64(num_mfcc_frames(num_samples, padded=True, config=c), use_tf)
        rate = c.sample_rate / c.frame_step
        count = floor((frames - c.window_frames) * fps64 / rate) + 1.0
    else:
        count = floor(_f64(num_samples, use_tf) * fps64 / c.sample_rate + 0.5)
    return _int_out(maximum(count, 1.0), num_samples, use_tf)


def window_starts(frame_indices, fps=25.0, alignment: str | None = None, offset=0.0,
                  config: AudioConfig | None = None):
    """Padded-MFCC index of the first of the 35 frames for each video frame index (see module doc).

    At 25 fps: centre 4k + 84, start 4k + 100, demo 4k (plus round(100·offset) for an offset in
    seconds, positive = audio later). Inputs may be Python/NumPy integers or TF tensors (`fps` and
    `offset` may be tensors too); the result has the integer type of `frame_indices` (int64 for
    NumPy). Indices may fall outside [0, F − 35] for large offsets: `gather_windows` reads those
    columns as silence.
    """
    c = _config(config)
    alignment = _check_alignment(alignment, c)
    _check_fps(fps)
    use_tf = _uses_tf(frame_indices, fps, offset)
    k = _f64(frame_indices, use_tf)
    fps64 = _f64(fps, use_tf)
    offset64 = _f64(offset, use_tf)
    rate = c.sample_rate / c.frame_step  # MFCC frames per second
    pad_s = _pad_samples(c) / c.sample_rate
    if alignment == "centre":
        half_frame = c.frame_length / (2.0 * c.frame_step)  # an MFCC frame's centre, in hops
        x = ((k + 0.5) / fps64 + offset64 + pad_s) * rate - half_frame - (c.window_frames - 1) / 2.0
    elif alignment == "start":
        x = (k / fps64 + offset64 + pad_s) * rate
    else:  # demo: the padded timeline, as run_demo.m
        x = (k / fps64 + offset64) * rate
    floor = tf.math.floor if use_tf else np.floor
    return _int_out(floor(x + 0.5), frame_indices, use_tf)


# --------------------------------------------------------------------------------------------
# Windows (TF ops)


def gather_windows(mfcc_frames, frame_indices, fps=25.0, alignment: str | None = None, offset=0.0,
                   config: AudioConfig | None = None) -> tf.Tensor:
    """Cut the network's input windows for given video frames out of a whole-clip padded MFCC.

    Args:
        mfcc_frames: (12, F) padded MFCC of one clip (`padded_mfcc`), or (..., 12, F) for a batch
            of clips of equal length that share the frame indices.
        frame_indices: (n,) integer video frame indices (tensor or array).
        fps, alignment, offset, config: as `window_starts` (scalars; may be tensors).

    Returns:
        (n, 12, 35, 1) float32, or (..., n, 12, 35, 1). MFCC columns outside [0, F) read as zero
        (silence), exactly as a longer zero padding would give.
    """
    c = _config(config)
    m = tf.convert_to_tensor(mfcc_frames, tf.float32)
    rank = m.shape.rank
    if rank is None or rank < 2:
        raise ValueError(f"mfcc_frames must be (..., coeffs, frames). Received: shape={m.shape}")
    k = tf.convert_to_tensor(frame_indices)
    if not k.dtype.is_integer:
        raise ValueError(f"frame_indices must be integers. Received: dtype={k.dtype.name}")
    k = tf.reshape(tf.cast(k, tf.int64), [-1])
    starts = window_starts(k, fps, alignment, offset, c)  # (n,)
    num_frames = tf.shape(m, out_type=tf.int64)[-1]
    cols = starts[:, None] + tf.range(c.window_frames, dtype=tf.int64)[None, :]  # (n, 35)
    # out-of-range columns point at one appended zero column
    cols = tf.where((cols >= 0) & (cols < num_frames), cols, num_frames)
    m = tf.concat([m, tf.zeros_like(m[..., :1])], axis=-1)  # (..., 12, F + 1)
    w = tf.gather(m, cols, axis=rank - 1)  # (..., 12, n, 35)
    w = tf.transpose(w, list(range(rank - 2)) + [rank - 1, rank - 2, rank])  # (..., n, 12, 35)
    return w[..., None]


def windows(mfcc_frames, fps=25.0, *, num_samples=None, num_frames=None, alignment: str | None = None,
            offset=0.0, config: AudioConfig | None = None) -> tf.Tensor:
    """All the video frames' windows of a padded MFCC (..., 12, F) → (..., N, 12, 35, 1) float32.

    N is `num_frames` if given, else `num_video_frames(num_samples, ...)`. Without either, the
    sample count is estimated from F as 160·(F − 1) + 400 − 32000 (the shortest signal with F
    frames), which can make N one less than with the exact count; pass `num_samples` when known.
    """
    c = _config(config)
    alignment = _check_alignment(alignment, c)
    m = tf.convert_to_tensor(mfcc_frames, tf.float32)
    if num_frames is None:
        if num_samples is None:
            f = tf.shape(m, out_type=tf.int64)[-1]
            num_samples = tf.maximum(c.frame_step * (f - 1) + c.frame_length - 2 * _pad_samples(c), 0)
        num_frames = num_video_frames(num_samples, fps, alignment, c)
    indices = tf.range(tf.cast(num_frames, tf.int64), dtype=tf.int64)
    return gather_windows(m, indices, fps, alignment, offset, c)


def audio_windows(waveform, fps=25.0, alignment: str | None = None, offset=0.0,
                  config: AudioConfig | None = None) -> tf.Tensor:
    """Waveform (samples,) at 16 kHz → the network inputs of all N video frames, (N, 12, 35, 1).

    Pads 1 s of zeros each side, takes the MFCC, and cuts N = `num_video_frames` windows placed
    by `window_starts`. A batch of equal-length clips (..., samples) gives (..., N, 12, 35, 1).
    All TF ops (usable in `tf.function`, with or without XLA, and in `tf.data`).
    """
    c = _config(config)
    x = tf.cast(tf.convert_to_tensor(waveform), tf.float32)
    if x.shape.rank is None or x.shape.rank < 1:
        raise ValueError(f"waveform must be (..., samples). Received: shape={x.shape}")
    num_samples = tf.shape(x, out_type=tf.int64)[-1]
    return windows(padded_mfcc(x, c), fps, num_samples=num_samples, alignment=alignment, offset=offset, config=c)


# --------------------------------------------------------------------------------------------
# Windows in chunks (NumPy out; bounded memory for long audio)

CHUNK_FRAMES = 1000  # video frames of MFCC windows computed at a time (40 s at 25 fps)


def _padded_segment(wave: np.ndarray, start: int, stop: int, pad: int) -> np.ndarray:
    """Samples [start, stop) of the waveform with `pad` zeros on each side (without building it)."""
    out = np.zeros(max(0, stop - start), dtype=np.float32)
    lo, hi = max(start - pad, 0), min(stop - pad, len(wave))
    if hi > lo:
        out[lo + pad - start:hi + pad - start] = wave[lo:hi]
    return out


def iter_audio_windows(wave: np.ndarray, fps: float = 25.0, alignment: str | None = None, offset: float = 0.0,
                       config: AudioConfig | None = None, chunk_frames: int = CHUNK_FRAMES,
                       num_frames: int | None = None) -> Iterator[np.ndarray]:
    """The network inputs of every video frame, in chunks: yields (n, 12, 35, 1) float32 arrays.

    The same windows as `keras_speech2vid.audio.audio_windows(wave, fps, alignment, offset)` (to float
    rounding), but only ``chunk_frames`` frames' worth of MFCC exists at a time. Each chunk takes the
    padded MFCC columns its windows need from a slice of the padded waveform that starts one MFCC hop
    early (so the pre-emphasis of its first kept frame sees the true previous sample); columns outside
    the padded MFCC are zeros, as `gather_windows` reads them.

    Args:
      num_frames: how many frames to produce (default: `audio.num_video_frames` of the waveform).
    """
    c = config or AudioConfig()
    if chunk_frames < 1:
        raise ValueError(f"chunk_frames must be >= 1. Received: chunk_frames={chunk_frames}")
    n = len(wave)
    total = num_video_frames(n, fps, alignment, c) if num_frames is None else int(num_frames)
    pad = int(round(c.pad_seconds * c.sample_rate))
    num_mfcc = num_mfcc_frames(n, padded=True, config=c)
    width = c.window_frames
    for k0 in range(0, total, chunk_frames):
        k1 = min(total, k0 + chunk_frames)
        starts = np.asarray(window_starts(np.arange(k0, k1), fps, alignment, offset, c), dtype=np.int64)
        j0, j1 = int(starts.min()), int(starts.max()) + width
        cols = np.zeros((c.num_coeffs, j1 - j0), dtype=np.float32)
        a, b = max(j0, 0), min(j1, num_mfcc)
        if b > a:
            lead = 1 if a > 0 else 0
            seg = _padded_segment(wave, c.frame_step * (a - lead), c.frame_step * (b - 1) + c.frame_length, pad)
            cols[:, a - j0:b - j0] = mfcc(seg, c).numpy()[:, lead:]
        index = (starts - j0)[:, None] + np.arange(width)[None, :]  # (n, 35)
        yield np.ascontiguousarray(np.transpose(cols[:, index], (1, 0, 2))[..., None])
