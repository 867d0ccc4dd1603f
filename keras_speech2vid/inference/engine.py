"""The frame engine: one generator split into its sub-models, the identity branch run once and cached."""

from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator, Sequence

import numpy as np

from keras_speech2vid.models.generator import audio_front_end, identity_images

DEFAULT_BATCH = 16
#: The cached identity tensors, in `encode_identity`'s order (also the int8 graph's input names).
IDENTITY_INPUTS = ("embedding", "skip_53", "skip_26", "skip_12")


class FrameEngine:
    """Runs one generator split into its sub-models, with the identity branch cached.

    ``encode_identity`` runs the identity encoder once; ``run`` then needs only the audio encoder, the
    decoder and (optionally) the deblurrer per batch, the cached tensors broadcast along the batch. Every
    batch is padded to ``batch_size`` so the compiled function sees one shape (one trace, one XLA
    compilation). ``cache_identity=False`` runs the whole generator on every batch instead (for
    measuring the cache's gain).
    """

    def __init__(self, generator, deblurrer=None, *, batch_size: int = DEFAULT_BATCH, jit_compile: bool = False,
                 cache_identity: bool = True, pipeline: bool = True):
        import tensorflow as tf

        from keras_speech2vid.models import get_submodels

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1. Received: batch_size={batch_size}")
        self.generator = generator
        self.deblurrer = deblurrer
        self.batch_size = int(batch_size)
        self.cache_identity = cache_identity
        self.pipeline = bool(pipeline)
        self.identity_images = identity_images(generator)
        self.audio_front_end = audio_front_end(generator)  # the generator's audio input: "mfcc" or "whisper"
        self.audio_encoder, self.identity_encoder, self.decoder = get_submodels(generator)
        self._whisper_frames = int(self.audio_encoder.input.shape[1])  # feature frames per window (whisper only)
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

    def _cached_impl(self, windows, embedding, skip_53, skip_26, skip_12, deblur: bool):
        import tensorflow as tf

        b = tf.shape(windows)[0]

        def tile(t):  # (1, ...) -> (B, ...)
            return tf.broadcast_to(t, tf.concat([[b], tf.shape(t)[1:]], axis=0))

        audio = self.audio_encoder(windows, training=False)
        frame = self.decoder([audio, tile(embedding), tile(skip_53), tile(skip_26), tile(skip_12)], training=False)
        return self._finish(frame, deblur)

    def _full_impl(self, windows, identity, deblur: bool):
        import tensorflow as tf

        identity = tf.broadcast_to(identity, tf.concat([tf.shape(windows)[:1], tf.shape(identity)[1:]], axis=0))
        frame = self.generator({self.audio_front_end: windows, "identity": identity}, training=False)["frame"]
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

    def identity_for(self, faces: Sequence[np.ndarray]):
        """`encode_identity` of any number of aligned faces, fitted to this generator's count (`fit_faces`)."""
        from keras_speech2vid.inference.inputs import fit_faces

        return self.encode_identity(fit_faces(faces, self.identity_images))

    def padded(self, windows: np.ndarray) -> np.ndarray:
        """`windows` (n ≤ batch_size of them, float32) padded with zero windows to batch_size."""
        n = len(windows)
        if n > self.batch_size:
            raise ValueError(f"at most batch_size={self.batch_size} windows per call. Received: {n}")
        windows = np.asarray(windows, np.float32)
        if n < self.batch_size:
            windows = np.concatenate([windows, np.zeros((self.batch_size - n,) + windows.shape[1:], np.float32)])
        return windows

    def run(self, windows: np.ndarray, identity, deblur: bool = True) -> np.ndarray:
        """(n, 109, 109, 3) float32 frames for n ≤ batch_size windows (padded to batch_size inside)."""
        n = len(windows)
        windows = self.padded(windows)
        deblur = bool(deblur and self.deblurrer is not None)
        if self.cache_identity:
            out = self._cached(windows, *identity, deblur)
        else:
            out = self._full(windows, identity, deblur)
        return np.asarray(out)[:n]

    def iter_windows(self, wave: np.ndarray, fps: float, alignment, offset: float, audio_config,
                     num_frames: int) -> Iterator[np.ndarray]:
        """The audio inputs of `num_frames` video frames, in chunks: MFCC windows (`audio.iter_audio_windows`)
        or, for a Whisper-front-end generator, Whisper feature windows (`whisper.iter_whisper_windows`)."""
        if self.audio_front_end == "whisper":
            from keras_speech2vid.whisper import iter_whisper_windows

            return iter_whisper_windows(wave, fps, num_frames, offset=offset, frames=self._whisper_frames)
        from keras_speech2vid.audio import iter_audio_windows

        return iter_audio_windows(wave, fps, alignment, offset, audio_config, num_frames=num_frames)

    def windows_at(self, wave: np.ndarray, frame_indices, fps: float, alignment, offset: float,
                   audio_config) -> np.ndarray:
        """The audio inputs of the given video frames only: the windows `iter_windows` gives them."""
        frame_indices = np.asarray(frame_indices, np.int64)
        if self.audio_front_end == "whisper":
            from keras_speech2vid.whisper import cut_windows, shared_encoder, whisper_features

            return cut_windows(whisper_features(wave, shared_encoder()), frame_indices, fps, offset,
                               self._whisper_frames)
        from keras_speech2vid import audio as A

        windows = A.gather_windows(A.padded_mfcc(wave, audio_config), frame_indices, fps, alignment, offset,
                                   audio_config)
        return np.asarray(windows, np.float32)

    def iter_frames(self, window_chunks: Iterable[np.ndarray], identity, deblur: bool = True) -> Iterator[np.ndarray]:
        """Re-batch window chunks to ``batch_size`` and yield (109, 109, 3) uint8 frames one at a time.

        With ``self.pipeline`` (the default) the windows and the model run in a background thread, up to two
        batches ahead, so that they overlap with what the caller does with each frame (blending, encoding).
        """
        frames = self._iter_frames(window_chunks, identity, deblur)
        return prefetch(frames, 2 * self.batch_size) if self.pipeline else frames

    def _iter_frames(self, window_chunks, identity, deblur):
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


_END = object()


def prefetch(items: Iterator, depth: int) -> Iterator:
    """Yield what `items` yields, produced by a background thread up to `depth` items ahead.

    An exception in the producer is raised here, in order; closing this generator (or an interrupt in the
    consumer) stops the producer after its current item. Model calls release the GIL, so they overlap.
    """
    buffer: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
    stop = threading.Event()

    def produce():
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put((_END, None))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which raises it
            buffer.put((_END, e))

    thread = threading.Thread(target=produce, name="speech2vid-frames", daemon=True)
    thread.start()
    try:
        while True:
            item, error = buffer.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full buffer
            try:
                buffer.get(timeout=0.05)
            except queue.Empty:
                pass
