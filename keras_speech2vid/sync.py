"""Audio-visual sync with our SyncNet (`models.syncnet`): AV offset, confidence, LSE-D and LSE-C.

For a face track (aligned faces at frame indices k) and its clip's padded MFCC:

* a video window is the 5 frames k−2..k+2 (all present in the track), an audio window the 20 MFCC
  frames (0.2 s) centred on frame k's centre (`audio.window_starts`, "centre" alignment) of the clip's
  MFCC after per-clip mean and variance normalisation (`normalise_mfcc`);
* for each shift s in −S..S the distance d(k, s) = ‖video(k) − audio(k + s)‖ of the unit embeddings;
* mean over the windows gives D(s); the offset is argmin D, the confidence median(D) − min(D), as in
  the authors' `syncnet_python`. LSE-D is min D and LSE-C the confidence (Wav2Lip's metrics), but
  computed with this package's SyncNet: not comparable with numbers from the original network.

Sign: a positive offset means the audio comes later than the picture (the manifest's ``av_offset``
convention), so training reads frame k's audio at k + offset.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from keras_speech2vid.config import AudioConfig, SyncNetConfig
from keras_speech2vid.face.canonical import FACE_SIZE, SIZES, SYNC_BOX_112, box_at

LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601


def sync_crop(face: np.ndarray) -> np.ndarray:
    """Grey lower face (48, 80) uint8 of an aligned 112 face, or of a 109 output (its crop [1:110])."""
    face = np.asarray(face)
    if face.ndim != 3 or face.shape[0] not in SIZES or face.shape[1] != face.shape[0]:
        raise ValueError(f"face must be (112, 112, 3) or (109, 109, 3). Received: shape={face.shape}")
    top, bottom, left, right = box_at(SYNC_BOX_112, face.shape[0], FACE_SIZE)
    box = face[top:bottom, left:right, :3].astype(np.float32)
    return np.clip(box @ LUMA + 0.5, 0, 255).astype(np.uint8)


def window_centres(frame_indices, frames: int = 5) -> np.ndarray:
    """Positions p in the track whose `frames` neighbours p−h..p+h are consecutive video frames."""
    k = np.asarray(frame_indices, np.int64)
    h = frames // 2
    if len(k) < frames:
        return np.zeros(0, np.int64)
    p = np.arange(h, len(k) - h)
    return p[k[p + h] - k[p - h] == 2 * h]


def video_windows(crops: np.ndarray, positions, frames: int = 5) -> np.ndarray:
    """(n, 48, 80, frames) float32 in [0, 1]: the stacked grey crops around each position."""
    h = frames // 2
    positions = np.asarray(positions, np.int64)
    idx = positions[:, None] + np.arange(-h, h + 1)[None, :]
    return np.transpose(crops[idx], (0, 2, 3, 1)).astype(np.float32) / 255.0


def sync_audio_config(config: SyncNetConfig) -> AudioConfig:
    return AudioConfig(window_frames=config.mfcc_frames)


def normalise_mfcc(mfcc: np.ndarray, config: SyncNetConfig) -> np.ndarray:
    """Cepstral mean and variance normalisation over the clip's real audio (not its silent padding).

    Each coefficient gets zero mean and unit variance over the clip: the recording channel and the voice
    shift cepstra as a whole, the mouth moves them over time. SyncNet's audio stream sees only this.
    """
    m = np.asarray(mfcc, np.float32)
    pad = int(round(sync_audio_config(config).pad_seconds * 100))
    real = m[:, pad:m.shape[1] - pad] if m.shape[1] > 2 * pad + 1 else m
    return (m - real.mean(axis=1, keepdims=True)) / (real.std(axis=1, keepdims=True) + 1e-3)


def audio_windows(mfcc: np.ndarray, frame_indices, fps: float, config: SyncNetConfig,
                  offset: float = 0.0) -> np.ndarray:
    """(n, 12, 20, 1) float32: the audio windows of video frames `frame_indices` of a padded MFCC (12, F).

    The same windows as `audio.gather_windows` (columns outside the MFCC read as silence), in NumPy:
    the training sampler cuts hundreds per step. Pass the MFCC through `normalise_mfcc` first.
    """
    from keras_speech2vid import audio

    c = sync_audio_config(config)
    starts = audio.window_starts(np.asarray(frame_indices, np.int64), fps, "centre", offset, c)
    cols = np.asarray(starts)[:, None] + np.arange(c.window_frames)[None, :]
    m = np.concatenate([np.asarray(mfcc, np.float32), np.zeros((mfcc.shape[0], 1), np.float32)], axis=1)
    cols = np.where((cols >= 0) & (cols < mfcc.shape[1]), cols, mfcc.shape[1])
    return np.transpose(m[:, cols], (1, 0, 2))[..., None]


def audio_seconds(mfcc: np.ndarray, config: SyncNetConfig) -> float:
    """The length of the audio behind a padded MFCC (12, F): the shortest signal with F frames."""
    c = sync_audio_config(config)
    samples = (mfcc.shape[1] - 1) * c.frame_step + c.frame_length - 2 * int(round(c.pad_seconds * c.sample_rate))
    return max(samples, 0) / c.sample_rate


def inside_audio(centres, shift: int, fps: float, seconds: float, config: SyncNetConfig) -> np.ndarray:
    """Which windows' audio at `shift` frames lies wholly in the real audio (not in the silent padding)."""
    half = config.mfcc_frames / 200.0  # half a window, seconds
    t = (np.asarray(centres) + shift + 0.5) / fps
    return (t - half >= 0) & (t + half <= seconds)


