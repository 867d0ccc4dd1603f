"""SavedModel export: reloaded signatures against the in-memory Keras models, saved_model_cli, versions."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from tests.export.conftest import DATA, TOL, keras_frames, make_models, sample_inputs

BATCHES = (1, 7)


def _call(loaded, name, **inputs):
    import tensorflow as tf

    return {k: v.numpy() for k, v in loaded.signatures[name](**{k: tf.constant(v) for k, v in inputs.items()}).items()}


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("name", ["serving_default", "generate"])
def test_generate_matches_keras(tiny_models, tiny_loaded, name, batch):
    mfcc, identity = sample_inputs(batch, seed=batch)
    out = _call(tiny_loaded, name, mfcc=mfcc, identity=identity)
    assert list(out) == ["frames"]
    assert out["frames"].shape == (batch, 109, 109, 3)
    assert np.abs(out["frames"] - keras_frames(*tiny_models, mfcc, identity)).max() <= TOL


@pytest.mark.parametrize("batch", BATCHES)
def test_encode_identity_matches_keras(tiny_models, tiny_loaded, batch):
    from keras_speech2vid.models import IDENTITY_OUTPUTS, get_submodels

    _, identity = sample_inputs(batch, seed=10 + batch)
    out = _call(tiny_loaded, "encode_identity", identity=identity)
    expected = get_submodels(tiny_models[0])[1](identity, training=False)
    assert sorted(out) == sorted(IDENTITY_OUTPUTS)
    for key, ref in zip(IDENTITY_OUTPUTS, expected):
        assert out[key].shape == tuple(ref.shape)
        assert np.abs(out[key] - np.asarray(ref)).max() <= TOL


@pytest.mark.parametrize("identity_batch", [1, 7])
def test_decode_with_cached_identity(tiny_models, tiny_loaded, identity_batch):
    mfcc, identity = sample_inputs(7, seed=3)
    identity = identity[:identity_batch]
    cached = _call(tiny_loaded, "encode_identity", identity=identity)
    out = _call(tiny_loaded, "decode", mfcc=mfcc, **cached)
    assert np.abs(out["frames"] - keras_frames(*tiny_models, mfcc, identity)).max() <= TOL


def test_generate_broadcasts_one_identity(tiny_models, tiny_loaded):
    mfcc, identity = sample_inputs(7, seed=4)
    out = _call(tiny_loaded, "generate", mfcc=mfcc, identity=identity[:1])
    assert np.abs(out["frames"] - keras_frames(*tiny_models, mfcc, identity[:1])).max() <= TOL


def test_decode_rejects_other_identity_batch(tiny_loaded):
    import tensorflow as tf

    mfcc, identity = sample_inputs(7, seed=5)
    cached = _call(tiny_loaded, "encode_identity", identity=identity[:2])
    with pytest.raises(tf.errors.InvalidArgumentError, match="batch 1 or the batch of mfcc"):
        _call(tiny_loaded, "decode", mfcc=mfcc, **cached)


def _check_from_waveform(generator, deblurrer, loaded, seconds=None):
    from keras_speech2vid import audio
    from keras_speech2vid.io import decode_audio

    waveform = decode_audio(DATA / "tmp.wav")  # 12.68 s of speech
    if seconds is not None:
        waveform = waveform[:int(seconds * 16000)]
    _, identity = sample_inputs(1, seed=6)
    out = _call(loaded, "from_waveform", waveform=waveform, identity=identity)["frames"]
    windows = np.asarray(audio.audio_windows(waveform))  # (N, 12, 35, 1), default alignment, 25 fps
    assert out.shape == (len(windows), 109, 109, 3) == (audio.num_video_frames(len(waveform)), 109, 109, 3)
    expected = np.concatenate([keras_frames(generator, deblurrer, windows[i:i + 64], identity)
                               for i in range(0, len(windows), 64)])
    assert np.abs(out - expected).max() <= TOL


def test_from_waveform_matches_python_pipeline(tiny_models, tiny_loaded):
    """MFCC + windows + generator + deblurrer in Python against the in-graph pipeline, 4.1 s of tmp.wav."""
    _check_from_waveform(*tiny_models, tiny_loaded, seconds=4.1)


@pytest.mark.slow
def test_from_waveform_matches_python_pipeline_whole_file(tiny_models, tiny_loaded):
    _check_from_waveform(*tiny_models, tiny_loaded)


def test_from_waveform_short_and_chunk_edges(tiny_models):
    """Clips shorter than, equal to and just over one chunk give every frame, in order."""
    from keras_speech2vid import audio
    from keras_speech2vid.export import Speech2VidModule

    generator, _ = tiny_models
    module = Speech2VidModule(generator, None, chunk_size=4)  # the tf.functions, without a save/load
    _, identity = sample_inputs(1, seed=7)
    rng = np.random.default_rng(0)
    for frames in (1, 4, 5):
        waveform = (0.1 * rng.standard_normal(frames * 640)).astype(np.float32)
        out = module.from_waveform(waveform, identity)["frames"].numpy()
        windows = np.asarray(audio.audio_windows(waveform))
        assert out.shape[0] == len(windows) == frames
        assert np.abs(out - keras_frames(generator, None, windows, identity)).max() <= TOL


def parse_saved_model_cli(text):
    """{signature: {"inputs"|"outputs": {key: (dtype, shape)}}} from `saved_model_cli show --all`."""
    signatures = {}
    current = part = key = None
    for line in text.splitlines():
        if m := re.match(r"signature_def\['([^']+)'\]:", line):
            current = signatures.setdefault(m.group(1), {"inputs": {}, "outputs": {}})
        elif current is not None and (m := re.match(r"\s+(inputs|outputs)\['([^']+)'\] tensor_info:", line)):
            part, key = m.group(1), m.group(2)
            current[part][key] = [None, None]
        elif current is not None and key and (m := re.match(r"\s+dtype: (\w+)", line)):
            current[part][key][0] = m.group(1)
        elif current is not None and key and (m := re.match(r"\s+shape: \(([-\d, ]*)\)", line)):
            current[part][key][1] = tuple(int(d) for d in m.group(1).replace(" ", "").split(",") if d)
    return {s: {p: {k: tuple(v) for k, v in d.items()} for p, d in parts.items()} for s, parts in signatures.items()}


def test_saved_model_cli_lists_signatures(tiny_export):
    cmd = [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "show", "--all", "--dir", str(tiny_export)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    sigs = parse_saved_model_cli(proc.stdout)
    f = ("DT_FLOAT",)
    mfcc, identity, frames = f + ((-1, 12, 35, 1),), f + ((-1, 112, 112, 15),), f + ((-1, 109, 109, 3),)
    cached = {"embedding": f + ((-1, 1, 1, 32),), "skip_53": f + ((-1, 53, 53, 8),),
              "skip_26": f + ((-1, 26, 26, 8),), "skip_12": f + ((-1, 12, 12, 16),)}  # tiny widths
    assert {k: v for k, v in sigs.items() if not k.startswith("__")} == {
        "serving_default": {"inputs": {"mfcc": mfcc, "identity": identity}, "outputs": {"frames": frames}},
        "generate": {"inputs": {"mfcc": mfcc, "identity": identity}, "outputs": {"frames": frames}},
        "encode_identity": {"inputs": {"identity": identity}, "outputs": cached},
        "decode": {"inputs": {"mfcc": mfcc, **cached}, "outputs": {"frames": frames}},
        "from_waveform": {"inputs": {"waveform": f + ((-1,),), "identity": f + ((1, 112, 112, 15),)},
                          "outputs": {"frames": frames}},
    }


def test_layout_metadata_and_versions(tiny_models, tiny_export, tmp_path):
    from keras_speech2vid.errors import Speech2VidError
    from keras_speech2vid.export import export_saved_model, next_version

    assert tiny_export.name == "1" and tiny_export.parent.name == "speech2vid"
    assert (tiny_export / "saved_model.pb").is_file() and (tiny_export / "variables").is_dir()
    meta = json.loads((tiny_export / "assets.extra" / "speech2vid.json").read_text())
    assert meta["identity_images"] == 5 and meta["deblurred"] is True and meta["fps"] == 25.0
    assert meta["alignment"] == "centre" and set(meta["signatures"]) >= {"serving_default", "decode"}

    generator, _ = tiny_models
    assert next_version(tmp_path / "speech2vid") == 1
    (tmp_path / "speech2vid" / "3").mkdir(parents=True)
    (tmp_path / "speech2vid" / "notes").mkdir()
    assert next_version(tmp_path / "speech2vid") == 4
    path = export_saved_model(generator, tmp_path, name="speech2vid")
    assert path == tmp_path / "speech2vid" / "4"
    with pytest.raises(Speech2VidError, match="already exists"):
        export_saved_model(generator, tmp_path, version=4)
    # only the version folders (and the folder we made) remain: no temporary folders left behind
    assert sorted(p.name for p in (tmp_path / "speech2vid").iterdir()) == ["3", "4", "notes"]
    with pytest.raises(ValueError, match="version"):
        export_saved_model(generator, tmp_path, version=0)


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["paper"])
def test_paper_signatures_match_keras(preset, tmp_path):
    import tensorflow as tf

    from keras_speech2vid.export import export_saved_model

    generator, deblurrer = make_models(preset)
    loaded = tf.saved_model.load(str(export_saved_model(generator, tmp_path, deblurrer)))
    for batch in BATCHES:
        mfcc, identity = sample_inputs(batch, seed=batch)
        expected = keras_frames(generator, deblurrer, mfcc, identity)
        out = _call(loaded, "serving_default", mfcc=mfcc, identity=identity)["frames"]
        assert np.abs(out - expected).max() <= TOL
        cached = _call(loaded, "encode_identity", identity=identity[:1])
        out = _call(loaded, "decode", mfcc=mfcc, **cached)["frames"]
        assert np.abs(out - keras_frames(generator, deblurrer, mfcc, identity[:1])).max() <= TOL
