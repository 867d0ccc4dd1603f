"""Re-dubbing: make the person in a video say new speech (spec §5, "Re-dubbing", a proposed pipeline [I]).

Per output frame k (at the video's frame rate, ``round(audio duration · fps)`` frames):
  1. Background: the video's frame, tracked (`keras_speech2vid.face.track.track_video`: shots, detection,
     KLT, 68 landmarks, the frame → 112 alignment matrix, smoothed over ±2 frames unless ``smooth=False``).
     Audio longer than the video: the video plays forward, then backward, then forward … (ping-pong:
     frames 0 1 … M−1 M−2 … 1 0 1 …, no jump cut at the loop); the frames are kept in a temporary raw
     file on disk for the way back, so memory stays bounded. Audio shorter than the video: the video is
     trimmed. ``static=True``: only the first frame is used, for every output frame (Wav2Lip's
     ``--static``).
  2. The face is generated from the new audio's window for frame k and ``identity_frames`` identity
     images taken from the video itself (spread over it, from frames with a face;
     `keras_speech2vid.inference.inputs.sample_identity_frames`); with ``static`` the first frame's face.
     The identity branch runs once.
  3. It is warped back through the inverse of the frame's (smoothed) alignment, accounting for the 1-pixel
     109 ↔ 112 offset, and blended inside the region mask (`keras_speech2vid.inference.blend`): by default
     Poisson blending of the lower face only, from just below the eyes (``region="lower"``).
  4. Frames without a face pass through unchanged.
The frames stream to ffmpeg with the new audio muxed as AAC (`Speech2Vid.redub`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator

import numpy as np

from keras_speech2vid.errors import MediaError, NoFaceError


def ping_pong(k: int, length: int) -> int:
    """Source frame of output frame `k` when a `length`-frame video loops forward and back (0 1 2 1 0 1 …)."""
    if length <= 1:
        return 0
    period = 2 * length - 2
    p = k % period
    return p if p < length else period - p


def _static_background(video, info, num_frames: int, box=None):
    """The first frame and its face record, `num_frames` times (Wav2Lip's --static)."""
    from keras_speech2vid.face import FaceRecord, align_image
    from keras_speech2vid.io import iter_frames

    frames = iter_frames(video, info)
    try:
        frame = next(frames, None)
    finally:
        frames.close()
    if frame is None:
        raise MediaError(f"{video}: no video frames")
    aligned = align_image(frame, box=box, source=f"{video} frame 0")
    record = FaceRecord(index=0, shot=0, track=0, has_face=True, box=aligned.box, landmarks=aligned.landmarks,
                        matrix=aligned.matrix, detected=True)
    return aligned.face, ((frame, record) for _ in range(num_frames))


def _looped_background(video, num_frames: int, expected: int | None, fps: float, box=None, smooth=None,
                       config=None) -> Iterator[tuple[np.ndarray, object]]:
    """(frame, FaceRecord) for output frames 0..num_frames−1: tracked once, trimmed or ping-pong looped.

    The frames go to a temporary file only when the video may be shorter than the output (`expected`, the
    header's frame count, is unknown or less than `num_frames` + 1 s); if a video turns out shorter than
    its header said and was not cached, its last frame is held.
    """
    from keras_speech2vid.face import track_video

    cache_needed = expected is None or expected < num_frames + int(round(fps))
    with contextlib.ExitStack() as stack:
        cache = None
        if cache_needed:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="speech2vid-redub-"))
            cache = stack.enter_context(open(os.path.join(folder, "frames.rgb"), "w+b"))
        records = []
        stream = track_video(video, box=box, smooth=smooth, config=config)
        stack.callback(stream.close)
        count, last, shape = 0, None, None
        for frame, record in stream:
            if count >= num_frames:
                break
            if cache is not None:
                cache.write(np.ascontiguousarray(frame).tobytes())
                records.append(record)
            shape, last = frame.shape, (frame, record)
            count += 1
            yield frame, record
        stream.close()
        if count == 0:
            raise MediaError(f"{video}: no video frames")
        if count >= num_frames:
            return
        size = int(np.prod(shape))
        for k in range(count, num_frames):
            if cache is None:
                yield last
                continue
            p = ping_pong(k, len(records))
            cache.seek(p * size)
            frame = np.frombuffer(cache.read(size), dtype=np.uint8).reshape(shape)
            yield frame, records[p]


