"""Pretrained Whisper tiny.en encoder features: load the shipped weights, and features of any length.

    encoder = load_whisper_encoder()              # the weights folder's "whisper_encoder" model
    feats = whisper_features(waveform_16k, encoder)   # (T, 384) float32 at 50 Hz, T = ceil(samples / 320)

Frame t of the features is centred on time 0.02·t s of the input (the encoder's frame i is centred on
its window's time 0.02·i).

Long audio: Whisper sees 30 s windows (1500 frames), and every output frame depends on the whole window.
Windows start every `hop_seconds` (default 20 s) and each keeps its middle (frames 250..1249 of the
window with the default: 5 s of context each side), except that the first keeps its start and the last
its end. The last window is padded with zeros, as Whisper pads a clip to 30 s. Audio is processed window
by window (an iterator of chunks is accepted), so memory is bounded by one window plus the output
(`iter_whisper_features` yields the output window by window too).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from pathlib import Path

import keras
import numpy as np

from keras_speech2vid import weights
from keras_speech2vid.errors import WeightsError
from keras_speech2vid.models.whisper import WhisperConfig, build_whisper_waveform_encoder, get_whisper_config


def load_whisper_encoder(weights_dir=None, name: str | None = None) -> keras.Model:
    """The log-mel → features encoder of a weights folder (default: `weights.default_weights_dir()`): its
    "whisper_encoder" model `name`, or its only one. Loaded by `weights.load_weights_dir` (checksummed, no pickle).

    Raises:
      WeightsError: no such folder or model, several and no `name`, or missing, altered or unreadable files.
    """
    folder = Path(weights_dir) if weights_dir is not None else weights.default_weights_dir()
    found = weights.load_weights_dir(folder, kinds=("whisper_encoder",))
    if not found:
        raise WeightsError(f"no Whisper encoder in {folder}; convert one with keras_speech2vid.whisper_convert.convert")
    if name is None:
        if len(found) > 1:
            raise WeightsError(f"{folder}: several Whisper encoders ({', '.join(sorted(found))}); pick one with name")
        name = next(iter(found))
    if name not in found:
        raise WeightsError(f"{folder}: no Whisper encoder named {name!r} (it has {', '.join(sorted(found))})")
    return found[name][1]


def _chunks(audio, size: int) -> Iterator[np.ndarray]:
    if isinstance(audio, np.ndarray):
        if audio.ndim != 1:
            raise ValueError(f"audio must be a mono waveform (samples,). Received: shape={audio.shape}")
        for i in range(0, len(audio), size):  # views, so the buffer below never holds the whole signal
            yield audio[i:i + size].astype(np.float32, copy=False)
        return
    for chunk in audio:
        chunk = np.asarray(chunk, dtype=np.float32)
        if chunk.ndim != 1:
            raise ValueError(f"audio chunks must be 1-D. Received: shape={chunk.shape}")
        yield chunk


def _waveform_model(model: keras.Model | None) -> tuple[keras.Model, WhisperConfig]:
    """A (B, n_samples) → (B, n_ctx, d) model: `model` itself, or a log-mel encoder wrapped with the front
    end; and a config whose front end and window size are the model's (Whisper's 16 kHz front end)."""
    model = model if model is not None else load_whisper_encoder()
    shape = model.inputs[0].shape
    if len(shape) == 2:  # already takes a waveform
        config = get_whisper_config("tiny.en").replace(n_ctx=model.outputs[0].shape[1])
        if shape[1] != config.n_samples:
            raise ValueError(f"model takes {shape[1]} samples, {config.n_samples} expected for "
                             f"{config.n_ctx} frames. Received: model={model.name}")
        return model, config
    config = get_whisper_config("tiny.en").replace(n_ctx=shape[1] // 2, n_mels=shape[2])
    return build_whisper_waveform_encoder(config, model), config


def iter_whisper_features(audio: np.ndarray | Iterable[np.ndarray], model: keras.Model | None = None,
                          hop_seconds: float = 20.0) -> Iterator[np.ndarray]:
    """Yield consecutive (t, d) float32 blocks of the features of 16 kHz `audio` (an array, or 1-D chunks
    of any sizes); together they are `whisper_features(audio)`. `model`: a log-mel encoder
    (`load_whisper_encoder`; None loads it, so pass it when calling again) or a waveform one
    (`build_whisper_waveform_encoder`)."""
    model, c = _waveform_model(model)
    window, ctx = c.n_samples, c.n_ctx
    step = 2 * c.hop_length  # samples per encoder frame (320)
    hop = int(round(hop_seconds * c.frame_rate))  # in frames
    if not 0 < hop <= ctx or (ctx - hop) % 2:
        raise ValueError(f"hop_seconds must give 1..{ctx} frames with an even overlap of the {ctx}-frame windows. "
                         f"Received: hop_seconds={hop_seconds!r} ({hop} frames)")
    margin = (ctx - hop) // 2
    buffer = np.zeros(0, np.float32)  # samples from the next window's start on
    start = 0  # index of the next window (its first sample is start·hop·step)
    seen = 0

    def run(samples: np.ndarray, first: int, last: int) -> np.ndarray:
        x = np.zeros((1, window), np.float32)
        x[0, :len(samples)] = samples[:window]  # zero padding, as Whisper's pad_or_trim
        return np.asarray(model.predict_on_batch(x))[0, first:last].astype(np.float32)

    for chunk in _chunks(audio, window):
        buffer = np.concatenate([buffer, chunk])
        seen += len(chunk)
        # a window is a middle one once the audio goes on past its end (else it is the last and keeps its end)
        while len(buffer) > window:
            yield run(buffer, 0 if start == 0 else margin, ctx - margin)
            buffer = buffer[hop * step:]
            start += 1
    total = math.ceil(seen / step)  # frames whose centre 0.02·t s lies inside the audio
    first = 0 if start == 0 else margin
    if start * hop + first < total:
        yield run(buffer, first, total - start * hop)


def whisper_features(audio: np.ndarray | Iterable[np.ndarray], model: keras.Model | None = None,
                     hop_seconds: float = 20.0) -> np.ndarray:
    """(T, d) float32 features at 50 Hz of 16 kHz `audio` of any length, T = ceil(samples / 320); see the
    module docstring for the windows."""
    blocks = list(iter_whisper_features(audio, model, hop_seconds))
    d = model.outputs[0].shape[-1] if model is not None else get_whisper_config("tiny.en").d_model
    return np.concatenate(blocks) if blocks else np.zeros((0, d), np.float32)


_ENCODERS: dict[Path, keras.Model] = {}


def shared_encoder_entry() -> tuple[Path, str, dict]:
    """(folder, name, manifest entry) of the Whisper encoder that generation and `prepare --whisper` use: the
    default weights folder's, else the bundled one's. Read from the manifests only (nothing is loaded)."""
    for folder in dict.fromkeys([weights.default_weights_dir(), weights.BUNDLED_WEIGHTS]):
        try:
            models = weights.read_manifest(folder).get("models") or {}
        except WeightsError:
            continue
        for name, entry in models.items():
            if entry.get("kind") == "whisper_encoder":
                return folder, name, entry
    raise WeightsError(f"no Whisper encoder in {weights.default_weights_dir()} or {weights.BUNDLED_WEIGHTS}; "
                       "convert one with keras_speech2vid.whisper_convert.convert")


def shared_encoder() -> keras.Model:
    """The waveform → features model of `shared_encoder_entry`'s encoder, built once per process (so its
    predict function is traced once)."""
    folder, name, _ = shared_encoder_entry()
    key = folder.resolve()
    if key not in _ENCODERS:
        encoder = load_whisper_encoder(folder, name)
        _ENCODERS[key] = build_whisper_waveform_encoder(_waveform_model(encoder)[1], encoder)
    return _ENCODERS[key]


def window_indices(frame_indices, fps: float, offset: float = 0.0, frames: int = 18,
                   rate: float = 50.0) -> np.ndarray:
    """(n, frames) feature indices of each video frame's window: `frames` consecutive 50 Hz feature frames
    centred on the middle of the video frame, (k + 0.5) / fps + offset s (offset > 0: the audio is later),
    as the paper's MFCC windows are (`audio.window_starts`, "centre")."""
    first = window_first(np.asarray(frame_indices, np.float64), fps, offset, frames, rate, np.floor).astype(np.int64)
    return first[:, None] + np.arange(frames)[None, :]


