"""Audio decoding and probing (keras_speech2vid.io, audio part)."""

import shutil
import subprocess

import numpy as np
import pytest

from keras_speech2vid import io
from keras_speech2vid.errors import AudioError, MediaError
from tests.conftest import DATA, shared_path

AUDIO_SUFFIXES = {".wav", ".mp3", ".mp4", ".mpg", ".flac", ".m4a", ".ogg", ".mkv", ".mov"}
# the fixtures copied into tests/data: mp3, MP2 in mpg, AAC in mp4, 16 kHz wav
LOCAL_MEDIA = ["tmp.wav", "transcript.mp3", "vox2_00086_man_suit_red_bg.mp4", "grid_bbaf2n_man_denim.mpg"]


def ffmpeg(*args):
    """Run ffmpeg (test-time fixture making), failing the test on an error."""
    proc = subprocess.run([io.ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y", *map(str, args)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def container_duration(path) -> float:
    """The container's duration: ffprobe's when it is on PATH, else the same header via `io.probe`."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe:
        out = subprocess.run([ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
                             capture_output=True, text=True).stdout.strip()
        if out and out != "N/A":
            return float(out)
    return io.probe(path).duration


def check_decodes(path):
    audio = io.decode_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert np.isfinite(audio).all()
    assert np.abs(audio).max() < 1.1  # floats near [-1, 1), not int16 scale
    assert np.sqrt(np.mean(audio**2)) > 1e-3, "decoded audio is (near) silent"
    decoded = audio.size / 16000
    duration = container_duration(path)
    assert abs(decoded - duration) <= 0.040, f"{path.name}: decoded {decoded:.3f} s, container {duration:.3f} s"
    return audio


@pytest.mark.parametrize("name", LOCAL_MEDIA)
def test_local_fixtures_decode_with_container_duration(name):
    check_decodes(DATA / name)


def test_every_shared_audio_file_decodes():
    files = []
    for folder in (shared_path("data", "clips"), shared_path("data", "reference")):
        files += [p for p in sorted(folder.rglob("*")) if p.suffix.lower() in AUDIO_SUFFIXES]
    kinds = set()
    for path in files:
        info = io.probe(path)
        assert info.has_audio, path
        check_decodes(path)
        kinds.add((path.suffix.lower(), info.audio_sample_rate, info.audio_channels))
    # the formats the issue names are really among them
    suffixes = {k[0] for k in kinds}
    assert {".mp3", ".wav", ".mpg", ".mp4"} <= suffixes
    assert (".wav", 48000, 2) in kinds


def test_tmp_wav_decodes_to_its_int16_samples():
    from scipy.io import wavfile

    rate, ints = wavfile.read(DATA / "tmp.wav")
    assert rate == 16000
    np.testing.assert_array_equal(io.decode_audio(DATA / "tmp.wav"), ints.astype(np.float32) / 32768.0)


def test_48k_stereo_wav_and_flac_decode_to_the_same_16k_signal(tmp_path):
    ref = io.decode_audio(DATA / "tmp.wav")
    stereo = tmp_path / "st48.wav"
    ffmpeg("-i", DATA / "tmp.wav", "-af", "pan=stereo|c0=c0|c1=c0", "-ar", 48000, "-c:a", "pcm_s16le", stereo)
    flac_mono = tmp_path / "mono16.flac"
    ffmpeg("-i", DATA / "tmp.wav", "-c:a", "flac", flac_mono)
    flac_stereo = tmp_path / "st44.flac"
    ffmpeg("-i", DATA / "tmp.wav", "-af", "pan=stereo|c0=c0|c1=c0", "-ar", 44100, "-c:a", "flac", flac_stereo)
    assert io.probe(stereo).audio_sample_rate == 48000 and io.probe(stereo).audio_channels == 2

    np.testing.assert_array_equal(io.decode_audio(flac_mono), ref)  # lossless, same rate: bit-exact
    for path in (stereo, flac_stereo):
        audio = io.decode_audio(path)
        assert audio.shape == ref.shape, path.name
        err = audio - ref
        snr = 10 * np.log10(np.sum(ref**2) / np.sum(err**2))
        assert snr > 35.0, f"{path.name}: SNR {snr:.1f} dB"
        assert np.abs(err).max() < 0.02


def test_stereo_is_mixed_to_the_channel_mean(tmp_path):
    ref = io.decode_audio(DATA / "tmp.wav")
    left_only = tmp_path / "left.wav"
    ffmpeg("-i", DATA / "tmp.wav", "-af", "pan=stereo|c0=c0|c1=0*c0", "-c:a", "pcm_s16le", left_only)
    np.testing.assert_allclose(io.decode_audio(left_only), ref / 2, atol=1e-6)
    quad = tmp_path / "quad.wav"
    ffmpeg("-i", DATA / "tmp.wav", "-af", "pan=quad|c0=c0|c1=c0|c2=c0|c3=c0", "-c:a", "pcm_s16le", quad)
    info = io.probe(quad)
    assert info.has_audio and info.audio_channels == 4  # layouts other than mono/stereo are seen
    np.testing.assert_allclose(io.decode_audio(quad), ref, atol=1e-5)


def test_late_audio_keeps_its_place_on_the_container_timeline(tmp_path):
    """Audio starting 0.3 s after the video is front-padded with 0.3 s of silence (as `-async 1`)."""
    clip = tmp_path / "late.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=32x32:rate=25", "-itsoffset", "0.3", "-i", DATA / "tmp.wav",
           "-t", 1, "-map", "0:v", "-map", "1:a", "-c:v", "mpeg4", "-c:a", "pcm_s16le", clip)
    audio = io.decode_audio(clip)
    ref = io.decode_audio(DATA / "tmp.wav")
    lead = 4800
    assert not audio[:lead].any()
    np.testing.assert_array_equal(audio[lead:], ref[: audio.size - lead])


def test_other_sample_rates():
    audio = io.decode_audio(DATA / "tmp.wav", sample_rate=8000)
    assert audio.size == 202880 // 2
    with pytest.raises(ValueError, match="Received"):
        io.decode_audio(DATA / "tmp.wav", sample_rate=0)


def assert_one_line_naming(error, path):
    message = str(error.value)
    assert "\n" not in message and str(path) in message, message


def test_missing_and_empty_files(tmp_path):
    missing = tmp_path / "missing.wav"
    with pytest.raises(AudioError, match="no such file") as e:
        io.decode_audio(missing)
    assert_one_line_naming(e, missing)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match="empty") as e:
        io.decode_audio(empty)
    assert_one_line_naming(e, empty)


def test_text_file_named_wav(tmp_path):
    fake = tmp_path / "notes.wav"
    fake.write_text("this is not audio\n" * 20)
    with pytest.raises(AudioError, match="cannot decode audio") as e:
        io.decode_audio(fake)
    assert_one_line_naming(e, fake)
    with pytest.raises(MediaError):
        io.probe(fake)


def test_truncated_mp4_without_index(tmp_path):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes((DATA / "vox2_00086_man_suit_red_bg.mp4").read_bytes()[:80000])
    with pytest.raises(AudioError, match="cannot decode audio") as e:
        io.decode_audio(cut)
    assert_one_line_naming(e, cut)


def test_video_without_audio_stream(tmp_path):
    silent_video = tmp_path / "noaudio.mp4"
    ffmpeg("-i", DATA / "vox2_00086_man_suit_red_bg.mp4", "-t", 0.5, "-an", "-c:v", "copy", silent_video)
    info = io.probe(silent_video)
    assert info.has_video and not info.has_audio
    with pytest.raises(AudioError, match="no audio stream") as e:
        io.decode_audio(silent_video)
    assert_one_line_naming(e, silent_video)


def test_image_has_no_audio_stream(tmp_path):
    with pytest.raises(AudioError, match="no audio stream"):
        io.decode_audio(DATA / "obama.jpg")


def test_short_clip_decodes(tmp_path):
    short = tmp_path / "short.wav"
    ffmpeg("-i", DATA / "tmp.wav", "-t", 0.1, short)
    audio = io.decode_audio(short)
    np.testing.assert_array_equal(audio, io.decode_audio(DATA / "tmp.wav")[:1600])


def test_ffmpeg_is_called_with_argument_lists(monkeypatch):
    calls = []
    real_run = subprocess.run

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return real_run(*args, **kwargs)

    monkeypatch.setattr(io.subprocess, "run", spy)
    io.decode_audio(DATA / "tmp.wav")
    io.probe(DATA / "tmp.wav")
    assert len(calls) == 2
    for args, kwargs in calls:
        assert isinstance(args[0], list) and all(isinstance(a, str) for a in args[0])
        assert not kwargs.get("shell", False)


def test_ffmpeg_falls_back_to_path(monkeypatch):
    import imageio_ffmpeg

    def broken():
        raise RuntimeError("no bundled binary")

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", broken)
    monkeypatch.setattr(io.shutil, "which", lambda name: "/opt/bin/ffmpeg" if name == "ffmpeg" else None)
    assert io.ffmpeg_exe() == "/opt/bin/ffmpeg"
    monkeypatch.setattr(io.shutil, "which", lambda name: None)
    with pytest.raises(MediaError, match="ffmpeg not found"):
        io.ffmpeg_exe()


def test_nan_or_inf_audio_is_refused_naming_the_file(tmp_path):
    from keras_speech2vid.inference.inputs import load_audio

    samples = np.zeros(16000, np.float32)
    samples[100], samples[200] = np.nan, np.inf
    path = tmp_path / "bad.wav"  # 32-bit float WAV (format 3), written by hand: the wave module has no float
    data = samples.tobytes()
    header = (b"RIFF" + (36 + len(data)).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
              + (3).to_bytes(2, "little") + (1).to_bytes(2, "little") + (16000).to_bytes(4, "little")
              + (64000).to_bytes(4, "little") + (4).to_bytes(2, "little") + (32).to_bytes(2, "little")
              + b"data" + len(data).to_bytes(4, "little"))
    path.write_bytes(header + data)
    with pytest.raises(AudioError, match="NaN or infinite") as e:
        io.decode_audio(path)
    assert_one_line_naming(e, path)
    with pytest.raises(AudioError, match="NaN or infinite"):
        load_audio(samples)


def test_variable_frame_rate_video_is_resampled_to_its_nominal_rate(tmp_path):
    """Issue 21.2: a VFR clip (every other frame of 20..60 dropped) is decoded at its nominal 25 fps, frame k
    being the picture shown at k/25 s, so prepare, evaluate and redub time it as the constant-rate original."""
    import subprocess

    from keras_speech2vid.data.prepare import PrepareConfig, prepare

    original = DATA / "vox2_00086_man_suit_red_bg.mp4"
    vfr = tmp_path / "vfr.mp4"
    subprocess.run([io.ffmpeg_exe(), "-v", "error", "-i", str(original), "-vf",
                    r"select='not(between(n\,20\,60)*mod(n\,2))'", "-fps_mode", "vfr", "-c:a", "copy", str(vfr)],
                   check=True)
    info, base = io.probe(vfr), io.probe(original)
    assert info.variable_frame_rate and not base.variable_frame_rate and info.fps == base.fps == 25.0
    ours, theirs = list(io.iter_frames(vfr)), list(io.iter_frames(original))
    assert abs(len(ours) - len(theirs)) <= 1 and abs(len(ours) - info.duration * 25) <= 1
    for k in (10, 41, 100):  # 41 was dropped: the picture shown then is frame 40's
        diffs = [np.abs(ours[k].astype(int) - theirs[j]).mean() for j in range(k - 3, k + 4)]
        assert k - 3 + int(np.argmin(diffs)) == (40 if k == 41 else k), (k, diffs)
    manifest = prepare([vfr], tmp_path / "data", PrepareConfig(val_fraction=0.0, sync=False), progress=False)
    video = manifest["videos"][0]
    assert video["fps"] == 25.0 and abs(video["frames"] - len(theirs)) <= 1
