"""Issue 21: the bad-input matrix. Each case runs a command (in-process) or an API call on bad input and
asserts: the exit code, exactly one error line and it names the file or option at fault, no traceback, no
output or temporary left, and no input changed (SHA-256 of every input file before and after)."""

import sys

import numpy as np
import pytest

from tests.bad_inputs.conftest import tree_hashes

LONG = "n" * 250 + ".mp4"  # over the 255-byte name limit once the temporary's parts are added

# (id, argv with {IN} = the inputs folder and {OUT} = this case's empty output folder, what the error names)
GENERATE = "generate --weights {IN}/weights --audio {IN}/speech.wav --outfile {OUT}/o.mp4"
GEN_FACE = "generate --weights {IN}/weights --face {IN}/face.jpg --outfile {OUT}/o.mp4"
GEN_BOTH = "generate --weights {IN}/weights --face {IN}/face.jpg --audio {IN}/speech.wav"
REDUB = "redub --weights {IN}/weights --audio {IN}/speech.wav --outfile {OUT}/o.mp4"
REDUB_VIDEO = "redub --weights {IN}/weights --video {IN}/video.mp4 --outfile {OUT}/o.mp4"
REDUB_BOTH = "redub --weights {IN}/weights --video {IN}/video.mp4 --audio {IN}/speech.wav"
EVALUATE = "evaluate --weights {IN}/weights --outdir {OUT}/report --no-sync"
CLI_CASES = [
    # generate: the face
    ("gen-face-missing", GENERATE + " --face {IN}/missing.jpg", "missing.jpg"),
    ("gen-face-empty", GENERATE + " --face {IN}/empty.jpg", "empty.jpg"),
    ("gen-face-text", GENERATE + " --face {IN}/text.jpg", "text.jpg"),
    ("gen-face-truncated", GENERATE + " --face {IN}/truncated.jpg", "truncated.jpg"),
    ("gen-face-no-face", GENERATE + " --face {IN}/blank.png", "blank.png"),
    ("gen-face-too-small", GENERATE + " --face {IN}/small.png", "small.png"),
    ("gen-face-truncated-video", GENERATE + " --face {IN}/truncated.mp4", "truncated.mp4"),
    ("gen-face-two-videos", GENERATE + " --face {IN}/video.mp4 --face {IN}/mute.mp4", ".mp4"),
    ("gen-face-folder", GENERATE + " --face {IN}/empty_dir", "empty_dir"),
    # generate: the audio
    ("gen-audio-missing", GEN_FACE + " --audio {IN}/missing.wav", "missing.wav"),
    ("gen-audio-empty", GEN_FACE + " --audio {IN}/empty.wav", "empty.wav"),
    ("gen-audio-text", GEN_FACE + " --audio {IN}/text.wav", "text.wav"),
    ("gen-audio-image", GEN_FACE + " --audio {IN}/face.jpg", "face.jpg"),
    ("gen-audio-mute-video", GEN_FACE + " --audio {IN}/mute.mp4", "mute.mp4"),
    ("gen-audio-nan", GEN_FACE + " --audio {IN}/nan.wav", "nan.wav"),
    # generate: the output
    ("gen-out-is-the-face", GEN_BOTH + " --outfile {IN}/face.jpg", "face.jpg"),
    ("gen-out-is-the-audio", GEN_BOTH + " --outfile {IN}/speech.wav", "speech.wav"),
    ("gen-out-is-a-hard-link", GEN_BOTH + " --outfile {IN}/link.jpg", "link.jpg"),
    ("gen-out-missing-folder", GEN_BOTH + " --outfile {OUT}/missing/o.mp4", "missing"),
    ("gen-out-under-a-file", GEN_BOTH + " --outfile {IN}/notes.txt/o.mp4", "notes.txt"),
    ("gen-out-name-too-long", GEN_BOTH + " --outfile {OUT}/" + LONG, "nnnn"),
    ("gen-out-is-a-folder", GEN_BOTH + " --outfile {OUT}", "{OUT}"),
    # generate: options
    ("gen-box-outside", GEN_BOTH + " --outfile {OUT}/o.mp4 --box 5000 6000 5000 6000", "box"),
    ("gen-box-inverted", GEN_BOTH + " --outfile {OUT}/o.mp4 --box 300 100 300 100", "box"),
    ("gen-pads-three", GEN_BOTH + " --outfile {OUT}/o.mp4 --pads 0 10 0", "--pads"),
    ("gen-fps-zero", GEN_BOTH + " --outfile {OUT}/o.mp4 --fps 0", "fps"),
    ("gen-fps-nan", GEN_BOTH + " --outfile {OUT}/o.mp4 --fps nan", "fps"),
    ("gen-resize-zero", GEN_BOTH + " --outfile {OUT}/o.mp4 --resize_factor 0", "resize_factor"),
    ("gen-batch-zero", GEN_BOTH + " --outfile {OUT}/o.mp4 --batch-size 0", "batch"),
    ("gen-weights-missing", "generate --weights {IN}/nowhere --face {IN}/face.jpg --audio {IN}/speech.wav "
                            "--outfile {OUT}/o.mp4", "nowhere"),
    ("gen-weights-empty", "generate --weights {IN}/empty_dir --face {IN}/face.jpg --audio {IN}/speech.wav "
                          "--outfile {OUT}/o.mp4", "empty_dir"),
    ("gen-weights-truncated", "generate --weights {IN}/weights_truncated --face {IN}/face.jpg --audio "
                              "{IN}/speech.wav --outfile {OUT}/o.mp4", "generator.npz"),
    ("gen-weights-a-file", "generate --weights {IN}/notes.txt --face {IN}/face.jpg --audio {IN}/speech.wav "
                           "--outfile {OUT}/o.mp4", "notes.txt"),
    # redub
    ("redub-video-missing", REDUB + " --video {IN}/missing.mp4", "missing.mp4"),
    ("redub-video-empty", REDUB + " --video {IN}/empty.mp4", "empty.mp4"),
    ("redub-video-text", REDUB + " --video {IN}/text.mp4", "text.mp4"),
    ("redub-video-truncated", REDUB + " --video {IN}/truncated.mp4", "truncated.mp4"),
    ("redub-video-audio-only", REDUB + " --video {IN}/speech.wav", "speech.wav"),
    ("redub-video-no-face", REDUB + " --video {IN}/blank.png", "blank.png"),
    ("redub-audio-missing", REDUB_VIDEO + " --audio {IN}/missing.wav", "missing.wav"),
    ("redub-audio-text", REDUB_VIDEO + " --audio {IN}/text.wav", "text.wav"),
    ("redub-audio-nan", REDUB_VIDEO + " --audio {IN}/nan.wav", "nan.wav"),
    ("redub-audio-mute", REDUB_VIDEO + " --audio {IN}/mute.mp4", "mute.mp4"),
    ("redub-out-is-the-video", REDUB_BOTH + " --outfile {IN}/video.mp4", "video.mp4"),
    ("redub-out-is-the-audio", REDUB_BOTH + " --outfile {IN}/speech.wav", "speech.wav"),
    ("redub-out-missing-folder", REDUB_BOTH + " --outfile {OUT}/missing/o.mp4", "missing"),
    ("redub-box-outside", REDUB_BOTH + " --outfile {OUT}/o.mp4 --box 5000 6000 5000 6000", "box"),
    ("redub-identity-frames-zero", REDUB_BOTH + " --outfile {OUT}/o.mp4 --identity-frames 0", "identity"),
    # prepare
    ("prepare-missing", "prepare {IN}/missing.mp4 --out {OUT}/data --no-sync", "missing.mp4"),
    ("prepare-empty-folder", "prepare {IN}/empty_dir --out {OUT}/data --no-sync", "empty_dir"),
    ("prepare-every-zero", "prepare {IN}/video.mp4 --out {OUT}/data --no-sync --every 0", "every"),
    ("prepare-val-fraction-2", "prepare {IN}/video.mp4 --out {OUT}/data --no-sync --val-fraction 2", "val"),
    ("prepare-shard-3-of-2", "prepare {IN}/video.mp4 --out {OUT}/data --no-sync --shard 3/2", "--shard"),
    ("prepare-shard-word", "prepare {IN}/video.mp4 --out {OUT}/data --no-sync --shard half", "--shard"),
    ("prepare-workers-zero", "prepare {IN}/video.mp4 --out {OUT}/data --no-sync --workers 0", "--workers"),
    ("prepare-out-is-a-file", "prepare {IN}/video.mp4 --out {IN}/notes.txt --no-sync", "notes.txt"),
    ("prepare-speakers-missing", "prepare {IN}/video.mp4 --out {OUT}/data --no-sync --speakers {IN}/who.json",
     "who.json"),
    ("prepare-speakers-not-json", "prepare {IN}/video.mp4 --out {OUT}/data --no-sync --speakers {IN}/notes.txt",
     "notes.txt"),
    # train
    ("train-data-missing", "train --data {IN}/nowhere --out {OUT}/run --preset tiny", "nowhere"),
    ("train-data-not-prepared", "train --data {IN}/empty_dir --out {OUT}/run --preset tiny", "empty_dir"),
    ("train-preset-unknown", "train --data {IN}/empty_dir --out {OUT}/run --preset huge", "huge"),
    ("train-batch-zero", "train --data {IN}/empty_dir --out {OUT}/run --preset tiny --batch-size 0", "batch"),
    ("train-out-is-a-file", "train --data {IN}/empty_dir --out {IN}/notes.txt --preset tiny", "notes.txt"),
    ("train-lr-negative", "train --data {IN}/empty_dir --out {OUT}/run --preset tiny --lr -1", "lr"),
    # evaluate
    ("evaluate-clip-missing", EVALUATE + " --clips {IN}/missing.mp4", "missing.mp4"),
    ("evaluate-clip-image", EVALUATE + " --clips {IN}/face.jpg", "face.jpg"),
    ("evaluate-clip-truncated", EVALUATE + " --clips {IN}/truncated.mp4", "truncated.mp4"),
    ("evaluate-clip-mute", EVALUATE + " --clips {IN}/mute.mp4", "mute.mp4"),
    ("evaluate-outdir-is-a-file", "evaluate --weights {IN}/weights --outdir {IN}/notes.txt --clips "
                                  "{IN}/video.mp4", "notes.txt"),
    ("evaluate-identity-frames-zero", EVALUATE + " --clips {IN}/video.mp4 --identity-frames 0", "identity"),
    ("evaluate-weights-missing", "evaluate --weights {IN}/nowhere --outdir {OUT}/r --clips {IN}/video.mp4",
     "nowhere"),
    # export, align
    ("export-weights-missing", "export --weights {IN}/nowhere --out {OUT}/export", "nowhere"),
    ("export-weights-truncated", "export --weights {IN}/weights_truncated --out {OUT}/export", "generator.npz"),
    ("export-out-is-a-file", "export --weights {IN}/weights --out {IN}/notes.txt", "notes.txt"),
    ("export-format-unknown", "export --weights {IN}/weights --out {OUT}/export --format tflite", "--format"),
    ("export-version-word", "export --weights {IN}/weights --out {OUT}/export --version one", "--version"),
    ("align-missing", "align {IN}/missing.jpg --outdir {OUT}/crops", "missing.jpg"),
    ("align-text", "align {IN}/text.jpg --outdir {OUT}/crops", "text.jpg"),
    ("align-outdir-is-a-file", "align {IN}/face.jpg --outdir {IN}/notes.txt", "notes.txt"),
]