def redub_frames(s2v, video, audio, *, wave=None, region: str = "lower", blend: str = "poisson",
                 smooth: bool | None = None, identity_frames: int = 5, identity_faces=None, static: bool = False,
                 box=None, deblur: bool = True, batch_size: int | None = None, progress: bool = False,
                 track_config=None):
    """The re-dubbed frames of `video` speaking `audio`, as a `FrameStream` (see the module doc).

    Args:
      s2v: a `Speech2Vid`.
      video: the video file to re-dub; audio: a media file (or a 16 kHz waveform) with the new speech.
      wave: the already decoded waveform of `audio` (optional).
      region: "lower" (default) or "full"; blend: "poisson" (default), "alpha" or "none".
      smooth: smooth the alignment over time (default: the tracker's, on); ``False`` = ``--nosmooth``.
      identity_frames: how many identity frames to take from the video (the generator is chosen by this
        count: 1 uses the 1-image generator when there is one).
      identity_faces: aligned faces to use instead of sampling the video.
      static: use only the first frame of the video.
      box: (top, bottom, left, right) hint for the face to follow.
      deblur, batch_size, progress: as `Speech2Vid.generate`.
      track_config: a `keras_speech2vid.face.TrackConfig`.

    Raises:
      MediaError: the video is unreadable or has no video stream; AudioError: bad audio;
      NoFaceError: no face in the identity frames.
    """
    from keras_speech2vid import audio as A
    from keras_speech2vid.inference import blend as B
    from keras_speech2vid.inference.inputs import load_audio, sample_identity_frames
    from keras_speech2vid.inference.stream import FrameStream
    from keras_speech2vid.io import probe

    B._check("region", region, B.REGIONS)
    B._check("blend", blend, B.BLENDS)
    if int(identity_frames) < 1:
        raise ValueError(f"identity_frames must be >= 1. Received: identity_frames={identity_frames}")
    info = probe(video)
    if not info.has_video:
        raise MediaError(f"{video}: no video stream")
    if info.width and info.height:  # a box that misses every frame is an error, not "no face found"
        from keras_speech2vid.face.detect import check_box

        check_box(box, info.width, info.height, str(video))
    if wave is None:
        wave = load_audio(audio, s2v.audio_config.sample_rate)
    fps = info.fps or s2v.fps
    num_frames = A.num_video_frames(len(wave), fps, s2v.alignment, s2v.audio_config)
    expected = int(round(info.duration * fps)) if info.duration else None

    if static:
        first_face, background = _static_background(video, info, num_frames, box=box)
        faces = identity_faces if identity_faces is not None else [first_face]
    else:
        faces = identity_faces
        if faces is None:
            faces, _ = sample_identity_frames(video, identity_frames, box=box)
        background = None
    if not faces:
        raise NoFaceError(f"{video}: no face for the identity")
    count = s2v.choose_generator(len(faces))
    engine = s2v.engine(count, batch_size)
    identity = engine.identity_for(faces)

    def make():
        frames = background if background is not None else _looped_background(
            video, num_frames, expected, fps, box=box, smooth=smooth, config=track_config)
        windows = engine.iter_windows(wave, fps, s2v.alignment, s2v.offset, s2v.audio_config, num_frames)
        try:
            for face, (frame, record) in zip(engine.iter_frames(windows, identity, deblur), frames):
                if not record.has_face:
                    yield frame
                    continue
                yield B.paste_face(frame, face, record.matrix, landmarks=record.landmarks, region=region,
                                   method=blend)
        finally:
            if hasattr(frames, "close"):
                frames.close()

    source = audio if isinstance(audio, (str, os.PathLike)) else wave
    return FrameStream(make, num_frames, (info.width, info.height), fps, source, progress=progress,
                       desc="re-dubbing")