@dataclasses.dataclass(frozen=True)
class SyncResult:
    """One track's sync: offset in frames (+ = audio later), confidence (LSE-C), min distance (LSE-D)."""

    offset: int
    confidence: float
    min_distance: float
    distances: tuple[float, ...]  # D(s) for s = −max_shift..max_shift
    windows: int

    @property
    def max_shift(self) -> int:
        return (len(self.distances) - 1) // 2

    def to_dict(self) -> dict:
        return {"offset": self.offset, "confidence": self.confidence, "min_distance": self.min_distance,
                "windows": self.windows, "distances": [round(d, 5) for d in self.distances]}


def summarise(distances: np.ndarray) -> SyncResult:
    """SyncResult of per-window distances (n, 2S+1)."""
    mean = np.asarray(distances, np.float64).mean(axis=0)
    s = (len(mean) - 1) // 2
    best = int(np.argmin(mean))
    return SyncResult(best - s, float(np.median(mean) - mean[best]), float(mean[best]),
                      tuple(float(v) for v in mean), int(len(distances)))


class SyncNet:
    """A trained SyncNet (`models.syncnet.build_syncnet`) with the windowing of this module."""

    def __init__(self, model, config: SyncNetConfig, batch_size: int = 256, sha256: str | None = None):
        from keras_speech2vid.models.syncnet import get_streams

        self.model, self.config, self.batch_size = model, config, batch_size
        self.sha256 = sha256  # of the weights file, when loaded from a weights folder: names the measurement
        self.video, self.audio = get_streams(model)

    @classmethod
    def load(cls, weights_dir=None) -> "SyncNet":
        """The "syncnet" model of a weights folder (default: the bundled weights). Raises WeightsError."""
        from keras_speech2vid.errors import WeightsError
        from keras_speech2vid.weights import default_weights_dir, load_weights_dir, read_manifest

        weights_dir = Path(weights_dir) if weights_dir is not None else default_weights_dir()
        found = load_weights_dir(weights_dir, kinds=("syncnet",))
        if not found:
            raise WeightsError(f"{weights_dir}: no SyncNet in this weights folder")
        name, (_, model, config) = next(iter(found.items()))
        return cls(model, config, sha256=read_manifest(weights_dir)["models"][name]["sha256"])

    @classmethod
    def find(cls, weights_dir=None) -> "SyncNet | None":
        """`load`, or None when the folder has no SyncNet (stage ii is then skipped)."""
        from keras_speech2vid.errors import WeightsError

        try:
            return cls.load(weights_dir)
        except WeightsError:
            return None

    def _embed(self, stream, x: np.ndarray) -> np.ndarray:
        out = [np.asarray(stream(x[i:i + self.batch_size], training=False)) for i in range(0, len(x), self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self.config.embedding), np.float32)

    def distances(self, crops: np.ndarray, frame_indices, mfcc: np.ndarray, fps: float,
                  max_shift: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per-window distances (n, 2S+1) for shifts −S..S, and the window centres' frame indices (n,).

        crops: (T, 48, 80) uint8 (`sync_crop` of each face); frame_indices: (T,) their video frames.
        """
        s = self.config.max_shift if max_shift is None else int(max_shift)
        k = np.asarray(frame_indices, np.int64)
        pos = window_centres(k, self.config.video_frames)
        if len(pos) == 0:
            return np.zeros((0, 2 * s + 1), np.float32), np.zeros(0, np.int64)
        centres = k[pos]
        v = self._embed(self.video, video_windows(crops, pos, self.config.video_frames))
        first = int(centres.min()) - s
        span = np.arange(first, int(centres.max()) + s + 1)
        a = self._embed(self.audio, audio_windows(normalise_mfcc(mfcc, self.config), span, fps, self.config))
        idx = (centres - first)[:, None] + np.arange(-s, s + 1)[None, :]  # (n, 2S+1) rows of a
        d = np.empty(idx.shape, np.float32)
        for i in range(0, len(idx), 1024):  # chunks: bounded memory on long tracks
            cos = np.einsum("ne,nse->ns", v[i:i + 1024], a[idx[i:i + 1024]])
            d[i:i + 1024] = np.sqrt(np.maximum(2.0 - 2.0 * cos, 0.0))  # unit vectors: ‖v − a‖² = 2 − 2 v·a
        return d, centres

    def estimate(self, crops: np.ndarray, frame_indices, mfcc: np.ndarray, fps: float,
                 max_shift: int | None = None) -> SyncResult | None:
        """The track's SyncResult, or None when it has no 5-frame window."""
        d, _ = self.distances(crops, frame_indices, mfcc, fps, max_shift)
        return summarise(d) if len(d) else None

    def estimate_faces(self, faces, frame_indices, waveform: np.ndarray, fps: float,
                       max_shift: int | None = None) -> SyncResult | None:
        """`estimate` from aligned faces (112 or 109) and the clip's 16 kHz waveform."""
        from keras_speech2vid import audio

        crops = np.stack([sync_crop(f) for f in faces]) if len(faces) else np.zeros((0, 48, 80), np.uint8)
        return self.estimate(crops, frame_indices, audio.padded_mfcc(waveform).numpy(), fps, max_shift)
