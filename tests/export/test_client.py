"""serving/client.py: request JSON → tensors → signature, validation before sending, the whole client
offline (LocalTransport), and a live TF Serving test when tensorflow_model_server is installed."""

import json
import shutil
import socket
import subprocess
import time
import urllib.request
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.export.conftest import DATA, ROOT, TOL, keras_frames, sample_inputs

FACES = sorted((DATA / "faceimg1").glob("faceimg1_*.png"))


@pytest.fixture(scope="module")
def transport(client, tiny_export):
    return client.LocalTransport(tiny_export)


@pytest.fixture(scope="module")
def signatures(client, transport):
    return client.parse_metadata(transport.metadata())


class RecordingTransport:
    """Counts what would be sent; used to prove that bad inputs fail before any request."""

    def __init__(self, inner):
        self.inner, self.sent = inner, []

    def metadata(self):
        return self.inner.metadata()

    def predict(self, request):
        self.sent.append(request["signature_name"])
        return self.inner.predict(request)


def _signature(loaded, name, inputs):
    import tensorflow as tf

    return {k: v.numpy() for k, v in loaded.signatures[name](**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def test_metadata_parsed(client, signatures):
    assert set(signatures) == {"serving_default", "generate", "encode_identity", "decode", "from_waveform"}
    assert signatures["decode"]["inputs"]["mfcc"] == ((None, 12, 35, 1), "DT_FLOAT")
    assert signatures["decode"]["inputs"]["skip_53"] == ((None, 53, 53, 8), "DT_FLOAT")
    assert signatures["from_waveform"]["inputs"]["identity"] == ((1, 112, 112, 15), "DT_FLOAT")
    assert signatures["generate"]["outputs"] == {"frames": ((None, 109, 109, 3), "DT_FLOAT")}
    assert client.identity_images(signatures) == 5
    # TF Serving's camelCase variant parses the same
    camel = {"metadata": {"signature_def": {"signature_def": {"decode": {"inputs": {"mfcc": {
        "dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": "-1"}, {"size": "12"}, {"size": "35"}, {"size": "1"}]}}}}}}}}
    assert client.parse_metadata(json.dumps(camel))["decode"]["inputs"]["mfcc"] == ((None, 12, 35, 1), "DT_FLOAT")


@pytest.mark.parametrize("batch", [1, 7])
def test_request_json_through_signature(client, signatures, tiny_models, tiny_loaded, batch):
    """The client's JSON, parsed back to tensors and run through the loaded signatures, gives the frames."""
    mfcc, identity = sample_inputs(batch, seed=20 + batch)
    expected = keras_frames(*tiny_models, mfcc, identity[:1])

    text = json.dumps(client.build_predict_request("encode_identity", {"identity": identity[:1]}, signatures))
    name, inputs = client.request_tensors(text, signatures)
    assert name == "encode_identity" and np.array_equal(inputs["identity"], identity[:1])  # lossless JSON
    cached = _signature(tiny_loaded, name, inputs)

    text = json.dumps(client.build_predict_request("decode", {"mfcc": mfcc, **cached}, signatures))
    name, inputs = client.request_tensors(text, signatures)
    assert name == "decode" and inputs["mfcc"].dtype == np.float32 and np.array_equal(inputs["mfcc"], mfcc)
    frames = _signature(tiny_loaded, name, inputs)["frames"]
    assert np.abs(frames - expected).max() <= TOL

    text = json.dumps(client.build_predict_request("generate", {"mfcc": mfcc, "identity": identity}, signatures))
    frames = _signature(tiny_loaded, *client.request_tensors(text, signatures))["frames"]
    assert np.abs(frames - keras_frames(*tiny_models, mfcc, identity)).max() <= TOL

    # and the response in TF Serving's single-output form parses back exactly
    body = json.dumps(client.response_body({"frames": frames}))
    assert np.array_equal(client.parse_predict_response(body)["frames"], frames)


def test_generate_frames_matches_keras(client, signatures, transport, tiny_models):
    mfcc, identity = sample_inputs(9, seed=30)
    recorder = RecordingTransport(transport)
    frames = client.generate_frames(recorder, signatures, identity[:1], mfcc, batch=4)
    assert recorder.sent == ["encode_identity", "decode", "decode", "decode"]
    assert np.abs(frames - keras_frames(*tiny_models, mfcc, identity[:1])).max() <= TOL


def test_parse_response_errors(client):
    with pytest.raises(client.ServingError, match="prediction failed: bad thing happened"):
        client.parse_predict_response('{"error": "bad thing\\n happened"}')
    with pytest.raises(client.ServingError, match="no 'outputs'"):
        client.parse_predict_response({"predictions": [1.0]})
    out = client.parse_predict_response({"outputs": {"a": [1.0], "b": [[2.0]]}}, ("a", "b"))
    assert out["a"].dtype == np.float32 and out["b"].shape == (1, 1)