CLIENT = "--saved-model {EXPORT} --outfile {OUT}/o.mp4"
CLIENT_CASES = [
    ("client-saved-model-missing", "--saved-model {IN}/nowhere --face {IN}/face.jpg --audio {IN}/speech.wav "
                                   "--outfile {OUT}/o.mp4", "nowhere"),
    ("client-face-missing", CLIENT + " --face {IN}/missing.jpg --audio {IN}/speech.wav", "missing.jpg"),
    ("client-face-no-face", CLIENT + " --face {IN}/blank.png --audio {IN}/speech.wav", "blank.png"),
    ("client-audio-text", CLIENT + " --face {IN}/face.jpg --audio {IN}/text.wav", "text.wav"),
    ("client-audio-nan", CLIENT + " --face {IN}/face.jpg --audio {IN}/nan.wav", "nan.wav"),
    ("client-out-is-the-face", "--saved-model {EXPORT} --face {IN}/face.jpg --audio {IN}/speech.wav "
                               "--outfile {IN}/face.jpg", "face.jpg"),
    ("client-batch-zero", CLIENT + " --face {IN}/face.jpg --audio {IN}/speech.wav --batch 0", "--batch"),
]


def _expand(template, inputs, out, export=None):
    return [part.format(IN=inputs, OUT=out, EXPORT=export) for part in template.split()]


