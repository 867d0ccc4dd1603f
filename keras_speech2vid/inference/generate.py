"""Talking-face generation: identity faces + speech → a stream of frames → an mp4 with the speech.

Use::

    from keras_speech2vid import Speech2Vid

    s2v = Speech2Vid.load()                                   # the bundled weights (or a folder)
    s2v.generate_video(["a.jpg"], "speech.wav", "out.mp4")    # 109×109 face video, AAC audio
    s2v.generate_video("photo.jpg", "speech.wav", "out.mp4", full_frame=True)
    for frame in s2v.generate(faces, "speech.wav"):           # RGB uint8 frames, streamed
        ...
    s2v.redub("clip.mp4", "new_speech.wav", "dubbed.mp4")     # see `keras_speech2vid.inference.redub`

How a run works (`Speech2Vid.generate`):
  1. Identity. Each face is an image file, an RGB array or a video file. An image of exactly 112×112 is
     taken as an already aligned crop (``aligned=None`` auto-detects; ``True``/``False`` forces); any
     other image is detected, optionally widened by ``pads`` (top, bottom, left, right pixels, Wav2Lip's
     convention), and aligned (spec §4). A video gives its identity frames itself: frames spread evenly
     over it, from frames with a face (`sample_identity_frames`).
  2. Model choice. One face uses the 1-image generator when the weights have one; otherwise the 5-image
     generator gets five faces: fewer are repeated cyclically (2 faces → 1 2 1 2 1), more are subsampled
     evenly. A weights folder with only a 1-image generator uses the first face.
  3. The identity branch runs **once**: its embedding and three skip tensors are cached and broadcast
     over every batch (`FrameEngine`), so each frame costs only the audio encoder, the decoder and the
     deblurrer (applied unless ``deblur=False`` or absent).
  4. Audio. Decoded to 16 kHz mono; the MFCC windows are computed in chunks of `CHUNK_FRAMES` video
     frames (`iter_audio_windows`, identical to `keras_speech2vid.audio.audio_windows`), so memory does
     not grow with the audio's length. Frame k shows the audio at its own time (the audio front end's
     ``alignment``, "centre" by default); there are ``round(duration·fps)`` frames, so the video lasts as
     long as the audio to within half a frame.
  5. Output. Frames are produced batch by batch and handed on one at a time (never all in memory):
     109×109 faces, or with ``full_frame=True`` the source image with the face warped back through the
     inverse alignment (accounting for the 1-pixel 109 ↔ 112 offset) and Poisson-blended
     (`keras_speech2vid.inference.blend`). `generate_video` streams them to ffmpeg with the input audio
     muxed as AAC, into a temporary file that is renamed onto the output only when complete.

`resize_factor` k (Wav2Lip) shrinks the input images/videos by k before anything else; the full-frame
output then has the reduced size. A ``box`` hint (top, bottom, left, right, in input pixels) picks the
face when there are several.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from keras_speech2vid.config import AudioConfig
from keras_speech2vid.errors import AudioError, ImageError, MediaError, NoFaceError, WeightsError

CHUNK_FRAMES = 1000  # video frames of MFCC windows computed at a time (40 s at 25 fps)
DEFAULT_BATCH = 16
IDENTITY_TRIES = 8  # frames tried per segment when sampling identity frames from a video


# ----------------------------------------------------------------------------------------------------------
# audio in chunks


def load_audio(audio, sample_rate: int = 16000) -> np.ndarray:
    """A 1-D float32 waveform from a media file path or an array (taken as `sample_rate` mono)."""
    from keras_speech2vid.io import decode_audio

    if isinstance(audio, (str, os.PathLike)):
        return decode_audio(audio, sample_rate)
    wave = np.asarray(audio, dtype=np.float32)
    if wave.ndim != 1 or wave.size == 0:
        raise AudioError(f"audio must be a file or a non-empty 1-D waveform. Received: shape={wave.shape}")
    return wave


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
    from keras_speech2vid import audio as A

    c = config or AudioConfig()
    if chunk_frames < 1:
        raise ValueError(f"chunk_frames must be >= 1. Received: chunk_frames={chunk_frames}")
    n = len(wave)
    total = A.num_video_frames(n, fps, alignment, c) if num_frames is None else int(num_frames)
    pad = int(round(c.pad_seconds * c.sample_rate))
    num_mfcc = A.num_mfcc_frames(n, padded=True, config=c)
    width = c.window_frames
    for k0 in range(0, total, chunk_frames):
        k1 = min(total, k0 + chunk_frames)
        starts = np.asarray(A.window_starts(np.arange(k0, k1), fps, alignment, offset, c), dtype=np.int64)
        j0, j1 = int(starts.min()), int(starts.max()) + width
        cols = np.zeros((c.num_coeffs, j1 - j0), dtype=np.float32)
        a, b = max(j0, 0), min(j1, num_mfcc)
        if b > a:
            lead = 1 if a > 0 else 0
            seg = _padded_segment(wave, c.frame_step * (a - lead), c.frame_step * (b - 1) + c.frame_length, pad)
            cols[:, a - j0:b - j0] = A.mfcc(seg, c).numpy()[:, lead:]
        index = (starts - j0)[:, None] + np.arange(width)[None, :]  # (n, 35)
        yield np.ascontiguousarray(np.transpose(cols[:, index], (1, 0, 2))[..., None])


# ----------------------------------------------------------------------------------------------------------
# the frame engine


def _identity_images(generator) -> int:
    shape = generator.get_layer("identity_encoder").input.shape
    return int(shape[-1]) // 3


class FrameEngine:
    """Runs one generator split into its sub-models, with the identity branch cached.

    ``encode_identity`` runs the identity encoder once; ``run`` then needs only the audio encoder, the
    decoder and (optionally) the deblurrer per batch, the cached tensors broadcast along the batch. Every
    batch is padded to ``batch_size`` so the compiled function sees one shape (one trace, one XLA
    compilation). ``cache_identity=False`` runs the whole generator on every batch instead (for
    measuring the cache's gain).
    """

    def __init__(self, generator, deblurrer=None, *, batch_size: int = DEFAULT_BATCH, jit_compile: bool = False,
                 cache_identity: bool = True):
        import tensorflow as tf

        from keras_speech2vid.models import get_submodels

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1. Received: batch_size={batch_size}")
        self.generator = generator
        self.deblurrer = deblurrer
        self.batch_size = int(batch_size)
        self.cache_identity = cache_identity
        self.identity_images = _identity_images(generator)
        self.audio_encoder, self.identity_encoder, self.decoder = get_submodels(generator)
        self._encode = tf.function(self._encode_impl, jit_compile=jit_compile)
        self._cached = tf.function(self._cached_impl, jit_compile=jit_compile)
        self._full = tf.function(self._full_impl, jit_compile=jit_compile)

    # -- compiled bodies ---------------------------------------------------------------------------------

    def _encode_impl(self, identity):
        return tuple(self.identity_encoder(identity, training=False))

    def _finish(self, frame, deblur: bool):
        if deblur and self.deblurrer is not None:
            frame = self.deblurrer(frame, training=False)
        return frame

    def _cached_impl(self, mfcc, embedding, skip_53, skip_26, skip_12, deblur: bool):
        import tensorflow as tf

        b = tf.shape(mfcc)[0]

        def tile(t):  # (1, ...) -> (B, ...)
            return tf.broadcast_to(t, tf.concat([[b], tf.shape(t)[1:]], axis=0))

        audio = self.audio_encoder(mfcc, training=False)
        frame = self.decoder([audio, tile(embedding), tile(skip_53), tile(skip_26), tile(skip_12)], training=False)
        return self._finish(frame, deblur)

    def _full_impl(self, mfcc, identity, deblur: bool):
        import tensorflow as tf

        identity = tf.broadcast_to(identity, tf.concat([tf.shape(mfcc)[:1], tf.shape(identity)[1:]], axis=0))
        frame = self.generator({"mfcc": mfcc, "identity": identity}, training=False)["frame"]
        return self._finish(frame, deblur)

    # -- public ------------------------------------------------------------------------------------------

    def identity_input(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        """(1, 112, 112, 3n) float32 in [0, 1] from n aligned 112×112 RGB uint8 faces, channels R1 G1 B1 R2 …"""
        if len(faces) != self.identity_images:
            raise ValueError(f"this generator takes {self.identity_images} identity images. Received: {len(faces)}")
        stack = np.concatenate([np.asarray(f, dtype=np.float32) / 255.0 for f in faces], axis=-1)
        return stack[None]

    def encode_identity(self, faces: Sequence[np.ndarray]):
        """The identity cache: (embedding, skip_53, skip_26, skip_12), or the raw input when caching is off."""
        identity = self.identity_input(faces)
        if not self.cache_identity:
            return identity
        return self._encode(identity)

    def run(self, windows: np.ndarray, identity, deblur: bool = True) -> np.ndarray:
        """(n, 109, 109, 3) float32 frames for n ≤ batch_size windows (padded to batch_size inside)."""
        n = len(windows)
        if n > self.batch_size:
            raise ValueError(f"at most batch_size={self.batch_size} windows per call. Received: {n}")
        if n < self.batch_size:
            windows = np.concatenate([windows, np.zeros((self.batch_size - n,) + windows.shape[1:], np.float32)])
        deblur = bool(deblur and self.deblurrer is not None)
        if self.cache_identity:
            out = self._cached(windows, *identity, deblur)
        else:
            out = self._full(windows, identity, deblur)
        return np.asarray(out)[:n]

    def iter_frames(self, window_chunks: Iterable[np.ndarray], identity, deblur: bool = True) -> Iterator[np.ndarray]:
        """Re-batch window chunks to ``batch_size`` and yield (109, 109, 3) uint8 frames one at a time."""
        pending: list[np.ndarray] = []
        count = 0

        def flush(batch):
            frames = self.run(batch, identity, deblur)
            return (np.clip(frames, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)

        for chunk in window_chunks:
            pending.append(chunk)
            count += len(chunk)
            while count >= self.batch_size:
                joined = np.concatenate(pending)
                batch, rest = joined[:self.batch_size], joined[self.batch_size:]
                pending, count = ([rest] if len(rest) else []), len(rest)
                yield from flush(batch)
        if count:
            yield from flush(np.concatenate(pending))


# ----------------------------------------------------------------------------------------------------------
# faces


@dataclasses.dataclass
class Background:
    """A still full-frame background: the image, its face geometry and the fixed blend mask."""

    image: np.ndarray
    matrix: np.ndarray
    landmarks: np.ndarray
    mask: np.ndarray | None = None


def _resize(image: np.ndarray, factor: float) -> np.ndarray:
    import cv2

    if factor == 1:
        return image
    h, w = image.shape[:2]
    size = (max(1, int(w / factor)), max(1, int(h / factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _scale_box(box, factor: float):
    return None if box is None else [float(v) / factor for v in box]


def _align_still(image: np.ndarray, box=None, pads=None, source: str = "image"):
    """Detect (+ pads) and align one face → `AlignedFace`."""
    from keras_speech2vid.face import align_face, find_face

    detection = find_face(image, box=box, source=source)
    if pads is not None and any(pads):
        top, bottom, left, right = (float(p) for p in pads)
        h, w = image.shape[:2]
        l, t, r, b = detection.xyxy
        detection = np.array([max(0.0, l - left), max(0.0, t - top), min(w, r + right), min(h, b + bottom)],
                             dtype=np.float32)
    return align_face(image, detection)


def _check_pads(pads):
    if pads is None:
        return None
    pads = [int(p) for p in pads]
    if len(pads) != 4:
        raise ValueError(f"pads needs 4 values (top, bottom, left, right). Received: pads={pads!r}")
    return pads


def sample_identity_frames(video, count: int = 5, box=None, pads=None, resize_factor: float = 1):
    """Up to `count` aligned 112×112 faces from frames spread over a video (streamed, one pass).

    The video is cut into `count` equal segments; in each, the middle frame is tried first, then up to
    `IDENTITY_TRIES` − 1 later frames of the segment, until one has a face. Segments without a face give
    nothing (the caller repeats the faces found).

    Returns:
      (faces, first): the list of aligned faces (in video order) and the `AlignedFace` of the first one
      together with its (resized) frame, as ``(aligned, frame)``.

    Raises:
      NoFaceError: no face in any tried frame.
    """
    from keras_speech2vid.io import iter_frames, probe

    info = probe(video)
    if not info.has_video:
        raise MediaError(f"{video}: no video stream")
    fps = info.fps or 25.0
    total = max(1, int(round((info.duration or 0.0) * fps)))
    count = max(1, min(int(count), total))
    tries: dict[int, int] = {}  # frame index -> segment
    for seg in range(count):
        lo, hi = seg * total // count, max(seg * total // count + 1, (seg + 1) * total // count)
        mid = (lo + hi) // 2
        step = max(1, (hi - mid) // IDENTITY_TRIES)
        for idx in range(mid, hi, step)[:IDENTITY_TRIES]:
            tries.setdefault(idx, seg)
    if 0 not in tries:
        tries[0] = -1  # the first frame too, as a last resort for very short videos
    found: dict[int, object] = {}
    first = None
    last_index = max(tries)
    box = _scale_box(box, resize_factor)
    with contextlib.closing(iter_frames(video, info)) as frames:  # stops ffmpeg once past the last try
        for index, frame in enumerate(frames):
            if index > last_index:
                break
            seg = tries.get(index)
            if seg is None or seg in found:
                continue
            frame = _resize(frame, resize_factor)
            try:
                aligned = _align_still(frame, box=box, pads=pads, source=f"{video} frame {index}")
            except (NoFaceError, ImageError):
                continue
            found[seg] = aligned
            if first is None:  # frames come in order: the earliest face found
                first = (aligned, frame)
    faces = [found[s].face for s in sorted(found) if s >= 0] or [found[s].face for s in found]
    if not faces:
        raise NoFaceError(f"{video}: no face found in the frames sampled for the identity")
    return faces[:count], first


def fit_faces(faces: Sequence[np.ndarray], count: int) -> list[np.ndarray]:
    """Exactly `count` faces: repeated cyclically when fewer (1 2 → 1 2 1 2 1), spread evenly when more."""
    faces = list(faces)
    if len(faces) >= count:
        picks = np.round(np.linspace(0, len(faces) - 1, count)).astype(int) if count > 1 else [0]
        return [faces[i] for i in picks]
    return [faces[i % len(faces)] for i in range(count)]


def _is_video(path) -> bool:
    from keras_speech2vid.io import is_image, probe

    if is_image(path):
        return False
    try:
        info = probe(path)
    except MediaError:
        return False
    return info.has_video


# ----------------------------------------------------------------------------------------------------------
# the stream of frames


class FrameStream:
    """An iterator of RGB uint8 frames that knows, before the first frame, what a writer needs.

    Attributes:
      num_frames: how many frames it yields; size: (width, height); fps; audio: the audio source
      (path or waveform) to mux; background: the still `Background` of a full-frame run (else None).
    """

    def __init__(self, make: Callable[[], Iterator[np.ndarray]], num_frames: int, size: tuple[int, int],
                 fps: float, audio, progress: bool = False, desc: str = "generating", background=None):
        self.num_frames = int(num_frames)
        self.size = (int(size[0]), int(size[1]))
        self.fps = float(fps)
        self.audio = audio
        self.background = background
        self._make = make
        self._it = None
        self._bar = None
        self._progress = progress
        self._desc = desc

    def __len__(self) -> int:
        return self.num_frames

    def __iter__(self):
        return self

    def __next__(self) -> np.ndarray:
        if self._it is None:
            from tqdm.auto import tqdm

            self._it = self._make()
            self._bar = tqdm(total=self.num_frames, unit="frame", desc=self._desc, disable=not self._progress,
                             file=sys.stderr, dynamic_ncols=True)
        try:
            frame = next(self._it)
        except StopIteration:
            self.close()
            raise
        self._bar.update(1)
        return frame

    def close(self) -> None:
        if self._it is not None and hasattr(self._it, "close"):
            self._it.close()
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def write(self, outfile) -> Path:
        """Stream every frame into `outfile` (mp4, audio muxed as AAC, written atomically)."""
        from keras_speech2vid.io import VideoWriter

        outfile = Path(outfile)
        try:
            with VideoWriter(outfile, self.fps, self.size, audio=self.audio) as writer:
                for frame in self:
                    writer.write(frame)
        finally:
            self.close()
        return outfile


def check_outfile(outfile) -> Path:
    """Fail early (before any model work) when the output folder does not exist."""
    outfile = Path(outfile)
    if not outfile.parent.is_dir():
        raise MediaError(f"{outfile}: output folder {outfile.parent} does not exist")
    if outfile.is_dir():
        raise MediaError(f"{outfile}: is a folder, not a file name")
    return outfile


def demo_files() -> tuple[Path, Path]:
    """(face image, speech) bundled for ``speech2vid demo`` (VoxCeleb2, CC BY 4.0; see assets/demo/ATTRIBUTION.md)."""
    import importlib.resources

    folder = Path(str(importlib.resources.files("keras_speech2vid") / "assets" / "demo"))
    face, speech = folder / "face.jpg", folder / "speech.m4a"
    for path in (face, speech):
        if not path.is_file():
            raise MediaError(f"{path}: bundled demo file missing (reinstall keras_speech2vid)")
    return face, speech


# ----------------------------------------------------------------------------------------------------------
# the public class


class Speech2Vid:
    """Speech2Vid inference: generate talking-face videos and re-dub videos.

    Args:
      generator: a generator built by `build_generator` (5-image or 1-image; the identity input decides).
      generator_1img: an optional 1-image generator, used when exactly one face is given.
      deblurrer: an optional deblurrer (`build_deblurrer`), applied to every generated frame.
      fps: default output frame rate for still faces.
      alignment, offset, audio_config: the audio front end's window timing (see `keras_speech2vid.audio`).
      batch_size: frames per model call (default 16).
      jit_compile: compile the per-batch function with XLA.
      cache_identity: run the identity branch once per run (True) or on every batch (False; slower,
        for benchmarks).
    """

    def __init__(self, generator=None, generator_1img=None, deblurrer=None, *, fps: float = 25.0,
                 alignment: str | None = None, offset: float = 0.0, audio_config: AudioConfig | None = None,
                 batch_size: int = DEFAULT_BATCH, jit_compile: bool = False, cache_identity: bool = True):
        self.generators: dict[int, object] = {}
        for model in (generator, generator_1img):
            if model is not None:
                self.generators[_identity_images(model)] = model
        if not self.generators:
            raise ValueError("Speech2Vid needs at least one generator")
        if generator_1img is not None and _identity_images(generator_1img) != 1:
            raise ValueError("generator_1img must take one identity image")
        if not float(fps) > 0:
            raise ValueError(f"fps must be positive. Received: fps={fps!r}")
        self.deblurrer = deblurrer
        self.fps = float(fps)
        self.audio_config = audio_config or AudioConfig()
        self.alignment = alignment
        self.offset = float(offset)
        self.batch_size = int(batch_size)
        self.jit_compile = bool(jit_compile)
        self.cache_identity = bool(cache_identity)
        self._engines: dict[tuple, FrameEngine] = {}

    # -- construction ------------------------------------------------------------------------------------

    @classmethod
    def load(cls, weights_dir=None, **kwargs) -> "Speech2Vid":
        """Load a weights folder: ``generator`` (5-image), ``generator_1img`` (optional), ``deblurrer``
        (optional). None means the bundled weights (`keras_speech2vid.weights.default_weights_dir`).

        Raises:
          WeightsError: the folder is missing, unreadable, corrupt, or holds no generator; for the
            bundled folder, that no trained weights are bundled yet.
        """
        from keras_speech2vid.weights import GENERATION_KINDS, MANIFEST, default_weights_dir, load_weights_dir

        folder = Path(weights_dir) if weights_dir is not None else default_weights_dir()
        if weights_dir is None and not (folder / MANIFEST).exists() and not (folder / "generator.keras").exists():
            raise WeightsError(f"no trained Speech2Vid weights are bundled yet ({folder} holds none): "
                               f"train a model and pass its folder with --weights DIR")
        if folder.exists() and not folder.is_dir():
            raise WeightsError(f"{folder}: not a weights folder (a file)")
        try:
            models = load_weights_dir(folder, kinds=GENERATION_KINDS)
        except PermissionError as e:
            raise WeightsError(f"{folder}: unreadable weights folder ({e.strerror})") from None
        generators = [m for kind, m, _ in models.values() if kind == "generator"]
        deblurrers = [m for kind, m, _ in models.values() if kind == "deblurrer"]
        if not generators:
            raise WeightsError(f"{folder}: holds no generator")
        by_count = {_identity_images(m): m for m in generators}
        one = by_count.pop(1, None)
        main = by_count[max(by_count)] if by_count else None
        if main is None:
            main, one = one, None
        return cls(main, generator_1img=one, deblurrer=deblurrers[0] if deblurrers else None, **kwargs)

    # -- helpers ------------------------------------------------------------------------------------------

    def engine(self, identity_images: int, batch_size: int | None = None) -> FrameEngine:
        """The (cached) `FrameEngine` of the generator taking `identity_images` faces."""
        batch_size = int(batch_size or self.batch_size)
        key = (identity_images, batch_size)
        if key not in self._engines:
            self._engines[key] = FrameEngine(self.generators[identity_images], self.deblurrer, batch_size=batch_size,
                                             jit_compile=self.jit_compile, cache_identity=self.cache_identity)
        return self._engines[key]

    def choose_generator(self, num_faces: int) -> int:
        """How many identity images the chosen generator takes, for `num_faces` faces (see the module doc)."""
        if num_faces in self.generators:
            return num_faces
        return max(self.generators)

    def identity_count(self) -> int:
        """Identity frames to take from a video: the largest generator's count."""
        return max(self.generators)

    def prepare_faces(self, faces, aligned: bool | None = None, box=None, pads=None, resize_factor: float = 1):
        """Aligned 112×112 faces and the still background (the first face's image) of a generate run.

        Returns:
          (faces, background, video): the list of aligned uint8 faces; the `Background` of the first
          face (its image, matrix and landmarks; an aligned crop is its own background, with the identity
          matrix and the canonical landmarks); the video path when the faces came from a video, else None.
        """
        from keras_speech2vid.face import FACE_SIZE, canonical_landmarks
        from keras_speech2vid.io import read_image

        if resize_factor is None or not float(resize_factor) >= 1:
            raise ValueError(f"resize_factor must be >= 1. Received: resize_factor={resize_factor!r}")
        pads = _check_pads(pads)
        if isinstance(faces, (str, os.PathLike, np.ndarray)):
            faces = [faces]
        faces = list(faces)
        if not faces:
            raise ValueError("faces is empty: give at least one face image or a video")
        if len(faces) == 1 and isinstance(faces[0], (str, os.PathLike)) and _is_video(faces[0]):
            video = faces[0]
            crops, first = sample_identity_frames(video, self.identity_count(), box=box, pads=pads,
                                                  resize_factor=resize_factor)
            aligned_face, frame = first
            return crops, Background(frame, aligned_face.matrix, aligned_face.landmarks), video
        crops, background = [], None
        for item in faces:
            source = str(item) if isinstance(item, (str, os.PathLike)) else "image"
            if isinstance(item, (str, os.PathLike)):
                if _is_video(item):
                    raise ImageError(f"{item}: a video can only be given as the one --face")
                image = read_image(item)
            else:
                from keras_speech2vid.face.detect import as_rgb

                image = as_rgb(np.asarray(item))
            is_aligned = image.shape[:2] == (FACE_SIZE, FACE_SIZE) if aligned is None else bool(aligned)
            if is_aligned:
                if image.shape[:2] != (FACE_SIZE, FACE_SIZE):
                    raise ImageError(f"{source}: an aligned face must be 112×112, not "
                                     f"{image.shape[1]}×{image.shape[0]}")
                crops.append(np.ascontiguousarray(image))
                if background is None:
                    background = Background(image, np.hstack([np.eye(2), np.zeros((2, 1))]),
                                            canonical_landmarks("112"))
                continue
            image = _resize(image, resize_factor)
            face = _align_still(image, box=_scale_box(box, resize_factor), pads=pads, source=source)
            crops.append(face.face)
            if background is None:
                background = Background(image, face.matrix, face.landmarks)
        return crops, background, None

    # -- generation ---------------------------------------------------------------------------------------

    def generate(self, faces, audio, *, aligned: bool | None = None, box=None, pads=None,
                 resize_factor: float = 1, full_frame: bool = False, region: str = "full",
                 blend: str = "poisson", deblur: bool = True, batch_size: int | None = None,
                 fps: float | None = None, progress: bool = False) -> FrameStream:
        """Frames of a talking face: an iterator (`FrameStream`) of RGB uint8 frames.

        Args:
          faces: an image path, an RGB array, a list of them, or one video path (see the module doc).
          audio: a media file with an audio stream, or a 16 kHz mono float waveform.
          aligned: treat the images as aligned 112×112 crops (None: auto, 112×112 means aligned).
          box: (top, bottom, left, right) hint choosing the face; pads: (top, bottom, left, right)
            pixels added to the detected box before landmarks; resize_factor: shrink inputs by this.
          full_frame: paste the face back into the (first) source image instead of yielding 109×109 faces;
            region ("full" or "lower") and blend ("poisson", "alpha", "none") choose how
            (`keras_speech2vid.inference.blend`). With a video as the face, the frames of that video are
            the background (the re-dubbing pipeline, `redub_frames`).
          deblur: apply the deblurrer when there is one.
          batch_size: frames per model call; fps: output frame rate (default `self.fps`).
          progress: show a tqdm progress bar on stderr.

        Raises:
          AudioError, ImageError, NoFaceError, MediaError: bad inputs (one-line messages naming the file).
        """
        from keras_speech2vid import audio as A
        from keras_speech2vid.face import TARGET_SIZE
        from keras_speech2vid.inference import blend as B

        B._check("region", region, B.REGIONS)
        B._check("blend", blend, B.BLENDS)
        fps = self.fps if fps is None else float(fps)
        if not fps > 0:
            raise ValueError(f"fps must be positive. Received: fps={fps!r}")
        wave = load_audio(audio, self.audio_config.sample_rate)
        crops, background, video = self.prepare_faces(faces, aligned=aligned, box=box, pads=pads,
                                                      resize_factor=resize_factor)
        if full_frame and video is not None:
            from keras_speech2vid.inference.redub import redub_frames

            return redub_frames(self, video, audio, wave=wave, region=region, blend=blend,
                                identity_faces=crops, deblur=deblur, batch_size=batch_size, progress=progress)
        count = self.choose_generator(len(crops))
        engine = self.engine(count, batch_size)
        identity = engine.encode_identity(fit_faces(crops, count))
        num_frames = A.num_video_frames(len(wave), fps, self.alignment, self.audio_config)
        if full_frame:
            h, w = background.image.shape[:2]
            background.mask = B.region_mask(background.landmarks, background.matrix, (h, w), region)
            size = (w, h)
        else:
            size = (TARGET_SIZE, TARGET_SIZE)

        def make():
            windows = iter_audio_windows(wave, fps, self.alignment, self.offset, self.audio_config,
                                         num_frames=num_frames)
            for face in engine.iter_frames(windows, identity, deblur):
                if full_frame:
                    yield B.paste_face(background.image, face, background.matrix, background.mask, method=blend)
                else:
                    yield face

        return FrameStream(make, num_frames, size, fps, audio if isinstance(audio, (str, os.PathLike)) else wave,
                           progress=progress, background=background if full_frame else None)

    def generate_video(self, faces, audio, outfile, **kwargs) -> Path:
        """`generate` straight into an mp4 at `outfile` (H.264, the audio as AAC, written atomically).

        Takes the keyword arguments of `generate`. Returns the output path.
        """
        outfile = check_outfile(outfile)
        return self.generate(faces, audio, **kwargs).write(outfile)

    def redub(self, video, audio, outfile, **kwargs) -> Path:
        """Re-dub `video` with `audio` into `outfile`; see `keras_speech2vid.inference.redub.redub_frames`."""
        from keras_speech2vid.inference.redub import redub_frames

        outfile = check_outfile(outfile)
        return redub_frames(self, video, audio, **kwargs).write(outfile)
