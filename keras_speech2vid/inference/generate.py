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
     taken as an already aligned crop when its face is detected at the aligned position (not a
     thumbnail; ``aligned=None`` auto-detects, ``True``/``False`` forces); any
     other image is detected, optionally widened by ``pads`` (top, bottom, left, right pixels, Wav2Lip's
     convention), and aligned (spec §4). A video gives its identity frames itself: frames spread evenly
     over it, from frames with a face (`sample_identity_frames`).
  2. Model choice. One face uses the 1-image generator when the weights have one; otherwise the 5-image
     generator gets five faces: fewer are repeated cyclically (2 faces → 1 2 1 2 1), more are subsampled
     evenly. A weights folder with only a 1-image generator uses the first face.
  3. The identity branch runs **once**: its embedding and three skip tensors are cached and broadcast
     over every batch (`FrameEngine`), so each frame costs only the audio encoder, the decoder and the
     deblurrer (applied unless ``deblur=False`` or absent).
  4. Audio. Decoded to 16 kHz mono; the MFCC windows are computed in chunks of `audio.CHUNK_FRAMES` video
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

import os
import warnings
from pathlib import Path

import numpy as np

from keras_speech2vid.config import AudioConfig
from keras_speech2vid.errors import ImageError, MediaError, NoFaceError
from keras_speech2vid.inference.engine import DEFAULT_BATCH, FrameEngine
from keras_speech2vid.inference.int8_engine import INT8_RUNTIMES
from keras_speech2vid.models.generator import identity_images as _identity_images
from keras_speech2vid.inference.inputs import (
    Background,
    _align_still,
    _check_pads,
    _is_video,
    _resize,
    _scale_box,
    load_audio,
    sample_identity_frames,
)
from keras_speech2vid.inference.stream import FrameStream
from keras_speech2vid.io import check_outfile

PRECISIONS = ("fp32", "int8")

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
      precision: "fp32" (Keras) or "int8" (the per-frame graph quantised, made once per set of weights
        and cached; `keras_speech2vid.inference.int8_engine`), run by `int8_runtime`: "onnxruntime",
        "tflite", or "auto" (the one measured faster on this kind of CPU).
    """

    def __init__(self, generator=None, generator_1img=None, deblurrer=None, *, fps: float = 25.0,
                 alignment: str | None = None, offset: float = 0.0, audio_config: AudioConfig | None = None,
                 batch_size: int = DEFAULT_BATCH, jit_compile: bool = False, cache_identity: bool = True,
                 precision: str = "fp32", int8_runtime: str = "auto"):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}. Received: precision={precision!r}")
        if int8_runtime not in INT8_RUNTIMES:
            raise ValueError(f"int8_runtime must be one of {INT8_RUNTIMES}. Received: int8_runtime={int8_runtime!r}")
        self.precision, self.int8_runtime = precision, int8_runtime
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
        from keras_speech2vid.weights import load_models

        models = load_models(weights_dir)
        return cls(models.generator, generator_1img=models.generator_1img, deblurrer=models.deblurrer, **kwargs)

    @classmethod
    def from_preset(cls, preset: str = "demo", **kwargs) -> "Speech2Vid":
        """Load named weights (keras-hub style): "demo", the bundled weights; or a weights folder path."""
        from keras_speech2vid.weights import preset_dir

        return cls.load(preset_dir(preset), **kwargs)

    # -- helpers ------------------------------------------------------------------------------------------

    def engine(self, identity_images: int, batch_size: int | None = None) -> FrameEngine:
        """The (cached) `FrameEngine` of the generator taking `identity_images` faces."""
        batch_size = int(batch_size or self.batch_size)
        key = (identity_images, batch_size)
        if key not in self._engines and self.precision == "int8":
            from keras_speech2vid.export.int8 import int8_engine  # the quantised file: made once, cached

            self._engines[key] = int8_engine(self.generators[identity_images], self.deblurrer,
                                             batch_size=batch_size, runtime=self.int8_runtime)
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
        from keras_speech2vid.face import FACE_SIZE, canonical_landmarks, looks_aligned
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
        crops, background, skipped = [], None, []
        for item in faces:
            source = str(item) if isinstance(item, (str, os.PathLike)) else "image"
            if isinstance(item, (str, os.PathLike)):
                if _is_video(item):
                    raise ImageError(f"{item}: a video can only be given as the one --face")
                image = read_image(item)
            else:
                from keras_speech2vid.face.detect import as_rgb

                image = as_rgb(np.asarray(item))
            if aligned is None:  # a 112×112 image is an aligned crop unless its face is elsewhere
                is_aligned = image.shape[:2] == (FACE_SIZE, FACE_SIZE) and looks_aligned(image)
            else:
                is_aligned = bool(aligned)
            if is_aligned:
                if image.shape[:2] != (FACE_SIZE, FACE_SIZE):
                    raise ImageError(f"{source}: an aligned face must be 112×112, not "
                                     f"{image.shape[1]}×{image.shape[0]}")
                crops.append(np.ascontiguousarray(image))
                if background is None:
                    background = Background(image, np.hstack([np.eye(2), np.zeros((2, 1))]),
                                            canonical_landmarks(112))
                continue
            image = _resize(image, resize_factor)
            try:
                face = _align_still(image, box=_scale_box(box, resize_factor), pads=pads, source=source)
            except NoFaceError as e:
                if aligned is None and image.shape[:2] == (FACE_SIZE, FACE_SIZE):
                    e = NoFaceError(f"{e} (if it is an aligned 112×112 crop, say so: --aligned, aligned=True)")
                if len(faces) == 1:
                    raise e from None
                skipped.append(str(e))  # one bad image of several: the others still give the identity
                continue
            crops.append(face.face)
            if background is None:
                background = Background(image, face.matrix, face.landmarks)
        if not crops:
            raise NoFaceError(f"no face found in any of the {len(faces)} images: " + "; ".join(skipped))
        for reason in skipped:
            warnings.warn(f"skipped an identity image: {reason}", stacklevel=2)
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
          aligned: treat the images as aligned 112×112 crops (None: auto, see `face.looks_aligned`).
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
        identity = engine.identity_for(crops)
        num_frames = A.num_video_frames(len(wave), fps, self.alignment, self.audio_config)
        if full_frame:
            h, w = background.image.shape[:2]
            background.mask = B.region_mask(background.landmarks, background.matrix, (h, w), region)
            size = (w, h)
        else:
            size = (TARGET_SIZE, TARGET_SIZE)

        def make():
            windows = engine.iter_windows(wave, fps, self.alignment, self.offset, self.audio_config, num_frames)
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
        listed = faces if isinstance(faces, (list, tuple)) else [faces]
        outfile = check_outfile(outfile, [*listed, audio])
        return self.generate(faces, audio, **kwargs).write(outfile)

    def redub(self, video, audio, outfile, **kwargs) -> Path:
        """Re-dub `video` with `audio` into `outfile`; see `keras_speech2vid.inference.redub.redub_frames`."""
        from keras_speech2vid.inference.redub import redub_frames

        outfile = check_outfile(outfile, [video, audio])
        return redub_frames(self, video, audio, **kwargs).write(outfile)