def _run(main, argv, capsys):
    """The exit code and stderr of `main(argv)`; argparse's SystemExit counts as its exit code."""
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 2
        if not isinstance(e.code, int) and e.code is not None:
            print(e.code, file=sys.stderr)
    return code, capsys.readouterr().err


def _check(code, err, names, inputs, before, out):
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert "Traceback" not in err, err[-1500:]
    assert code == 2, (code, err[-800:])
    assert len(errors) == 1, err[-800:]
    assert names in errors[0], errors[0]
    assert tree_hashes(inputs) == before  # no input changed, nothing written beside them
    left = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
    assert left == [], left


@pytest.mark.parametrize("case", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input(case, inputs, tmp_path, capsys):
    from keras_speech2vid import cli

    _, template, names = case
    out = tmp_path / "out"
    out.mkdir()
    before = tree_hashes(inputs)
    code, err = _run(cli.main, _expand(template, inputs, out), capsys)
    _check(code, err, names.format(OUT=out), inputs, before, out)


@pytest.mark.parametrize("case", CLIENT_CASES, ids=[c[0] for c in CLIENT_CASES])
def test_client_bad_input(case, inputs, tiny_export, client, tmp_path, capsys):  # noqa: F811
    _, template, names = case
    out = tmp_path / "out"
    out.mkdir()
    before = tree_hashes(inputs)
    code, err = _run(client.main, _expand(template, inputs, out, tiny_export), capsys)
    _check(code, err, names, inputs, before, out)


# -- the API and the SavedModel signatures: an exception with a one-line message, nothing written

def _api_cases():
    def wave(value):
        w = np.zeros(8000, np.float32)
        w[100] = value
        return w

    return [
        ("api-load-missing", lambda s2v, d, o: __import__("keras_speech2vid").Speech2Vid.load(d / "nowhere"),
         "nowhere"),
        ("api-nan-waveform", lambda s2v, d, o: s2v.generate_video(d / "face.jpg", wave(np.nan), o / "o.mp4"),
         "NaN"),
        ("api-inf-waveform", lambda s2v, d, o: s2v.generate_video(d / "face.jpg", wave(np.inf), o / "o.mp4"),
         "infinite"),
        ("api-2d-waveform", lambda s2v, d, o: s2v.generate_video(d / "face.jpg", np.zeros((2, 800), np.float32),
                                                                 o / "o.mp4"), "1-D"),
        ("api-out-is-the-face", lambda s2v, d, o: s2v.generate_video(d / "face.jpg", d / "speech.wav",
                                                                     d / "face.jpg"), "face.jpg"),
        ("api-tiny-array-face", lambda s2v, d, o: s2v.generate_video(np.zeros((10, 10, 3), np.uint8),
                                                                     d / "speech.wav", o / "o.mp4"), "10x10"),
        ("api-no-faces", lambda s2v, d, o: s2v.generate_video([], d / "speech.wav", o / "o.mp4"), "faces"),
        ("api-redub-audio-only", lambda s2v, d, o: s2v.redub(d / "speech.wav", d / "speech.wav", o / "o.mp4"),
         "speech.wav"),
        ("api-redub-inverted-box", lambda s2v, d, o: s2v.redub(d / "video.mp4", d / "speech.wav", o / "o.mp4",
                                                               box=(300, 100, 300, 100)), "box"),
    ]


API_CASES = _api_cases()


@pytest.fixture(scope="module")
def s2v(inputs):
    from keras_speech2vid import Speech2Vid

    return Speech2Vid.load(inputs / "weights", batch_size=8)


@pytest.mark.parametrize("case", API_CASES, ids=[c[0] for c in API_CASES])
def test_api_bad_input(case, s2v, inputs, tmp_path):
    _, call, names = case
    before = tree_hashes(inputs)
    with pytest.raises((ValueError, OSError, __import__("keras_speech2vid").errors.Speech2VidError)) as e:
        call(s2v, inputs, tmp_path)
    message = str(e.value)
    assert "\n" not in message and names in message, message
    assert tree_hashes(inputs) == before and list(tmp_path.iterdir()) == []


def _signature_cases():
    rng = np.random.default_rng(0)
    identity = rng.uniform(size=(1, 112, 112, 15)).astype(np.float32)
    mfcc = rng.normal(size=(2, 12, 35, 1)).astype(np.float32)
    nan = mfcc.copy()
    nan[0, 0, 0, 0] = np.nan
    return [
        ("sig-mfcc-rank-3", {"mfcc": mfcc[..., 0], "identity": identity}),
        ("sig-mfcc-nan", {"mfcc": nan, "identity": identity}),
        ("sig-identity-channels", {"mfcc": mfcc, "identity": identity[..., :3]}),
        ("sig-batch-zero", {"mfcc": mfcc[:0], "identity": identity}),
        ("sig-identity-batch-mismatch", {"mfcc": mfcc, "identity": np.repeat(identity, 3, 0)}),
    ]


SIGNATURE_CASES = _signature_cases()


@pytest.mark.parametrize("case", SIGNATURE_CASES, ids=[c[0] for c in SIGNATURE_CASES])
def test_signature_bad_request(case, tiny_export):  # noqa: F811
    import tensorflow as tf

    _, request = case
    served = _loaded(tiny_export)
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError, TypeError)):
        served.signatures["serving_default"](**{k: tf.constant(v) for k, v in request.items()})
    good = {"mfcc": tf.zeros((2, 12, 35, 1)), "identity": tf.zeros((1, 112, 112, 15))}
    assert np.isfinite(next(iter(served.signatures["serving_default"](**good).values())).numpy()).all()


_LOADED = {}


def _loaded(path):
    import tensorflow as tf

    if str(path) not in _LOADED:
        _LOADED[str(path)] = tf.saved_model.load(str(path))
    return _LOADED[str(path)]


def test_the_matrix_has_at_least_60_cases():
    assert len(CLI_CASES) + len(CLIENT_CASES) + len(API_CASES) + len(SIGNATURE_CASES) >= 60
