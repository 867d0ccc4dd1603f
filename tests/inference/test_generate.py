"""Generation with tiny random models: streaming, timing, identity cache, full-frame paste-back, errors."""

import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from keras_speech2vid import audio as A
from keras_speech2vid import io
from keras_speech2vid.errors import AudioError, MediaError, NoFaceError, WeightsError
from keras_speech2vid.inference import FrameEngine, Speech2Vid, fit_faces, iter_audio_windows
from keras_speech2vid.inference.blend import region_mask

from .conftest import mean_abs, tiny_models

DATA = Path(__file__).resolve().parents[1] / "data"
TRANSCRIPT = DATA / "transcript.mp3"


def audio_codec(path) -> str | None:
    err = subprocess.run([io.ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True,
                         text=True).stderr
    m = re.search(r"Audio: (\w+)", err)
    return m.group(1) if m else None


def count_frames(path) -> int:
    return sum(1 for _ in io.iter_frames(path))


@pytest.fixture(scope="module")
def transcript():
    return io.decode_audio(TRANSCRIPT)


# ---------------------------------------------------------------------------------------------------- audio


@pytest.mark.parametrize("alignment,offset", [("centre", 0.0), ("start", 0.3), ("demo", 0.0), ("centre", -1.7)])
def test_chunked_windows_equal_the_whole_clip_windows(transcript, alignment, offset):
    ref = A.audio_windows(transcript, alignment=alignment, offset=offset).numpy()
    chunks = list(iter_audio_windows(transcript, alignment=alignment, offset=offset, chunk_frames=7))
    assert all(len(c) <= 7 for c in chunks) and len(chunks) == -(-len(ref) // 7)
    np.testing.assert_allclose(np.concatenate(chunks), ref, atol=1e-4)


def test_fit_faces():
    assert fit_faces([1, 2], 5) == [1, 2, 1, 2, 1]
    assert fit_faces([1], 5) == [1] * 5
    assert fit_faces(list(range(9)), 5) == [0, 2, 4, 6, 8]
    assert fit_faces([7, 8], 1) == [7]


# ---------------------------------------------------------------------------------------------------- engine


def test_identity_cache_and_batching_give_the_generator_output(faceimg1):
    models = tiny_models(seed=3)
    generator, deblurrer = models["generator"][1], models["deblurrer"][1]
    faces = [io.read_image(p) for p in faceimg1]
    rng = np.random.default_rng(0)
    windows = rng.normal(0, 8, (11, 12, 35, 1)).astype(np.float32)
    cached = FrameEngine(generator, deblurrer, batch_size=4)
    identity = cached.identity_input(faces)
    direct = generator({"mfcc": windows, "identity": np.repeat(identity, 11, 0)}, training=False)["frame"]
    direct = np.asarray(deblurrer(direct, training=False))
    ident = cached.encode_identity(faces)
    got = np.concatenate([cached.run(windows[i:i + 4], ident) for i in range(0, 11, 4)])
    np.testing.assert_allclose(got, direct, atol=1e-5)
    uncached = FrameEngine(generator, deblurrer, batch_size=8, cache_identity=False)
    ident_raw = uncached.encode_identity(faces)
    got2 = np.concatenate([uncached.run(windows[i:i + 8], ident_raw) for i in range(0, 11, 8)])
    np.testing.assert_allclose(got2, direct, atol=1e-5)
    one = FrameEngine(generator, None, batch_size=1)
    no_deblur = np.asarray(generator({"mfcc": windows[:2], "identity": np.repeat(identity, 2, 0)})["frame"])
    got3 = np.concatenate([one.run(windows[i:i + 1], one.encode_identity(faces)) for i in range(2)])
    np.testing.assert_allclose(got3, no_deblur, atol=1e-5)
    frames = list(cached.iter_frames([windows[:3], windows[3:]], ident))
    assert len(frames) == 11 and frames[0].dtype == np.uint8 and frames[0].shape == (109, 109, 3)
    np.testing.assert_array_equal(frames[5], (np.clip(direct[5], 0, 1) * 255 + 0.5).astype(np.uint8))


def test_xla_engine_matches(faceimg1):
    generator = tiny_models(seed=4)["generator"][1]
    faces = [io.read_image(p) for p in faceimg1]
    windows = np.random.default_rng(1).normal(0, 8, (4, 12, 35, 1)).astype(np.float32)
    plain = FrameEngine(generator, batch_size=4)
    xla = FrameEngine(generator, batch_size=4, jit_compile=True)
    np.testing.assert_allclose(xla.run(windows, xla.encode_identity(faces)),
                               plain.run(windows, plain.encode_identity(faces)), atol=1e-4)


def test_model_choice(tiny_weights):
    both = Speech2Vid.load(tiny_weights)
    assert sorted(both.generators) == [1, 5] and both.deblurrer is not None
    assert both.choose_generator(1) == 1 and both.choose_generator(5) == 5
    assert both.choose_generator(2) == 5 and both.choose_generator(7) == 5
    models = tiny_models()
    only5 = Speech2Vid(models["generator"][1])
    assert only5.choose_generator(1) == 5 and only5.deblurrer is None
    only1 = Speech2Vid(models["generator_1img"][1])
    assert only1.choose_generator(5) == 1
    with pytest.raises(ValueError, match="generator_1img"):
        Speech2Vid(models["generator"][1], generator_1img=models["generator"][1])


# ---------------------------------------------------------------------------------------------------- videos


def test_generate_from_the_authors_aligned_faces(s2v, faceimg1, transcript, tmp_path, monkeypatch):
    import keras_speech2vid.face as face

    def no_detection(*args, **kwargs):
        raise AssertionError("aligned 112x112 faces must not go through face detection")

    monkeypatch.setattr(face, "find_face", no_detection)
    monkeypatch.setattr(face, "align_face", no_detection)
    out = s2v.generate_video(faceimg1, TRANSCRIPT, tmp_path / "out.mp4")
    assert out == tmp_path / "out.mp4"
    info = io.probe(out)
    assert info.fps == 25 and (info.width, info.height) == (110, 110)  # 109 padded to even for yuv420p
    duration = len(transcript) / 16000
    frames = count_frames(out)
    assert abs(frames - duration * 25) <= 1
    assert audio_codec(out) == "aac" and info.has_audio
    assert abs(len(io.decode_audio(out)) / 16000 - duration) <= 0.040
    assert abs(info.duration - duration) <= 0.040
    assert (5, 8) in s2v._engines  # five faces: the 5-image generator
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]  # no temporary files left


def test_one_face_uses_the_1_image_generator_and_streams(s2v, faceimg1):
    stream = s2v.generate(faceimg1[0], np.zeros(8000, np.float32) + 0.01 * np.sin(np.arange(8000)))
    assert stream.num_frames == 13 and stream.size == (109, 109) and stream.fps == 25
    first = next(stream)
    assert first.shape == (109, 109, 3) and first.dtype == np.uint8
    assert len(list(stream)) == 12
    assert (1, 8) in s2v._engines


def test_full_frame_is_lossless_outside_the_mask(s2v, transcript, tmp_path):
    """The library's frames equal the source exactly outside the blend mask, and change inside it."""
    source = io.read_image(DATA / "obama.jpg")
    stream = s2v.generate(DATA / "obama.jpg", transcript[:16000], full_frame=True)
    assert stream.size == (source.shape[1], source.shape[0])
    bg = stream.background
    mask = region_mask(bg.landmarks, bg.matrix, source.shape[:2], "full")
    np.testing.assert_array_equal(mask, bg.mask)
    assert 2000 < (mask > 0).sum() < 0.5 * mask.size
    frames = list(stream)
    assert len(frames) == 25
    for frame in frames[::6]:
        assert frame.shape == source.shape
        np.testing.assert_array_equal(frame[mask == 0], source[mask == 0])
        assert mean_abs(frame, source, mask > 0) > 5  # the face was replaced
    # with region="lower", the eyes stay the source's
    lower = s2v.generate(DATA / "obama.jpg", transcript[:4000], full_frame=True, region="lower", blend="alpha")
    frame = next(lower)
    eyes = bg.landmarks[36:48].mean(0).round().astype(int)
    assert lower.background.mask[eyes[1], eyes[0]] == 0
    np.testing.assert_array_equal(frame[lower.background.mask == 0], source[lower.background.mask == 0])


def test_full_frame_mp4_matches_the_source_encoded_the_same_way(s2v, transcript, tmp_path):
    import cv2

    source = io.read_image(DATA / "obama.jpg")
    h, w = source.shape[:2]
    wave = transcript[:16000]
    out = s2v.generate_video(DATA / "obama.jpg", wave, tmp_path / "full.mp4", full_frame=True)
    info = io.probe(out)
    assert (info.width, info.height) == (w + w % 2, h + h % 2)  # the source size (padded to even)
    with io.VideoWriter(tmp_path / "ref.mp4", 25, (w, h), audio=wave) as writer:
        for _ in range(25):
            writer.write(source)
    stream = s2v.generate(DATA / "obama.jpg", wave[:640], full_frame=True)
    mask = stream.background.mask
    near = cv2.dilate(mask, np.ones((33, 33), np.uint8)) > 0  # codec blocks that see the face
    frames = 0
    for got, ref in zip(io.iter_frames(out), io.iter_frames(tmp_path / "ref.mp4")):
        got, ref = got[:h, :w], ref[:h, :w]
        assert mean_abs(got, ref, ~near) < 0.3  # measured 0.07 (the codec's block decisions near the face)
        assert np.percentile(np.abs(got.astype(int) - ref)[~near], 99.9) <= 8  # measured 4
        assert mean_abs(got, ref, mask > 0) > 10  # measured 29: the face is not the source's
        frames += 1
    assert frames == 25


def test_a_video_gives_its_own_identity_frames(s2v, tmp_path):
    from keras_speech2vid.inference import sample_identity_frames

    video = DATA / "vox2_00086_man_suit_red_bg.mp4"
    faces, (first, frame) = sample_identity_frames(video, 5)
    assert len(faces) == 5 and all(f.shape == (112, 112, 3) for f in faces)
    assert not all(np.array_equal(faces[0], f) for f in faces[1:])  # spread over the video
    assert frame.shape == (224, 224, 3)
    stream = s2v.generate(video, np.zeros(4000, np.float32))
    assert stream.size == (109, 109) and len(list(stream)) == 6


def test_resize_factor_and_pads(s2v):
    stream = s2v.generate(DATA / "obama.jpg", np.zeros(2000, np.float32), full_frame=True, resize_factor=2,
                          pads=(0, 10, 0, 0))
    assert stream.size == (400, 266)
    assert next(stream).shape == (266, 400, 3)
    # pads widen the detected box before the landmarks: the alignment moves, and only through them
    plain, _, _ = s2v.prepare_faces(DATA / "obama.jpg")
    padded, _, _ = s2v.prepare_faces(DATA / "obama.jpg", pads=(0, 60, 0, 0))
    again, _, _ = s2v.prepare_faces(DATA / "obama.jpg", pads=(0, 0, 0, 0))
    np.testing.assert_array_equal(again[0], plain[0])
    assert np.abs(padded[0].astype(np.int16) - plain[0].astype(np.int16)).mean() > 1.0
    with pytest.raises(ValueError, match="resize_factor"):
        s2v.generate(DATA / "obama.jpg", np.zeros(2000, np.float32), resize_factor=0)


# ---------------------------------------------------------------------------------------------------- errors


def test_no_face(s2v, tmp_path):
    import cv2

    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 120, np.uint8))
    with pytest.raises(NoFaceError, match="blank.png: no face"):
        s2v.generate_video(blank, TRANSCRIPT, tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()


def test_audio_without_an_audio_stream(s2v, faceimg1, tmp_path):
    silent = tmp_path / "silent.mp4"
    with io.VideoWriter(silent, 25, (64, 64)) as writer:
        for _ in range(5):
            writer.write(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(AudioError, match="silent.mp4: no audio stream"):
        s2v.generate_video(faceimg1, silent, tmp_path / "out.mp4")
    with pytest.raises(AudioError, match="obama.jpg"):
        s2v.generate_video(faceimg1, DATA / "obama.jpg", tmp_path / "out.mp4")
    with pytest.raises(AudioError, match="no such file"):
        s2v.generate_video(faceimg1, tmp_path / "missing.wav", tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()


def test_unreadable_weights_folders(tiny_weights, tmp_path):
    import shutil

    with pytest.raises(WeightsError, match="no such weights folder"):
        Speech2Vid.load(tmp_path / "nowhere")
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "manifest.json").write_text("{not json")
    with pytest.raises(WeightsError, match="unreadable manifest"):
        Speech2Vid.load(garbage)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_weights, corrupt)
    data = bytearray((corrupt / "generator.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (corrupt / "generator.npz").write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="checksum"):
        Speech2Vid.load(corrupt)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WeightsError, match="manifest"):
        Speech2Vid.load(empty)
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(WeightsError):
        Speech2Vid.load(afile)
    from keras_speech2vid.weights import save_weights_dir

    only_deblur = tmp_path / "only_deblur"
    save_weights_dir(only_deblur, {"deblurrer": tiny_models()["deblurrer"]})
    with pytest.raises(WeightsError, match="no generator"):
        Speech2Vid.load(only_deblur)


def _no_bundled_weights(monkeypatch, folder):
    import keras_speech2vid.weights as W

    monkeypatch.delenv("SPEECH2VID_WEIGHTS", raising=False)
    monkeypatch.setattr(W, "BUNDLED_WEIGHTS", folder)  # an install whose weights/ folder is empty


def test_bundled_weights_missing_says_so(tmp_path, monkeypatch):
    _no_bundled_weights(monkeypatch, tmp_path)
    with pytest.raises(WeightsError, match="no trained Speech2Vid weights are bundled yet"):
        Speech2Vid.load()
    monkeypatch.setenv("SPEECH2VID_WEIGHTS", str(tmp_path))  # the variable is named when it is the cause
    with pytest.raises(WeightsError, match="SPEECH2VID_WEIGHTS"):
        Speech2Vid.load()


def test_output_in_a_missing_folder_fails_before_any_work(s2v, faceimg1, monkeypatch, tmp_path):
    import keras_speech2vid.inference.generate as G

    def boom(*args, **kwargs):
        raise AssertionError("audio decoded before the output path was checked")

    monkeypatch.setattr(G, "load_audio", boom)
    with pytest.raises(MediaError, match="does not exist"):
        s2v.generate_video(faceimg1, TRANSCRIPT, tmp_path / "missing" / "out.mp4")
    with pytest.raises(MediaError, match="does not exist"):
        s2v.redub(DATA / "grid_bbaf2n_man_denim.mpg", TRANSCRIPT, tmp_path / "missing" / "out.mp4")
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("exception", [RuntimeError, KeyboardInterrupt])
def test_an_interrupted_run_leaves_no_partial_file(s2v, faceimg1, monkeypatch, tmp_path, exception):
    calls = {"n": 0}
    real_run = FrameEngine.run

    def failing_run(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise exception("stopped in the middle")
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(FrameEngine, "run", failing_run)
    out = tmp_path / "out.mp4"
    with pytest.raises(exception, match="stopped in the middle"):
        s2v.generate_video(faceimg1, TRANSCRIPT, out)
    assert calls["n"] == 3
    assert list(tmp_path.iterdir()) == []  # neither OUT.mp4 nor a temporary file


def test_an_existing_output_survives_an_interrupted_run(s2v, faceimg1, monkeypatch, tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous result")

    def failing_run(self, *args, **kwargs):
        raise RuntimeError("stopped")

    monkeypatch.setattr(FrameEngine, "run", failing_run)
    with pytest.raises(RuntimeError):
        s2v.generate_video(faceimg1, TRANSCRIPT, out)
    assert out.read_bytes() == b"previous result"


# ---------------------------------------------------------------------------------------------------- CLI


def test_cli_generate(tiny_weights, faceimg1, tmp_path, capsys):
    from keras_speech2vid.cli import main

    out = tmp_path / "cli.mp4"
    args = ["generate", "--audio", str(TRANSCRIPT), "--outfile", str(out), "--weights", str(tiny_weights),
            "--batch-size", "32", "--no-deblur"]
    for face in faceimg1[:2]:
        args += ["--face", face]
    assert main(args) == 0
    assert abs(count_frames(out) - 154) <= 1
    assert main(["generate", "--face", str(DATA / "obama.jpg"), "--audio", str(TRANSCRIPT), "--outfile",
                 str(tmp_path / "nowhere" / "x.mp4"), "--weights", str(tiny_weights)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("speech2vid generate: error: ") and "does not exist" in err[-1]
    assert main(["generate", "--face", str(DATA / "obama.jpg"), "--audio", str(TRANSCRIPT), "--outfile",
                 str(out), "--weights", str(tmp_path / "noweights")]) == 2
    assert "no such weights folder" in capsys.readouterr().err
    assert main(["generate", "--face", str(DATA / "obama.jpg"), "--audio", str(TRANSCRIPT), "--outfile",
                 str(out), "--weights", str(tiny_weights), "--batch-size", "0"]) == 2
    assert "--batch-size" in capsys.readouterr().err


def test_cli_demo(tiny_weights, tmp_path, monkeypatch, capsys):
    from keras_speech2vid.cli import main
    from keras_speech2vid.inference.demo import demo_files

    _no_bundled_weights(monkeypatch, tmp_path)
    out = tmp_path / "demo.mp4"
    assert main(["demo", "--outfile", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no trained Speech2Vid weights are bundled yet" in err[0]
    assert not out.exists()
    assert main(["demo", "--outfile", str(out), "--weights", str(tiny_weights)]) == 0
    face, speech = demo_files()
    info = io.probe(out)
    assert (info.width, info.height) == (224, 224)
    assert abs(info.duration - io.probe(speech).duration) <= 0.05


def test_demo_assets_are_small_and_attributed():
    from keras_speech2vid.inference.demo import demo_files

    face, speech = demo_files()
    assert speech.stat().st_size < 200_000 and face.stat().st_size < 200_000
    text = (face.parent / "ATTRIBUTION.md").read_text()
    for needed in ("CC BY 4.0", "Chung", "Nagrani", "Zisserman", "VoxCeleb2", face.name, speech.name):
        assert needed in text
    assert io.probe(speech).has_audio and io.read_image(face).shape == (224, 224, 3)


# ---------------------------------------------------------------------------------------------------- memory


def _peak_rss_run(weights, audio, out) -> int:
    """Peak RSS (kB) of a fresh process that generates a video from `audio`."""
    code = (
        "import resource, sys, glob\n"
        "from keras_speech2vid import Speech2Vid\n"
        f"s = Speech2Vid.load({str(weights)!r}, batch_size=16)\n"
        f"s.generate_video(sorted(glob.glob({str(DATA / 'faceimg1' / '*.png')!r})), {str(audio)!r}, {str(out)!r})\n"
        "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([os.sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return int(re.search(r"PEAK (\d+)", proc.stdout).group(1))


def make_long_audio(path, seconds: float):
    """Loop the transcript fixture with ffmpeg into an AAC file of `seconds` seconds."""
    subprocess.run([io.ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y", "-stream_loop", "-1",
                    "-i", str(TRANSCRIPT), "-t", str(seconds), "-ac", "1", "-ar", "16000", "-c:a", "aac",
                    str(path)], check=True)
    return path


@pytest.mark.slow
def test_ten_minutes_of_audio_in_bounded_memory(tiny_weights, tmp_path):
    short = make_long_audio(tmp_path / "short.m4a", 10)
    long = make_long_audio(tmp_path / "long.m4a", 600)
    peak_short = _peak_rss_run(tiny_weights, short, tmp_path / "short.mp4")
    peak_long = _peak_rss_run(tiny_weights, long, tmp_path / "long.mp4")
    print(f"peak RSS: 10 s {peak_short / 1024:.0f} MB, 10 min {peak_long / 1024:.0f} MB")
    assert peak_long - peak_short < 300 * 1024
    assert abs(count_frames(tmp_path / "long.mp4") - 15000) <= 1


def test_an_output_that_is_an_input_is_refused_and_the_input_kept(s2v, tmp_path):
    import hashlib
    import shutil

    from keras_speech2vid.cli import main

    face, speech, video = (shutil.copy(p, tmp_path) for p in (DATA / "obama.jpg", DATA / "tmp.wav",
                                                               DATA / "grid_bbaf2n_man_denim.mpg"))
    os.link(speech, tmp_path / "speech_link.wav")  # another name of the same file
    digest = {p: hashlib.sha256(open(p, "rb").read()).hexdigest() for p in (face, speech, video)}
    cases = [["generate", "--face", face, "--audio", speech, "--outfile", face],
             ["generate", "--face", face, "--audio", speech, "--outfile", str(tmp_path / "speech_link.wav")],
             ["generate", "--face", face, "--audio", speech, "--outfile", str(tmp_path / ".." / tmp_path.name /
                                                                                 "obama.jpg")],
             ["redub", "--video", video, "--audio", speech, "--outfile", video]]
    for argv in cases:
        assert main([str(a) for a in argv]) == 2
    with pytest.raises(MediaError, match="overwrite the input"):
        s2v.generate_video(face, speech, face)
    with pytest.raises(MediaError, match="overwrite the input"):
        s2v.redub(video, speech, speech)
    assert digest == {p: hashlib.sha256(open(p, "rb").read()).hexdigest() for p in digest}


def test_sigterm_leaves_no_partial_video(tiny_weights, tmp_path):
    import signal
    import sys
    import time

    out = tmp_path / "out.mp4"
    cmd = [sys.executable, "-m", "keras_speech2vid.cli", "generate", "--face", str(DATA / "obama.jpg"), "--audio",
           str(DATA / "tmp.wav"), "--outfile", str(out), "--weights", str(tiny_weights), "--full-frame"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob(".out.mp4.*")) and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "finished before it could be interrupted"
    partial = list(tmp_path.glob(".out.mp4.*"))
    assert partial and all(p.suffix == ".part" for p in partial)  # a temporary never looks like an mp4
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130 and "interrupted" in err
    assert list(tmp_path.iterdir()) == []  # no output, no temporary


def test_an_output_name_too_long_for_its_temporary_is_refused_first(s2v, tmp_path):
    from keras_speech2vid.io import MAX_NAME

    out = tmp_path / ("x" * (MAX_NAME - 3) + ".mp4")  # 255 bytes would fit; its temporary would not
    with pytest.raises(MediaError, match="too long") as e:
        s2v.generate_video(DATA / "obama.jpg", np.zeros(4000, np.float32), out)
    assert "\n" not in str(e.value) and not list(tmp_path.iterdir())
    ok = tmp_path / ("y" * (MAX_NAME - 4) + ".mp4")
    assert s2v.generate_video(DATA / "obama.jpg", np.zeros(4000, np.float32), ok) == ok and ok.is_file()


def test_a_112_thumbnail_is_detected_not_taken_as_aligned(s2v, tmp_path):
    import cv2

    from keras_speech2vid.cli import build_parser
    from keras_speech2vid.face import find_face

    image = io.read_image(DATA / "obama.jpg")
    left, top, right, bottom = find_face(image).xyxy
    cx, cy, half = (left + right) / 2, (top + bottom) / 2, 0.8 * (right - left)
    thumb = cv2.resize(image[int(cy - half):int(cy + half), int(cx - half):int(cx + half)], (112, 112),
                       interpolation=cv2.INTER_AREA)  # a face thumbnail, not an aligned crop
    as_crop, _, _ = s2v.prepare_faces(thumb, aligned=True)
    detected, _, _ = s2v.prepare_faces(thumb, aligned=False)
    auto, _, _ = s2v.prepare_faces(thumb)
    np.testing.assert_array_equal(as_crop[0], thumb)  # --aligned forces
    assert np.abs(detected[0].astype(np.int16) - thumb.astype(np.int16)).mean() > 5  # re-aligned
    np.testing.assert_array_equal(auto[0], detected[0])  # the default sees the face is not at the aligned place
    aligned_again, _, _ = s2v.prepare_faces(detected[0])
    np.testing.assert_array_equal(aligned_again[0], detected[0])  # an aligned crop stays as it is
    tiny = cv2.resize(image, (112, 75), interpolation=cv2.INTER_AREA)
    tiny = cv2.copyMakeBorder(tiny, 18, 19, 0, 0, cv2.BORDER_REPLICATE)  # a 112×112 thumbnail, face too small
    cv2.imwrite(str(tmp_path / "thumb.png"), tiny[..., ::-1])
    with pytest.raises(NoFaceError, match=r"thumb.png: no face found \(if it is an aligned 112×112 crop"):
        s2v.prepare_faces(tmp_path / "thumb.png")
    args = build_parser().parse_args(["generate", "--face", "t.png", "--audio", "a.wav", "--outfile", "o.mp4",
                                      "--no-aligned"])
    assert args.no_aligned and not args.aligned
    with pytest.raises(SystemExit):
        build_parser().parse_args(["generate", "--face", "t.png", "--audio", "a.wav", "--outfile", "o.mp4",
                                   "--aligned", "--no-aligned"])


def test_identity_images_without_a_face_are_skipped_while_one_remains(s2v, tmp_path):
    import cv2

    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 120, np.uint8))
    with pytest.warns(UserWarning, match="blank.png: no face"):
        crops, _, _ = s2v.prepare_faces([blank, DATA / "obama.jpg", blank])
    alone, _, _ = s2v.prepare_faces(DATA / "obama.jpg")
    assert len(crops) == 1 and np.array_equal(crops[0], alone[0])
    with pytest.raises(NoFaceError, match="no face found in any of the 2 images") as e:
        s2v.prepare_faces([blank, blank])
    assert "\n" not in str(e.value) and "blank.png" in str(e.value)
