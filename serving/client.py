"""REST client for a Speech2Vid model served by TensorFlow Serving: face image(s) + audio file → mp4.

    python serving/client.py --face face.jpg --audio speech.wav --out talking.mp4 \\
        [--server http://localhost:8501] [--model speech2vid] [--version N] [--batch 32]

    # the same pipeline without a server, running the SavedModel in-process (TF Serving's JSON emulated):
    python serving/client.py --face face.jpg --audio speech.wav --out talking.mp4 --saved-model EXPORT/speech2vid/1

What it does:
  1. reads the model's signatures from ``GET /v1/models/<model>[/versions/<v>]/metadata`` (number of
     identity images, tensor shapes);
  2. aligns each face image to the 112×112 crop with `keras_speech2vid.face` (images that are already
     112×112 are taken as aligned); 1 image is repeated to fill the model's n identity images, else exactly
     n images are needed;
  3. decodes the audio (`keras_speech2vid.io.decode_audio`, 16 kHz mono) and cuts the 12×35 MFCC windows of
     every video frame at 25 fps (`keras_speech2vid.audio.audio_windows`);
  4. one ``encode_identity`` request, then ``decode`` requests of `--batch` windows, each sending the cached
     identity tensors with batch 1 (the server broadcasts them over the windows);
  5. writes the 109×109 frames with the audio to an mp4 (`keras_speech2vid.io.VideoWriter`, atomic).

Request format: the **columnar** ``{"signature_name": ..., "inputs": {name: nested list}}`` form of
``POST /v1/models/<model>[/versions/<v>]:predict``. The row (``instances``) form cannot be used: it needs
every input to share the batch dimension, and ``decode`` takes mfcc with batch B next to identity tensors
with batch 1. Responses are ``{"outputs": {name: nested list}}``, or ``{"outputs": nested list}`` when the
signature has a single output (TF Serving then drops the name), or ``{"error": message}``.

Every request is validated against the signature before it is sent: a missing or unknown input, a dtype
other than float32, a wrong shape, a wrong number of identity images, non-finite values or identity
pixels outside [0, 1] raise ValueError with a one-line message. Building and parsing requests are pure
functions (`build_predict_request`, `parse_predict_response`, `parse_metadata`) so they can be tested
without a server.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

DEFAULT_SERVER = "http://localhost:8501"
DEFAULT_MODEL = "speech2vid"
DEFAULT_BATCH = 32
FPS = 25.0
SAMPLE_RATE = 16000
IDENTITY_SIZE = 112
IDENTITY_OUTPUTS = ("embedding", "skip_53", "skip_26", "skip_12")
FRAMES = "frames"

_NUMPY_DTYPES = {"DT_FLOAT": np.float32, "DT_DOUBLE": np.float64, "DT_INT32": np.int32, "DT_INT64": np.int64}


class ServingError(RuntimeError):
    """The server answered with an error, or could not be reached."""


# ---------------------------------------------------------------------------------------------------------
# signatures: {signature_name: {"inputs": {key: (shape, dtype)}, "outputs": {key: (shape, dtype)}}}
# shape is a tuple with None for a dynamic dimension (-1 in the SignatureDef); dtype e.g. "DT_FLOAT".


def _tensor_info(info: dict) -> tuple[tuple, str]:
    shape_info = info.get("tensor_shape", info.get("tensorShape", {}))
    if shape_info.get("unknown_rank", shape_info.get("unknownRank", False)):
        shape = None
    else:
        dims = [int(d.get("size", -1)) for d in shape_info.get("dim", [])]
        shape = tuple(None if d < 0 else d for d in dims)
    return shape, info.get("dtype", "DT_INVALID")


def _one_line(message, limit: int = 500) -> str:
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[:limit] + " ..."


def parse_metadata(body) -> dict:
    """Signatures from a TF Serving ``GET .../metadata`` response (JSON text, bytes or dict)."""
    if isinstance(body, (str, bytes)):
        body = json.loads(body)
    if "error" in body:
        raise ServingError(f"metadata request failed: {_one_line(body['error'])}")
    try:
        defs = body["metadata"]["signature_def"]["signature_def"]
    except (KeyError, TypeError):
        raise ServingError("metadata response has no metadata.signature_def.signature_def") from None
    signatures = {}
    for name, sig in defs.items():
        if name.startswith("__"):  # __saved_model_init_op
            continue
        signatures[name] = {part: {k: _tensor_info(v) for k, v in sig.get(part, {}).items()}
                            for part in ("inputs", "outputs")}
    return signatures


def identity_images(signatures: dict) -> int:
    """Number of identity images n of the served model (its identity input has 3·n channels)."""
    shape, _ = signatures["encode_identity"]["inputs"]["identity"]
    return shape[-1] // 3


def audio_input(signatures: dict) -> str:
    """What the served generator hears: "mfcc" (the paper's windows) or "whisper" (Whisper feature windows)."""
    return "whisper" if "whisper" in signatures["decode"]["inputs"] else "mfcc"


# ---------------------------------------------------------------------------------------------------------
# requests and responses (pure)


def _shape_str(shape) -> str:
    return "(" + ", ".join("B" if d is None else str(d) for d in shape) + ")"


def validate_inputs(signature_name: str, inputs: dict, signatures: dict) -> None:
    """Raise ValueError (one line) unless `inputs` fit the signature exactly: names, float32, shapes,
    identity channels, batch sizes that the server can broadcast, finite values, identity in [0, 1]."""
    if signature_name not in signatures:
        raise ValueError(f"unknown signature {signature_name!r}; the model has {sorted(signatures)}")
    spec = signatures[signature_name]["inputs"]
    missing, unknown = sorted(set(spec) - set(inputs)), sorted(set(inputs) - set(spec))
    if missing or unknown:
        raise ValueError(f"{signature_name} takes inputs {sorted(spec)}; missing {missing}, unknown {unknown}")
    for key, (shape, dtype) in spec.items():
        value = inputs[key]
        if not isinstance(value, np.ndarray):
            raise ValueError(f"input {key!r} must be a numpy array, got {type(value).__name__}")
        expected = np.dtype(_NUMPY_DTYPES.get(dtype, np.float32))
        if value.dtype != expected:
            raise ValueError(f"input {key!r} has dtype {value.dtype}; {signature_name} takes {expected} ({dtype})")
        if shape is None:
            continue
        if key == "identity" and value.ndim == 4 and value.shape[1:3] == shape[1:3] and value.shape[3] != shape[3]:
            got, want = value.shape[3], shape[3]
            raise ValueError(f"identity has {got} channels ({got / 3:g} images); the model takes {want // 3} "
                             f"identity images ({want} channels)")
        if value.ndim != len(shape) or any(d is not None and d != v for d, v in zip(shape, value.shape)):
            raise ValueError(f"input {key!r} has shape {value.shape}; {signature_name} takes {_shape_str(shape)}")
        if value.ndim and value.shape[0] == 0:
            raise ValueError(f"input {key!r} is empty (batch 0)")
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            raise ValueError(f"input {key!r} holds NaN or infinite values")
    if "identity" in spec and "identity" in inputs:
        identity = inputs["identity"]
        if identity.size and (identity.min() < 0.0 or identity.max() > 1.0):
            raise ValueError(f"identity values must be in [0, 1], got [{identity.min():g}, {identity.max():g}]; "
                             "divide uint8 images by 255")
    if "mfcc" in spec:
        batch = inputs["mfcc"].shape[0]
        for key in spec:
            if key != "mfcc" and spec[key][0] is not None and spec[key][0][0] is None \
                    and inputs[key].shape[0] not in (1, batch):
                raise ValueError(f"input {key!r} has batch {inputs[key].shape[0]}; it must be 1 (broadcast) "
                                 f"or the mfcc batch {batch}")


def build_predict_request(signature_name: str, inputs: dict, signatures: dict) -> dict:
    """Validate `inputs` and return the columnar ``:predict`` request body (a JSON-ready dict)."""
    validate_inputs(signature_name, inputs, signatures)
    return {"signature_name": signature_name, "inputs": {k: v.tolist() for k, v in inputs.items()}}


def request_tensors(request, signatures: dict) -> tuple[str, dict]:
    """The inverse of `build_predict_request`: (signature_name, {key: numpy array}) from a request body,
    typed as the signature says. This is what TF Serving does with the JSON; tests and `LocalTransport` use it."""
    if isinstance(request, (str, bytes)):
        request = json.loads(request)
    name = request.get("signature_name", "serving_default")
    spec = signatures[name]["inputs"]
    inputs = request["inputs"]
    if not isinstance(inputs, dict):  # a single unnamed input
        (key,) = spec
        inputs = {key: inputs}
    return name, {k: np.asarray(v, dtype=_NUMPY_DTYPES.get(spec[k][1], np.float32)) for k, v in inputs.items()}


def parse_predict_response(body, output_keys=(FRAMES,)) -> dict:
    """{output key: float32 array} from a columnar ``:predict`` response (JSON text, bytes or dict).

    A single-output signature's response has no name: it is given the one key of `output_keys`.
    """
    if isinstance(body, (str, bytes)):
        body = json.loads(body)
    if "error" in body:
        raise ServingError(f"prediction failed: {_one_line(body['error'])}")
    if "outputs" not in body:
        raise ServingError(f"response has no 'outputs' (keys: {sorted(body)}); was the request columnar?")
    outputs = body["outputs"]
    if not isinstance(outputs, dict):
        if len(output_keys) != 1:
            raise ServingError(f"response has one unnamed output, expected {list(output_keys)}")
        outputs = {output_keys[0]: outputs}
    arrays = {k: np.asarray(v, dtype=np.float32) for k, v in outputs.items()}
    for k, v in arrays.items():  # a broken model must not become a video
        if not np.isfinite(v).all():
            bad = int((~np.isfinite(v)).sum())
            raise ServingError(f"the server's {k!r} holds NaN or infinite values ({bad} of {v.size})")
    return arrays


def response_body(outputs: dict) -> dict:
    """The columnar response TF Serving writes for `outputs` ({key: array}): unnamed when single."""
    if len(outputs) == 1:
        return {"outputs": np.asarray(next(iter(outputs.values()))).tolist()}
    return {"outputs": {k: np.asarray(v).tolist() for k, v in outputs.items()}}


# ---------------------------------------------------------------------------------------------------------
# transports


class RestTransport:
    """TF Serving's REST API at `server` (``http://host:8501``)."""

    def __init__(self, server: str = DEFAULT_SERVER, model: str = DEFAULT_MODEL, version: int | None = None,
                 timeout: float = 600.0):
        self.base = f"{server.rstrip('/')}/v1/models/{model}" + (f"/versions/{int(version)}" if version else "")
        self.timeout = timeout

    def _call(self, url: str, data: bytes | None = None) -> dict:
        req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                body = resp.read()
            try:
                return json.loads(body)
            except ValueError:  # an HTML page, a proxy's reply, a cut-off body
                raise ServingError(f"{url}: the reply is not JSON ({len(body)} bytes: {body[:80]!r})") from None
        except urllib.error.HTTPError as e:  # TF Serving puts {"error": ...} in the body of 4xx/5xx
            body = e.read()
            try:
                return json.loads(body)
            except ValueError:
                raise ServingError(f"{url}: HTTP {e.code} {body[:200]!r}") from None
        except (urllib.error.URLError, OSError) as e:
            raise ServingError(f"{url}: cannot reach the server ({getattr(e, 'reason', e)})") from None

    def metadata(self) -> dict:
        return self._call(f"{self.base}/metadata")

    def predict(self, request: dict) -> dict:
        return self._call(f"{self.base}:predict", json.dumps(request).encode())


class LocalTransport:
    """Runs requests through a SavedModel in this process, with TF Serving's JSON on both sides."""

    def __init__(self, saved_model_dir):
        import tensorflow as tf

        self.dir = Path(saved_model_dir)
        if not (self.dir / "saved_model.pb").is_file():
            raise ServingError(f"{self.dir}: not a SavedModel folder (no saved_model.pb)")
        self.loaded = tf.saved_model.load(str(self.dir))
        self._metadata = None

    def metadata(self) -> dict:
        """The metadata response TF Serving would give: the SignatureDefs of saved_model.pb as JSON."""
        if self._metadata is None:
            self._metadata = self._read_metadata()
        return self._metadata

    def _read_metadata(self) -> dict:
        from google.protobuf import json_format
        from tensorflow.core.protobuf import saved_model_pb2

        proto = saved_model_pb2.SavedModel.FromString((self.dir / "saved_model.pb").read_bytes())
        (meta_graph,) = [m for m in proto.meta_graphs if "serve" in m.meta_info_def.tags]
        defs = {k: json_format.MessageToDict(v, preserving_proto_field_name=True)
                for k, v in meta_graph.signature_def.items()}
        return {"model_spec": {"name": self.dir.parent.name, "version": self.dir.name},
                "metadata": {"signature_def": {"signature_def": defs}}}

    def predict(self, request: dict) -> dict:
        import tensorflow as tf

        text = json.dumps(request)  # what goes over the wire
        signatures = parse_metadata(self.metadata())
        try:
            name, inputs = request_tensors(text, signatures)
            outputs = self.loaded.signatures[name](**{k: tf.constant(v) for k, v in inputs.items()})
        except Exception as e:  # noqa: BLE001 - the server reports any failure as {"error": ...}
            return {"error": str(e).strip() or type(e).__name__}
        return json.loads(json.dumps(response_body({k: v.numpy() for k, v in outputs.items()})))


# ---------------------------------------------------------------------------------------------------------
# pipeline


def align_face_image(image: np.ndarray, source: str = "image") -> np.ndarray:
    """(112, 112, 3) uint8 aligned face of an RGB image; a 112×112 image is taken as already aligned."""
    if image.shape[:2] == (IDENTITY_SIZE, IDENTITY_SIZE):
        return image
    # HOOK: face alignment comes from keras_speech2vid.face; without it only pre-aligned faces are accepted.
    try:
        from keras_speech2vid.face import align_image
    except ImportError:
        raise ValueError(f"{source}: {image.shape[1]}x{image.shape[0]} is not an aligned 112x112 face, and "
                         "keras_speech2vid.face is not available to align it") from None
    return align_image(image, source=source).face


def identity_tensor(faces: list, n: int) -> np.ndarray:
    """(1, 112, 112, 3n) float32 in [0, 1] from 1 face (repeated n times) or n faces ((112, 112, 3) uint8)."""
    if len(faces) not in (1, n):
        raise ValueError(f"got {len(faces)} identity images; the model takes {n} (or 1, repeated {n} times)")
    faces = list(faces) * n if len(faces) == 1 else list(faces)
    for i, face in enumerate(faces):
        if face.shape != (IDENTITY_SIZE, IDENTITY_SIZE, 3):
            raise ValueError(f"identity image {i} has shape {face.shape}; expected (112, 112, 3)")
    stacked = np.concatenate([np.asarray(f, dtype=np.float32) / 255.0 for f in faces], axis=-1)
    return stacked[None]


def load_identity(paths, n: int) -> np.ndarray:
    """Read, align and stack face images into the (1, 112, 112, 3n) identity input."""
    from keras_speech2vid.io import read_image

    if len(paths) not in (1, n):
        raise ValueError(f"got {len(paths)} face images; the model takes {n} identity images (or 1, repeated)")
    return identity_tensor([align_face_image(read_image(p), source=str(p)) for p in paths], n)


def mfcc_windows(waveform: np.ndarray, alignment: str | None = None) -> np.ndarray:
    """(N, 12, 35, 1) float32 MFCC windows of a 16 kHz waveform, one per video frame at 25 fps."""
    from keras_speech2vid.audio import audio_windows

    return np.asarray(audio_windows(np.asarray(waveform, np.float32), fps=FPS, alignment=alignment), np.float32)


def whisper_windows(waveform: np.ndarray) -> np.ndarray:
    """(N, 18, 384) float32 Whisper feature windows of a 16 kHz waveform, one per video frame at 25 fps
    (the shipped Whisper encoder runs here, as the MFCC does for a paper model)."""
    from keras_speech2vid.audio import num_video_frames
    from keras_speech2vid.whisper import iter_whisper_windows

    waveform = np.asarray(waveform, np.float32)
    return np.concatenate(list(iter_whisper_windows(waveform, FPS, int(num_video_frames(len(waveform), FPS)))))


def generate_frames(transport, signatures: dict, identity: np.ndarray, windows: np.ndarray,
                    batch: int = DEFAULT_BATCH, progress=None) -> np.ndarray:
    """(N, 109, 109, 3) frames: one encode_identity request, then decode requests of `batch` windows."""
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    request = build_predict_request("encode_identity", {"identity": identity}, signatures)
    cached = parse_predict_response(transport.predict(request), IDENTITY_OUTPUTS)
    frames = []
    for start in range(0, len(windows), batch):
        inputs = {audio_input(signatures): windows[start:start + batch], **cached}
        request = build_predict_request("decode", inputs, signatures)  # validated before sending
        frames.append(parse_predict_response(transport.predict(request))[FRAMES])
        if progress:
            progress(min(start + batch, len(windows)), len(windows))
    return np.concatenate(frames, axis=0)


def write_video(frames: np.ndarray, outfile, audio, alignment: str | None = None) -> Path:
    """Write frames at 25 fps with `audio` (a path or a 16 kHz waveform). In "demo" alignment the
    frames follow the 1 s-padded audio, so the padded waveform is muxed."""
    from keras_speech2vid.io import VideoWriter, decode_audio

    if alignment == "demo":
        from keras_speech2vid.audio import pad_waveform

        wave = decode_audio(audio) if isinstance(audio, (str, Path)) else audio
        audio = np.asarray(pad_waveform(wave), np.float32)
    size = (frames.shape[2], frames.shape[1])
    with VideoWriter(outfile, FPS, size, audio=audio, sample_rate=SAMPLE_RATE) as writer:
        for frame in frames:
            writer.write(frame)
    return Path(outfile)


def run(transport, faces, audio_path, outfile, batch: int = DEFAULT_BATCH, alignment: str | None = None,
        progress=None) -> Path:
    """The whole client: face image path(s) + audio file → mp4 at `outfile`."""
    from keras_speech2vid.io import check_outfile, decode_audio

    outfile = check_outfile(outfile, [*faces, audio_path])  # never write over an input

    signatures = parse_metadata(transport.metadata())
    identity = load_identity([Path(p) for p in faces], identity_images(signatures))
    waveform = decode_audio(audio_path, SAMPLE_RATE)
    if audio_input(signatures) == "whisper":
        if alignment not in (None, "centre"):
            raise ValueError(f"a Whisper model's windows are centred on each frame; --alignment {alignment} "
                             "is for MFCC models")
        windows = whisper_windows(waveform)
    else:
        windows = mfcc_windows(waveform, alignment)
    frames = generate_frames(transport, signatures, identity, windows, batch, progress)
    return write_video(frames, outfile, audio_path, alignment)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Speech2Vid TF Serving REST client: face + audio -> mp4")
    parser.add_argument("--face", nargs="+", required=True, help="face image(s): 1, or the model's n")
    parser.add_argument("--audio", required=True, help="speech: any file ffmpeg reads")
    parser.add_argument("--outfile", "--out", dest="out", required=True, help="output mp4 (as `speech2vid generate --outfile`)")
    parser.add_argument("--server", default=DEFAULT_SERVER, help=f"TF Serving REST address ({DEFAULT_SERVER})")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"served model name ({DEFAULT_MODEL})")
    parser.add_argument("--version", type=int, default=None, help="model version (default: the latest)")
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="MFCC windows per decode request")
    parser.add_argument("--alignment", choices=("centre", "start", "demo"), default=None,
                        help="audio window placement; must match the model's training (default: centre)")
    parser.add_argument("--saved-model", default=None, help="run this SavedModel version folder in-process "
                                                            "instead of calling a server")
    args = parser.parse_args(argv)
    from keras_speech2vid.export.saved_model import MAX_BATCH

    if not 1 <= args.batch <= MAX_BATCH:  # the export refuses larger requests
        print(f"client: error: --batch must be 1..{MAX_BATCH} (the SavedModel's cap). Received: {args.batch}",
              file=sys.stderr)
        return 2

    def progress(done, total):
        print(f"\r{done}/{total} frames", end="", file=sys.stderr, flush=True)

    try:
        transport = LocalTransport(args.saved_model) if args.saved_model else \
            RestTransport(args.server, args.model, args.version)
        out = run(transport, args.face, args.audio, args.out, args.batch, args.alignment, progress)
    except (ValueError, ServingError) as e:
        print(f"\nclient: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # the package's own errors (no face, unreadable audio) are one line too
        if type(e).__module__.startswith("keras_speech2vid"):
            print(f"\nclient: error: {e}", file=sys.stderr)
            return 2
        raise
    print(f"\n{out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
