"""Export the generator (+ deblurrer) as a TF Serving SavedModel with named signatures.

Layout: ``EXPORT_DIR/<name>/<version>/`` (``saved_model.pb``, ``variables/``, ``assets.extra/``), the
versioned layout TF Serving polls. The version folder is written under a temporary name beside it and
renamed when complete, so a running server never loads a half-written export.

Signatures (all float32; ``B`` and ``N`` are dynamic; ``C = 3·n`` for n identity images, 15 for the
paper model; images are RGB in [0, 1], MFCC windows are raw c1..c12 as `keras_speech2vid.audio` makes them):

* ``serving_default`` and ``generate`` (one function):
  ``mfcc`` (B, 12, 35, 1), ``identity`` (B or 1, 112, 112, C) → ``frames`` (B, 109, 109, 3).
* ``encode_identity``: ``identity`` (B, 112, 112, C) → ``embedding`` (B, 1, 1, 256),
  ``skip_53`` (B, 53, 53, 96), ``skip_26`` (B, 26, 26, 96), ``skip_12`` (B, 12, 12, 256).
* ``decode``: ``mfcc`` (B, 12, 35, 1) and the four ``encode_identity`` outputs with batch 1 or B
  → ``frames`` (B, 109, 109, 3).
* ``from_waveform``: ``waveform`` (samples,) 16 kHz mono in [-1, 1), ``identity`` (1, 112, 112, C)
  → ``frames`` (N, 109, 109, 3).

Every signature checks its inputs in the graph (rank, the shape after the batch, 1 <= batch <= `MAX_BATCH`
= 64, no NaN or Inf): a malformed request gets an InvalidArgumentError, and the server goes on. Longer inputs are split
into requests of at most 64 windows (the client does), or sent as a waveform to ``from_waveform``.
(Channel counts are the paper preset's; a narrower config has its own widths.) ``frames`` are deblurred
when a deblurrer is exported, else the generator's output. Identity tensors of batch 1 are broadcast over
the audio batch, so a client encodes an identity once and sends only MFCC windows afterwards.
``from_waveform`` computes the MFCC in the graph (`keras_speech2vid.audio.audio_windows`, at the fps and
window alignment fixed at export time) and returns one frame per video frame (N ≈ 25 per second of
audio), decoding in chunks of ``chunk_size`` windows to bound memory. With the "centre" and "start"
alignments frame k starts at k/fps of the unpadded audio, so the video is muxed with the audio as given
("demo" follows the 1 s-padded audio instead, as run_demo.m).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import keras
import tensorflow as tf

from keras_speech2vid import audio
from keras_speech2vid.config import AudioConfig
from keras_speech2vid.errors import Speech2VidError
from keras_speech2vid.io import check_not_interrupted
from keras_speech2vid.models import IDENTITY_OUTPUTS, get_submodels
from keras_speech2vid.models.generator import audio_front_end

DEFAULT_NAME = "speech2vid"
DEFAULT_FPS = 25.0
DEFAULT_CHUNK_SIZE = 32
MAX_BATCH = 64  # windows per request: 64 take about 2.5 GB with the paper model; split longer inputs

#: Signature name → one-line description (the README and ``assets.extra/speech2vid.json`` repeat it).
SIGNATURES = {
    "serving_default": "mfcc (B,12,35,1) + identity (B or 1,112,112,C) -> frames (B,109,109,3); same as generate",
    "generate": "mfcc (B,12,35,1) + identity (B or 1,112,112,C) -> frames (B,109,109,3)",
    "encode_identity": "identity (B,112,112,C) -> embedding, skip_53, skip_26, skip_12",
    "decode": "mfcc (B,12,35,1) + embedding, skip_53, skip_26, skip_12 (batch 1 or B) -> frames (B,109,109,3)",
    "from_waveform": "waveform (samples,) 16 kHz + identity (1,112,112,C) -> frames (N,109,109,3), N video frames",
}
#: Output key of every signature that returns images.
FRAMES = "frames"


def _spec(shape, name):
    return tf.TensorSpec(shape, tf.float32, name=name)


def _checked(x, shape, name: str, max_batch: int):
    """`x` after in-graph checks of its rank, its shape after the batch and 1 <= batch <= max_batch.

    A served SavedModel does not enforce its signature's shapes: a wrong rank reached the convolutions
    and aborted the whole process. Failed checks are InvalidArgumentErrors, answered to that request only.
    """
    rank = tf.rank(x)
    checks = [tf.debugging.Assert(tf.equal(rank, len(shape) + 1),
                                  [f"{name} must have rank {len(shape) + 1} (batch, {shape}); got rank", rank])]
    with tf.control_dependencies(checks):
        dims = tf.shape(x)
    want = tf.constant(shape, tf.int32)
    checks = [tf.debugging.Assert(tf.reduce_all(tf.equal(dims[1:], want)),
                                  [f"{name} must be (batch, {shape}); got", dims]),
              tf.debugging.Assert(tf.logical_and(dims[0] >= 1, dims[0] <= max_batch),
                                  [f"{name} batch must be 1..{max_batch}; got", dims[0]])]
    with tf.control_dependencies(checks):
        return tf.debugging.check_numerics(x, f"{name} holds NaN or Inf")


def _broadcast_batch(x, batch):
    """Broadcast `x` of batch 1 or `batch` to `batch` (any other batch fails with a clear message)."""
    n = tf.shape(x)[0]
    check = tf.debugging.Assert(
        tf.logical_or(tf.equal(n, 1), tf.equal(n, batch)),
        ["identity tensors must have batch 1 or the batch of mfcc; got identity batch", n, "and mfcc batch", batch],
    )
    with tf.control_dependencies([check]):
        return tf.broadcast_to(x, tf.concat([[batch], tf.shape(x)[1:]], axis=0))


class Speech2VidModule(tf.Module):
    """The serving graph: tf.functions over the generator's sub-models and the deblurrer.

    Args:
        generator: a model built by `build_generator` (or loaded from its ``.keras`` file). A generator with the
            Whisper front end takes ``whisper`` (B, 18, 384) feature windows where the paper's takes ``mfcc``.
        deblurrer: a model built by `build_deblurrer`, or None to serve the generator's raw frames.
        whisper_encoder: for a Whisper generator, the log-mel → features encoder that ``from_waveform`` runs in
            the graph (default: the shipped one, `whisper.load_whisper_encoder`).
        fps, alignment, offset, audio_config: the window placement of ``from_waveform``
            (see `keras_speech2vid.audio.window_starts`); alignment None means `AudioConfig.alignment`.
        chunk_size: windows decoded at a time inside ``from_waveform``.
    """

    def __init__(self, generator: keras.Model, deblurrer: keras.Model | None = None, *, fps: float = DEFAULT_FPS,
                 alignment: str | None = None, offset: float = 0.0, audio_config: AudioConfig | None = None,
                 chunk_size: int = DEFAULT_CHUNK_SIZE, whisper_encoder: keras.Model | None = None):
        super().__init__()
        if int(chunk_size) < 1:
            raise ValueError(f"chunk_size must be >= 1. Received: chunk_size={chunk_size}")
        self.audio_encoder, self.identity_encoder, self.decoder = get_submodels(generator)
        self.deblurrer = deblurrer
        self.audio_config = audio_config or AudioConfig()
        self.alignment = self.audio_config.alignment if alignment is None else alignment
        if self.alignment not in audio.ALIGNMENTS:
            raise ValueError(f"alignment must be one of {audio.ALIGNMENTS}. Received: alignment={alignment!r}")
        self.fps = float(fps)
        self.offset = float(offset)
        self.chunk_size = int(chunk_size)

        # static shapes, read off the models; the audio input is "mfcc" (12, 35, 1) or "whisper" (18, 384)
        self.audio_key = audio_front_end(generator)
        mfcc_shape = tuple(self.audio_encoder.inputs[0].shape[1:])
        self.whisper = None
        if self.audio_key == "whisper":
            from keras_speech2vid.models.whisper import build_whisper_waveform_encoder, get_whisper_config
            from keras_speech2vid.whisper import load_whisper_encoder

            encoder = whisper_encoder if whisper_encoder is not None else load_whisper_encoder()
            c = get_whisper_config("tiny.en").replace(n_ctx=encoder.inputs[0].shape[1] // 2,
                                                      n_mels=encoder.inputs[0].shape[2])
            self.whisper = build_whisper_waveform_encoder(c, encoder)  # (W, 480000) -> (W, 1500, 384)
        identity_shape = tuple(self.identity_encoder.inputs[0].shape[1:])  # (112, 112, C)
        self.identity_shapes = {k: tuple(t.shape[1:]) for k, t in zip(IDENTITY_OUTPUTS, self.identity_encoder.outputs)}
        self.frame_shape = tuple(self.decoder.outputs[0].shape[1:])  # (109, 109, 3)
        self.mfcc_shape, self.identity_shape = mfcc_shape, identity_shape

        mfcc = _spec((None, *mfcc_shape), self.audio_key)
        identity = _spec((None, *identity_shape), "identity")
        cached = [_spec((None, *self.identity_shapes[k]), k) for k in IDENTITY_OUTPUTS]

        self.generate = tf.function(self._generate, input_signature=[mfcc, identity])
        self.encode_identity = tf.function(self._encode_identity, input_signature=[identity])
        self.decode = tf.function(self._decode, input_signature=[mfcc, *cached])
        self.from_waveform = tf.function(
            self._from_waveform, input_signature=[_spec((None,), "waveform"), _spec((1, *identity_shape), "identity")])

    # --- graph pieces (plain methods; wrapped as tf.functions above) ---

    def _frames(self, mfcc, embedding, skip_53, skip_26, skip_12):
        batch = tf.shape(mfcc)[0]
        cached = [_broadcast_batch(t, batch) for t in (embedding, skip_53, skip_26, skip_12)]
        audio_embedding = self.audio_encoder(mfcc, training=False)  # (B, 1, 1, 256)
        frames = self.decoder([audio_embedding, *cached], training=False)  # (B, 109, 109, 3)
        if self.deblurrer is not None:
            frames = self.deblurrer(frames, training=False)
        return frames

    def _encode_identity(self, identity):
        identity = _checked(identity, self.identity_shape, "identity", MAX_BATCH)
        return dict(zip(IDENTITY_OUTPUTS, self.identity_encoder(identity, training=False)))

    def _decode(self, mfcc, embedding, skip_53, skip_26, skip_12):
        mfcc = _checked(mfcc, self.mfcc_shape, self.audio_key, MAX_BATCH)
        cached = [_checked(t, self.identity_shapes[k], k, MAX_BATCH)
                  for k, t in zip(IDENTITY_OUTPUTS, (embedding, skip_53, skip_26, skip_12))]
        return {FRAMES: self._frames(mfcc, *cached)}

    def _generate(self, mfcc, identity):
        mfcc = _checked(mfcc, self.mfcc_shape, self.audio_key, MAX_BATCH)
        identity = _checked(identity, self.identity_shape, "identity", MAX_BATCH)
        cached = self.identity_encoder(identity, training=False)
        return {FRAMES: self._frames(mfcc, *cached)}

    def _whisper_windows(self, waveform):
        """(N, 18, 384) Whisper windows of every video frame: the windows of `whisper.iter_whisper_features`
        (30 s every 20 s, each keeping its middle) and `whisper.window_indices`, in the graph."""
        from keras_speech2vid.whisper import window_first

        size = self.whisper.inputs[0].shape[1]  # 480000 samples
        ctx = self.whisper.outputs[0].shape[1]  # 1500 frames
        hop, margin, step = 2 * ctx // 3, ctx // 6, size // ctx  # 1000, 250, 320
        samples = tf.shape(waveform, out_type=tf.int64)[0]
        count = 1 + tf.maximum(tf.constant(0, tf.int64), (samples - size + hop * step - 1) // (hop * step))
        padded = tf.pad(waveform, [[0, count * hop * step + size - samples]])
        starts = tf.range(count) * hop * step
        windows = tf.gather(padded, starts[:, None] + tf.range(size, dtype=tf.int64)[None])  # (W, 480000)
        encoded = tf.map_fn(lambda w: self.whisper(w[None], training=False)[0], windows, parallel_iterations=1,
                            fn_output_signature=tf.TensorSpec((ctx, self.mfcc_shape[1]), tf.float32))
        middles = tf.reshape(encoded[:-1, margin:ctx - margin], [-1, self.mfcc_shape[1]])
        features = tf.concat([encoded[0, :margin], middles, encoded[-1, margin:]], axis=0)
        total = (samples + step - 1) // step
        features = features[:total]  # (T, 384), frame t centred at 0.02·t s
        frames = audio.num_video_frames(samples, self.fps, "centre", self.audio_config)
        k = tf.range(tf.cast(frames, tf.int64), dtype=tf.float64)
        first = tf.cast(window_first(k, self.fps, self.offset, self.mfcc_shape[0], 50.0, tf.floor), tf.int64)
        idx = tf.clip_by_value(first[:, None] + tf.range(self.mfcc_shape[0], dtype=tf.int64)[None], 0, total - 1)
        return tf.gather(features, idx)

    def _from_waveform(self, waveform, identity):
        checks = [tf.debugging.Assert(tf.equal(tf.rank(waveform), 1), ["waveform must be (samples,); got rank",
                                                                        tf.rank(waveform)]),
                  tf.debugging.Assert(tf.size(waveform) >= 1, ["waveform is empty"])]
        with tf.control_dependencies(checks):
            waveform = tf.debugging.check_numerics(waveform, "waveform holds NaN or Inf")
        identity = _checked(identity, self.identity_shape, "identity", 1)
        if self.whisper is not None:
            windows = self._whisper_windows(waveform)
        else:
            windows = audio.audio_windows(waveform, fps=self.fps, alignment=self.alignment, offset=self.offset,
                                          config=self.audio_config)  # (N, 12, 35, 1)
        cached = self.identity_encoder(identity, training=False)  # batch 1, broadcast per chunk
        n = tf.shape(windows)[0]
        c = self.chunk_size
        padded = tf.pad(windows, [[0, (-n) % c]] + [[0, 0]] * len(self.mfcc_shape))
        chunks = tf.reshape(padded, [-1, c, *self.mfcc_shape])  # (ceil(N/c), c, 12, 35, 1)
        frames = tf.map_fn(lambda chunk: self._frames(chunk, *cached), chunks, parallel_iterations=1,
                           fn_output_signature=tf.TensorSpec((c, *self.frame_shape), tf.float32))
        return {FRAMES: tf.reshape(frames, [-1, *self.frame_shape])[:n]}

    def signatures(self) -> dict:
        """Signature name → concrete function, as `tf.saved_model.save` takes them."""
        generate = self.generate.get_concrete_function()
        return {
            "serving_default": generate,
            "generate": generate,
            "encode_identity": self.encode_identity.get_concrete_function(),
            "decode": self.decode.get_concrete_function(),
            "from_waveform": self.from_waveform.get_concrete_function(),
        }

    def metadata(self) -> dict:
        """What a client needs to know, written to ``assets.extra/speech2vid.json``."""
        return {
            "signatures": SIGNATURES,
            "identity_images": self.identity_shape[-1] // 3,
            "identity_shape": list(self.identity_shape),
            "audio_input": self.audio_key,
            "mfcc_shape": list(self.mfcc_shape),  # the audio input's shape (the name is kept for clients)
            "frame_shape": list(self.frame_shape),
            "identity_outputs": {k: list(v) for k, v in self.identity_shapes.items()},
            "deblurred": self.deblurrer is not None,
            "fps": self.fps,
            "alignment": self.alignment,
            "offset": self.offset,
            "sample_rate": self.audio_config.sample_rate,
        }


def next_version(model_dir) -> int:
    """1 + the largest integer-named folder in `model_dir` (1 when there is none)."""
    model_dir = Path(model_dir)
    versions = [int(p.name) for p in model_dir.iterdir() if p.is_dir() and re.fullmatch(r"\d+", p.name)] \
        if model_dir.is_dir() else []
    return max(versions, default=0) + 1


def export_saved_model(generator: keras.Model, export_dir, deblurrer: keras.Model | None = None, *,
                       name: str = DEFAULT_NAME, version: int | None = None, fps: float = DEFAULT_FPS,
                       alignment: str | None = None, offset: float = 0.0, audio_config: AudioConfig | None = None,
                       chunk_size: int = DEFAULT_CHUNK_SIZE) -> Path:
    """Write the SavedModel to ``export_dir/name/version`` and return that path.

    `version` None takes the next free version number. An existing version folder is never overwritten
    (`Speech2VidError`). The arguments after `name`/`version` are those of `Speech2VidModule`.
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"name must be letters, digits, '_', '.' or '-'. Received: name={name!r}")
    model_dir = Path(export_dir) / name
    version = next_version(model_dir) if version is None else int(version)
    if version < 1:
        raise ValueError(f"version must be a positive integer. Received: version={version}")
    target = model_dir / str(version)
    if target.exists():
        raise Speech2VidError(f"{target}: already exists; pick another --version")
    module = Speech2VidModule(generator, deblurrer, fps=fps, alignment=alignment, offset=offset,
                              audio_config=audio_config, chunk_size=chunk_size)
    model_dir.mkdir(parents=True, exist_ok=True)
    # a non-numeric temporary name: TF Serving ignores it until the rename
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}.tmp-", dir=model_dir))
    tmp.chmod(0o755)  # mkdtemp makes it 0700; a server running as another user must read it
    try:
        tf.saved_model.save(module, str(tmp), signatures=module.signatures())
        extra = tmp / "assets.extra"
        extra.mkdir(exist_ok=True)
        (extra / "speech2vid.json").write_text(json.dumps(module.metadata(), indent=2) + "\n")
        check_not_interrupted()
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