BAD_REQUESTS = {
    "wrong mfcc shape": ("decode", {"mfcc": ("shape", (2, 12, 34, 1))}, r"input 'mfcc' has shape \(2, 12, 34, 1\); decode takes \(B, 12, 35, 1\)"),
    "mfcc rank": ("generate", {"mfcc": ("shape", (12, 35, 1))}, r"input 'mfcc' has shape \(12, 35, 1\)"),
    "float64": ("generate", {"mfcc": ("dtype", np.float64)}, r"input 'mfcc' has dtype float64; generate takes float32"),
    "uint8 identity": ("generate", {"identity": ("dtype", np.uint8)}, r"input 'identity' has dtype uint8"),
    "3 identity images": ("generate", {"identity": ("channels", 9)}, r"identity has 9 channels \(3 images\); the model takes 5 identity images \(15 channels\)"),
    "6 identity images": ("encode_identity", {"identity": ("channels", 18)}, r"the model takes 5 identity images"),
    "identity 0-255": ("generate", {"identity": ("scale", 255.0)}, r"identity values must be in \[0, 1\]"),
    "nan": ("generate", {"mfcc": ("nan", None)}, r"input 'mfcc' holds NaN"),
    "batch mismatch": ("decode", {"embedding": ("batch", 2)}, r"input 'embedding' has batch 2; it must be 1 \(broadcast\) or the mfcc batch 3"),
    "from_waveform batch": ("from_waveform", {"identity": ("batch", 2)}, r"input 'identity' has shape \(2, 112, 112, 15\); from_waveform takes \(1, 112, 112, 15\)"),
    "missing input": ("decode", {"skip_12": ("drop", None)}, r"missing \['skip_12'\]"),
    "unknown input": ("generate", {"extra": ("add", None)}, r"unknown \['extra'\]"),
    "not an array": ("generate", {"mfcc": ("list", None)}, r"input 'mfcc' must be a numpy array"),
}


def _good_inputs(signature, signatures):
    rng = np.random.default_rng(0)
    batch = {"from_waveform": None}.get(signature, 3)
    inputs = {}
    for key, (shape, _) in signatures[signature]["inputs"].items():
        shape = tuple((batch if key == "mfcc" or key == "identity" and signature == "generate" else 1)
                      if d is None else d for d in shape) if key != "waveform" else (1600,)
        inputs[key] = rng.uniform(0, 1, shape).astype(np.float32)
    return inputs


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_requests_fail_before_sending(client, signatures, transport, case):
    signature, changes, message = BAD_REQUESTS[case]
    inputs = _good_inputs(signature, signatures)
    client.build_predict_request(signature, dict(inputs), signatures)  # the unmodified request is fine
    for key, (kind, arg) in changes.items():
        x = inputs.get(key)
        if kind == "shape":
            inputs[key] = np.zeros(arg, np.float32)
        elif kind == "dtype":
            inputs[key] = x.astype(arg)
        elif kind == "channels":
            inputs[key] = np.zeros((*x.shape[:3], arg), np.float32)
        elif kind == "scale":
            inputs[key] = x * arg
        elif kind == "nan":
            x[0, 0, 0, 0] = np.nan
        elif kind == "batch":
            inputs[key] = np.concatenate([x] * arg)
        elif kind == "drop":
            del inputs[key]
        elif kind == "add":
            inputs[key] = np.zeros(1, np.float32)
        elif kind == "list":
            inputs[key] = x.tolist()
    recorder = RecordingTransport(transport)
    with pytest.raises(ValueError, match=message) as info:
        request = client.build_predict_request(signature, inputs, signatures)
        recorder.predict(request)
    assert "\n" not in str(info.value)
    assert recorder.sent == []


def test_wrong_number_of_face_images(client, signatures, transport):
    recorder = RecordingTransport(transport)
    with pytest.raises(ValueError, match=r"got 3 face images; the model takes 5 identity images"):
        client.run(recorder, FACES[:3], DATA / "tmp.wav", "unused.mp4")
    assert recorder.sent == []
    face = np.zeros((112, 112, 3), np.uint8)
    with pytest.raises(ValueError, match=r"got 2 identity images; the model takes 5"):
        client.identity_tensor([face, face], 5)
    with pytest.raises(ValueError, match=r"identity image 0 has shape \(100, 100, 3\)"):
        client.identity_tensor([np.zeros((100, 100, 3), np.uint8)], 5)
    one = client.identity_tensor([face + 255], 5)
    assert one.shape == (1, 112, 112, 15) and one.dtype == np.float32 and one.max() == 1.0


def _write_wav(path, waveform, rate=16000):
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes((np.clip(waveform, -1, 1 - 2 ** -15) * 32768).astype("<i2").tobytes())


