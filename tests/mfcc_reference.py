"""An independent NumPy (float64) re-derivation of the original MFCC (spec §1.1), for tests only.

Written straight from the spec's table, deliberately without sharing code or constants with
`keras_speech2vid.audio`: explicit loops for the framing, filterbank and DCT, `numpy.fft` for the
spectrum. With ``silence="nan"`` it reproduces the original's arithmetic on silent frames
(ln 0 = −inf, so c1..c12 become NaN / ±inf); with ``silence="zero"`` it applies our NaN-free rule
(any frame with a zero filterbank energy becomes an all-zero column).

Layout: (12, frames), rows c1..c12, like `audio.mfcc`.
"""

from __future__ import annotations

import math

import numpy as np

SAMPLE_RATE = 16000
FRAME_LENGTH = 400
FRAME_STEP = 160
NFFT = 512
NUM_FILTERS = 40
LOW_HZ = 300.0
HIGH_HZ = 3700.0
LIFTER = 22
ALPHA = 0.97


def hz_to_mel(f):
    return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (np.exp(np.asarray(m, dtype=np.float64) / 1127.0) - 1.0)


def filterbank() -> np.ndarray:
    """(40, 257): triangles linear in Hz between mel-uniform edges, sampled at the bin frequencies."""
    edges = mel_to_hz(np.linspace(hz_to_mel(LOW_HZ), hz_to_mel(HIGH_HZ), NUM_FILTERS + 2))
    bins = np.linspace(0.0, SAMPLE_RATE / 2, NFFT // 2 + 1)
    h = np.zeros((NUM_FILTERS, bins.size))
    for m in range(NUM_FILTERS):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        for k, f in enumerate(bins):
            if lo <= f <= mid:
                h[m, k] = (f - lo) / (mid - lo)
            elif mid < f <= hi:
                h[m, k] = (hi - f) / (hi - mid)
    return h


def dct_matrix(num_ceps: int = 13) -> np.ndarray:
    """(13, 40): sqrt(2/M)·cos(π·k·(m−0.5)/M), m = 1..M."""
    d = np.zeros((num_ceps, NUM_FILTERS))
    for k in range(num_ceps):
        for m in range(1, NUM_FILTERS + 1):
            d[k, m - 1] = math.sqrt(2.0 / NUM_FILTERS) * math.cos(math.pi * k * (m - 0.5) / NUM_FILTERS)
    return d


def mfcc_reference(signal, silence: str = "zero", keep_c0: bool = False) -> np.ndarray:
    """MFCC of a 1-D 16 kHz signal → (12, F) float64 (or (13, F) with c0 when `keep_c0`)."""
    x = np.asarray(signal, dtype=np.float64).ravel()
    # pre-emphasis once over the whole signal, y[0] = x[0]
    y = np.empty_like(x)
    if x.size:
        y[0] = x[0]
        y[1:] = x[1:] - ALPHA * x[:-1]
    num_frames = (y.size - FRAME_LENGTH) // FRAME_STEP + 1 if y.size >= FRAME_LENGTH else 0
    n = np.arange(FRAME_LENGTH)
    window = 0.54 - 0.46 * np.cos(2.0 * np.pi * n / (FRAME_LENGTH - 1))
    h = filterbank()
    d = dct_matrix()
    lift = np.array([1.0 + (LIFTER / 2.0) * math.sin(math.pi * k / LIFTER) for k in range(13)])
    out = np.zeros((13, num_frames))
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(num_frames):
            frame = y[i * FRAME_STEP: i * FRAME_STEP + FRAME_LENGTH] * window
            mag = np.abs(np.fft.fft(frame, NFFT))[: NFFT // 2 + 1]
            fbe = h @ mag
            if silence == "zero" and np.any(fbe == 0.0):
                continue  # stays an all-zero column
            out[:, i] = lift * (d @ np.log(fbe))
    return out if keep_c0 else out[1:]
