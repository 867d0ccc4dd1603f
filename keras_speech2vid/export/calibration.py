"""What both int8 runtimes quantise from: the per-frame graph's inputs (`frame_specs`) and its representative
inputs (`calibration_feeds`: real speech windows with real identities)."""

from __future__ import annotations

import numpy as np

from keras_speech2vid.inference.engine import IDENTITY_INPUTS


def _engine(generator, deblurrer, batch_size: int = 1):
    from keras_speech2vid.inference.engine import FrameEngine

    return FrameEngine(generator, deblurrer, batch_size=batch_size)


def frame_specs(engine) -> list:
    """The named TensorSpecs of the per-frame graph: audio windows (dynamic batch), identity tensors (batch 1)."""
    import tensorflow as tf

    audio = engine.audio_encoder.input
    specs = [tf.TensorSpec((None, *audio.shape[1:]), tf.float32, name=engine.audio_front_end)]
    for name, tensor in zip(IDENTITY_INPUTS, engine.identity_encoder.outputs):
        specs.append(tf.TensorSpec((1, *tensor.shape[1:]), tf.float32, name=name))
    return specs


def _variants(face: np.ndarray) -> list[np.ndarray]:
    """The face, mirrored, darker and brighter: identity ranges from more than one rendering of one face."""
    f = face.astype(np.float32)
    return [face, face[:, ::-1], np.clip(f * 0.8, 0, 255).astype(np.uint8),
            np.clip(f * 1.15 + 10, 0, 255).astype(np.uint8)]


def calibration_feeds(generator, deblurrer=None, faces=None, audio=None, *, windows: int = 96,
                      batch: int = 8) -> list[dict[str, np.ndarray]]:
    """Representative inputs of the per-frame graph: real speech windows with real identities.

    `faces`: aligned 112×112 RGB uint8 faces, or None for the bundled demo face (aligned here) in four
    variants; `audio`: a media path or 16 kHz waveform, or None for the bundled demo speech. Each identity
    is paired with its own run of `windows` consecutive windows, in batches of `batch`.
    """
    from keras_speech2vid.inference.inputs import fit_faces, load_audio

    engine = _engine(generator, deblurrer)
    if faces is None or audio is None:
        from keras_speech2vid.inference.demo import demo_files
        from keras_speech2vid.inference.inputs import _align_still
        from keras_speech2vid.io import read_image

        face_path, speech_path = demo_files()
        if faces is None:
            faces = _variants(_align_still(read_image(face_path), source=str(face_path)).face)
        audio = speech_path if audio is None else audio
    wave = load_audio(audio, 16000)
    from keras_speech2vid.audio import num_video_frames

    total = num_video_frames(len(wave), 25.0)
    all_windows = np.concatenate(list(engine.iter_windows(wave, 25.0, None, 0.0, None, total)))
    feeds = []
    for i, face in enumerate(faces):
        identity = [np.asarray(t) for t in engine.encode_identity(fit_faces([face], engine.identity_images))]
        start = (i * windows) % max(len(all_windows) - windows, 1)
        run = all_windows[start:start + windows]
        for j in range(0, len(run), batch):
            feeds.append({engine.audio_front_end: run[j:j + batch], **dict(zip(IDENTITY_INPUTS, identity))})
    return feeds
