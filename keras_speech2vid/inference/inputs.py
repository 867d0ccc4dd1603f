"""Inputs of generation and re-dubbing: audio (path or waveform) and faces (images, arrays, videos → aligned)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import Sequence

import numpy as np

from keras_speech2vid.errors import AudioError, ImageError, MediaError, NoFaceError

IDENTITY_TRIES = 8  # frames tried per segment when sampling identity frames from a video


def load_audio(audio, sample_rate: int = 16000) -> np.ndarray:
    """A 1-D float32 waveform from a media file path or an array (taken as `sample_rate` mono)."""
    from keras_speech2vid.io import decode_audio

    if isinstance(audio, (str, os.PathLike)):
        return decode_audio(audio, sample_rate)
    wave = np.asarray(audio, dtype=np.float32)
    if wave.ndim != 1 or wave.size == 0:
        raise AudioError(f"audio must be a file or a non-empty 1-D waveform. Received: shape={wave.shape}")
    if not np.isfinite(wave).all():
        raise AudioError("the audio waveform holds NaN or infinite samples")
    return wave


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
    from keras_speech2vid.face.detect import no_box

    return None if no_box(box) else [float(v) / factor for v in box]


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
    from keras_speech2vid.face.detect import check_box
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
    if info.width and info.height:  # a box that misses every frame is an error, not "no face found"
        check_box(box, info.width / resize_factor, info.height / resize_factor, str(video))
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