def test_client_writes_mp4_offline(client, transport, tiny_models, tmp_path):
    """The whole client (aligned faces + audio file → mp4) through LocalTransport."""
    from keras_speech2vid.io import decode_audio, iter_frames, probe

    speech = tmp_path / "speech.wav"
    _write_wav(speech, decode_audio(DATA / "tmp.wav")[16000:16000 + 32000])  # 2 s
    out = tmp_path / "talking.mp4"
    assert client.run(transport, FACES, speech, out, batch=16) == out
    info = probe(out)
    assert info.has_video and info.has_audio and (info.width, info.height) == (110, 110)  # 109 padded to even
    assert abs(info.duration - 2.0) < 0.1
    frames = list(iter_frames(out))
    assert len(frames) == 50
    # the video's frames are the model's (up to H.264 loss)
    windows = client.mfcc_windows(decode_audio(speech))
    identity = client.load_identity(FACES, 5)
    expected = keras_frames(*tiny_models, windows, identity)
    got = np.stack(frames)[:, :109, :109].astype(np.float32) / 255.0
    assert np.abs(got - expected).mean() < 0.02


def test_client_main_offline(client, tiny_export, tmp_path, capsys):
    from keras_speech2vid.io import decode_audio

    speech = tmp_path / "s.wav"
    _write_wav(speech, decode_audio(DATA / "tmp.wav")[:8000])
    out = tmp_path / "o.mp4"
    assert client.main(["--face", str(FACES[0]), "--audio", str(speech), "--out", str(out),
                        "--saved-model", str(tiny_export)]) == 0
    assert out.is_file()
    assert client.main(["--face", *map(str, FACES[:2]), "--audio", str(speech), "--out", str(out),
                        "--saved-model", str(tiny_export)]) == 2
    assert "got 2 face images" in capsys.readouterr().err


def test_unreachable_server(client):
    transport = client.RestTransport("http://127.0.0.1:9", timeout=5)
    with pytest.raises(client.ServingError, match="cannot reach the server"):
        transport.metadata()


def test_serving_files():
    """models.config names the model the export writes, and the README has the exact commands."""
    from keras_speech2vid.export import DEFAULT_NAME

    config = (ROOT / "serving" / "models.config").read_text()
    assert f'name: "{DEFAULT_NAME}"' in config and f'base_path: "/models/{DEFAULT_NAME}"' in config
    readme = (ROOT / "serving" / "README.md").read_text()
    assert "tensorflow_model_server --rest_api_port=8501" in readme
    assert "docker run" in readme and "tensorflow/serving" in readme
    assert "speech2vid export" in readme


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("tensorflow_model_server") is None,
                    reason="tensorflow_model_server is not on PATH")
def test_live_tf_serving(client, tiny_export, tiny_models, tmp_path):
    port = _free_port()
    log = open(tmp_path / "server.log", "wb")
    server = subprocess.Popen(
        ["tensorflow_model_server", f"--rest_api_port={port}", f"--port={_free_port()}",
         "--model_name=speech2vid", f"--model_base_path={Path(tiny_export).parent}"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/v1/models/speech2vid"
        for _ in range(120):
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if b"AVAILABLE" in resp.read():
                        break
            except OSError:
                pass
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            time.sleep(0.5)
        transport = client.RestTransport(f"http://127.0.0.1:{port}")
        signatures = client.parse_metadata(transport.metadata())
        mfcc, identity = sample_inputs(5, seed=40)
        frames = client.generate_frames(transport, signatures, identity[:1], mfcc, batch=2)
        assert np.abs(frames - keras_frames(*tiny_models, mfcc, identity[:1])).max() <= 1e-5
        with pytest.raises(client.ServingError, match="prediction failed"):
            client.parse_predict_response(transport.predict(
                {"signature_name": "decode", "inputs": {"mfcc": mfcc.tolist()}}))
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def test_nan_replies_html_replies_and_a_missing_saved_model_are_one_line_errors(client, tmp_path, capsys):
    import http.server
    import threading

    with pytest.raises(client.ServingError, match="NaN or infinite"):
        client.parse_predict_response({"outputs": [[float("nan"), 0.5]]})

    class Html(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<html><body>proxy login</body></html>")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Html)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        with pytest.raises(client.ServingError, match="not JSON") as e:
            client.RestTransport(url, timeout=5).metadata()
        assert url in str(e.value) and "\n" not in str(e.value)
    finally:
        server.shutdown()
    code = client.main(["--face", str(DATA / "obama.jpg"), "--audio", str(DATA / "tmp.wav"),
                        "--out", str(tmp_path / "o.mp4"), "--saved-model", str(tmp_path / "missing")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "not a SavedModel folder" in err[0] and "missing" in err[0]