def window_first(frame_indices, fps, offset, frames: int = 18, rate: float = 50.0, floor=np.floor):
    """The first feature index of each frame's window, as floats; `floor` is NumPy's or TF's (tf.data)."""
    centre = (frame_indices + 0.5) / fps + offset
    return floor(centre * rate - (frames - 1) / 2.0 + 0.5)


def cut_windows(features: np.ndarray, frame_indices, fps: float, offset: float = 0.0, frames: int = 18) -> np.ndarray:
    """(n, frames, d) windows of (T, d) `features` for the given video frames (`window_indices`; indices outside
    the features take the nearest edge frame)."""
    idx = window_indices(frame_indices, fps, offset, frames)
    return features[np.clip(idx, 0, max(len(features) - 1, 0))]


def iter_whisper_windows(wave: np.ndarray, fps: float, num_frames: int, offset: float = 0.0, frames: int = 18,
                         encoder: keras.Model | None = None, chunk_frames: int = 256) -> Iterator[np.ndarray]:
    """The Whisper inputs of `num_frames` video frames, in chunks of (n, frames, 384) float32 windows
    (`cut_windows`).

    The features of the whole waveform are computed first (window by window, `whisper_features`): 384
    float32 per 20 ms, 46 MB for 10 minutes, so memory grows with the length, slowly."""
    features = whisper_features(wave, encoder if encoder is not None else shared_encoder())
    for k0 in range(0, num_frames, chunk_frames):
        yield cut_windows(features, np.arange(k0, min(num_frames, k0 + chunk_frames)), fps, offset, frames)
