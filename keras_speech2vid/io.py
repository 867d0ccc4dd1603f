"""Media input/output through ffmpeg: probe, decode audio, stream video frames, write mp4 atomically.

ffmpeg is the binary shipped by `imageio-ffmpeg`, falling back to one on PATH. Every call passes an
argument list (never a shell string). Errors are one line that names the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import dataclasses
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from keras_speech2vid.errors import AudioError, ImageError, MediaError, OutputError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary: imageio-ffmpeg's, else one on PATH."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # noqa: BLE001 - any failure means "not usable", try PATH
        exe = shutil.which("ffmpeg")
        if exe is None:
            raise MediaError("ffmpeg not found: install imageio-ffmpeg or put ffmpeg on PATH") from None
        return exe


def _check_readable(path, error=MediaError) -> Path:
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise error(f"{path}: file is empty")
    return path


def _last_error_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "ffmpeg failed"


@dataclasses.dataclass(frozen=True)
class MediaInfo:
    """Container facts as ffmpeg reports them (the same header ffprobe reads)."""

    duration: float | None
    has_video: bool
    has_audio: bool
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    audio_sample_rate: int | None = None
    audio_channels: int | None = None
    # the stream's average rate differs from its nominal one (tbr): frames come at uneven times, so
    # `iter_frames` resamples them to `fps` (the nominal rate) by their timestamps
    variable_frame_rate: bool = False


# channel counts of ffmpeg's named layouts; "X.Y" layouts have X + Y channels
_NAMED_LAYOUTS = {"mono": 1, "stereo": 2, "downmix": 2, "quad": 4, "hexagonal": 6, "octagonal": 8,
                  "hexadecagonal": 16, "cube": 8}


def _channel_count(layout: str) -> int | None:
    layout = layout.strip()
    name = layout.split("(")[0]
    if name in _NAMED_LAYOUTS:
        return _NAMED_LAYOUTS[name]
    m = re.fullmatch(r"(\d+)\.(\d+)(?:\.(\d+))?", name)
    if m:
        return sum(int(g) for g in m.groups() if g)
    m = re.fullmatch(r"(\d+) channels?", name)
    return int(m.group(1)) if m else None


def probe(path) -> MediaInfo:
    """Read the container header of `path` with `ffmpeg -i` (the first video and audio streams)."""
    path = _check_readable(path)
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
                          capture_output=True, text=True, errors="replace")
    err = proc.stderr
    if "Stream #" not in err:
        raise MediaError(f"{path}: not a readable media file ({_last_error_line(err)})")
    duration = None
    m = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", err)
    if m:
        duration = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    video = re.search(r"Stream #.*?Video: .*?(\d{2,5})x(\d{2,5})", err)
    average = re.search(r"Stream #.*?Video: .*?, (\d+(?:\.\d+)?) fps", err)
    nominal = re.search(r"Stream #.*?Video: .*?, (\d+(?:\.\d+)?) tbr", err)
    # a VFR stream (phones, edited clips) averages below its nominal rate: time it at the nominal one; a
    # nominal rate of 2 or 3 times the average is a field rate (interlaced MPEG, GRID's 25 fps / 50 tbr)
    ratio = float(nominal.group(1)) / float(average.group(1)) if average and nominal else 1.0
    vfr = abs(ratio - 1) > 0.01 and abs(ratio - round(ratio)) > 0.05
    fps = nominal if vfr else (average or nominal)
    # any audio stream counts, whatever its layout; rate and layout are read when present
    audio = re.search(r"Stream #[^\n]*?Audio: [^\n]*", err)
    rate = channels = None
    if audio:
        fields = re.search(r"(\d+) Hz, ([^,\n]+)", audio.group(0))
        if fields:
            rate, channels = int(fields.group(1)), _channel_count(fields.group(2))
    return MediaInfo(
        duration=duration,
        has_video=video is not None,
        has_audio=audio is not None,
        fps=float(fps.group(1)) if (video and fps) else None,
        width=int(video.group(1)) if video else None,
        height=int(video.group(2)) if video else None,
        audio_sample_rate=rate,
        audio_channels=channels,
        variable_frame_rate=vfr and video is not None,
    )


def decode_audio(path, sample_rate: int = 16000) -> np.ndarray:
    """Decode the first audio stream of any file ffmpeg reads to mono float32 at `sample_rate`.

    Values are nominally in [-1, 1) (resampling can overshoot full scale very slightly).

    Any codec, container, channel count and sample rate (wav, flac, mp3, AAC in mp4, MP2 in mpg,
    ...). Channels are mixed down to mono with ffmpeg's standard coefficients, normalised so that
    the mix is never louder than its loudest channel (stereo: (L + R)/2; plain ``-ac 1`` would give
    (L + R)/√2, which can exceed 1), then resampled by ffmpeg. As the original's ``-async 1``, the
    stream is placed on the container's timeline: audio that starts after the container start
    (e.g. after the first video frame) is front-padded with silence and timestamp gaps are filled,
    so sample i is at time i/sample_rate of the file. (MFCC c1..c12 do not depend on the gain.)

    Raises `AudioError` (one line naming the file) for a missing, empty, unreadable or corrupt
    file, a file without an audio stream, or an audio stream that decodes to nothing.
    """
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer. Received: sample_rate={sample_rate!r}")
    path = _check_readable(path, AudioError)
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(path),
           "-map", "0:a:0", "-vn", "-sn", "-dn",
           # one resampler does it all: rate, mono downmix (rematrix_maxval=1 normalises the mix
           # so it is never louder than its loudest channel: stereo → (L + R)/2), float output,
           # and the original's `-async 1` (first_pts=0: pad the start onto the container timeline)
           "-af", f"aresample=osr={int(sample_rate)}:ochl=mono:osf=flt:async=1:first_pts=0:rematrix_maxval=1",
           "-f", "f32le", "-acodec", "pcm_f32le", "-"]
    proc = subprocess.run(cmd, capture_output=True)
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        if "matches no streams" in stderr or "does not contain any stream" in stderr:
            raise AudioError(f"{path}: no audio stream")
        raise AudioError(f"{path}: cannot decode audio ({_last_error_line(stderr)})")
    audio = np.frombuffer(proc.stdout, dtype="<f4").astype(np.float32)
    if audio.size == 0:
        raise AudioError(f"{path}: the audio stream decodes to no samples")
    if not np.isfinite(audio).all():  # float WAVs can hold them; they would fail late, at the AAC mux
        raise AudioError(f"{path}: the audio holds NaN or infinite samples")
    return audio


def read_image(path) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3); grayscale is expanded, alpha dropped."""
    import cv2

    path = _check_readable(path, ImageError)
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageError(f"{path}: not a readable image")
    if image.dtype != np.uint8:
        image = (image / (256 if image.dtype == np.uint16 else 1)).clip(0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    else:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return image


def is_image(path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def iter_frames(path, info: MediaInfo | None = None) -> Iterator[np.ndarray]:
    """Stream the video frames of `path` as RGB uint8 arrays, one at a time (bounded memory); frame k is
    shown at k / `info.fps` s (a variable-rate stream is resampled to its nominal rate)."""
    path = _check_readable(path)
    info = info or probe(path)
    if not info.has_video:
        raise MediaError(f"{path}: no video stream")
    w, h = info.width, info.height
    # a VFR stream is resampled to its nominal rate by timestamp (frames repeated over gaps), so frame k is
    # the picture shown at k / info.fps, as every caller times it
    cfr = ["-vf", f"fps={info.fps}"] if info.variable_frame_rate else []
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(path),
           "-an", *cfr, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    size = w * h * 3
    try:
        while True:
            buf = proc.stdout.read(size)
            if len(buf) < size:
                break
            yield np.frombuffer(buf, dtype=np.uint8).reshape(h, w, 3)
    finally:
        proc.stdout.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stderr.close()


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


MAX_NAME = 255 - 20  # bytes: file systems take 255, `atomic_path` adds ".", ".XXXXXXXX" and ".part"


def check_output_dir(path) -> Path:
    """Fail early, in one line, when the output folder `path` cannot be made or written: a file stands
    there, its name is too long, or the nearest existing folder above it is not writable."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: is a file, not a folder; choose another output folder")
    for part in path.parts:
        if len(part.encode()) > MAX_NAME:
            raise OutputError(f"{path}: name too long ({len(part.encode())} bytes; at most {MAX_NAME})")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: {existing} is not writable")
    return path


_interrupted = False


def mark_interrupted(flag: bool = True) -> None:
    """Record (or clear) a SIGINT/SIGTERM. The CLI's handler calls it before raising KeyboardInterrupt:
    Python drops an exception raised inside a finaliser (`__del__`, a weakref callback), so the flag,
    not the exception alone, is what keeps an interrupted run from renaming an output into place."""
    global _interrupted
    _interrupted = flag


def check_not_interrupted() -> None:
    """Raise KeyboardInterrupt if a SIGINT/SIGTERM was recorded: the last check before a commit."""
    if _interrupted:
        raise KeyboardInterrupt


def check_outfile(outfile, inputs=()) -> Path:
    """Fail early (before any model work) when the output folder does not exist, or when the output
    is one of the `inputs` (the same path, or another name of the same file): writing it would destroy it."""
    outfile = Path(outfile)
    for item in inputs:
        if not isinstance(item, (str, os.PathLike)):
            continue  # arrays and waveforms
        same = Path(item).resolve() == outfile.resolve()
        if not same and outfile.exists() and Path(item).exists():
            same = os.path.samefile(item, outfile)
        if same:
            raise MediaError(f"{outfile}: the output would overwrite the input {item}; choose another --outfile")
    if not outfile.parent.is_dir():
        raise MediaError(f"{outfile}: output folder {outfile.parent} does not exist")
    if len(outfile.name.encode()) > MAX_NAME:  # the temporary beside it adds up to 20 characters
        raise MediaError(f"{outfile}: file name too long ({len(outfile.name.encode())} bytes; at most {MAX_NAME})")
    if not os.access(outfile.parent, os.W_OK):
        raise MediaError(f"{outfile}: output folder {outfile.parent} is not writable")
    if outfile.is_dir():
        raise MediaError(f"{outfile}: is a folder, not a file name")
    return outfile


@contextlib.contextmanager
def native_stderr_muted():
    """Mute what native code (TF's C++ banners, the TFLite converter) writes to fd 2; Python exceptions
    still carry their messages."""
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def atomic_path(outfile, suffix: str | None = None):
    """Yield a temporary path beside `outfile`; rename it onto `outfile` only on success (and not after
    an interrupt, see `mark_interrupted`)."""
    outfile = Path(outfile)
    if not outfile.parent.is_dir():
        raise MediaError(f"{outfile}: output folder {outfile.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{outfile.name}.", suffix=suffix or outfile.suffix, dir=outfile.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would survive the rename
    try:
        yield Path(tmp)
        check_not_interrupted()
        os.replace(tmp, outfile)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically; returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_png(path, rgb: np.ndarray) -> Path:
    """Write an RGB uint8 image as PNG, atomically; returns the path."""
    import cv2

    from keras_speech2vid.errors import Speech2VidError

    ok, data = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    if not ok:
        raise Speech2VidError(f"{path}: PNG encoding failed")
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.tobytes())
    return path


class VideoWriter:
    """Stream RGB frames into an H.264 mp4 (atomic), optionally muxing audio as AAC.

    `audio` is a media file path, or a mono float32 waveform at `sample_rate`. Odd frame sizes get their
    last row or column repeated (yuv420p needs even sizes): a 109×109 face is stored as 110×110. Use as a context manager; frames go to ffmpeg as they come.
    """

    def __init__(self, outfile, fps: float, size: tuple[int, int], audio=None, sample_rate: int = 16000,
                 crf: int = 18):
        self.outfile = Path(outfile)
        self.fps = float(fps)
        self.width, self.height = int(size[0]), int(size[1])
        self.audio = audio
        self.sample_rate = sample_rate
        self.crf = crf
        self.frames_written = 0
        self._stack = contextlib.ExitStack()

    def __enter__(self):
        # ".part": a temporary left by a SIGKILL must not pass for a finished video (ffmpeg is told "-f mp4")
        self._tmp = self._stack.enter_context(atomic_path(self.outfile, suffix=".part"))
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{self.width}x{self.height}",
               "-r", f"{self.fps}", "-i", "-"]
        if self.audio is not None:
            if isinstance(self.audio, (str, os.PathLike)):
                cmd += ["-i", str(self.audio)]
            else:
                wav = self._stack.enter_context(tempfile.NamedTemporaryFile(suffix=".f32", dir=self.outfile.parent))
                np.asarray(self.audio, dtype="<f4").tofile(wav.name)
                cmd += ["-f", "f32le", "-ar", str(self.sample_rate), "-ac", "1", "-i", wav.name]
            cmd += ["-map", "0:v:0", "-map", "1:a:0", "-c:a", "aac", "-b:a", "128k"]
        # yuv420p needs even sizes: an odd frame (the 109 face) gets its last row/column repeated in write()
        cmd[cmd.index("-s") + 1] = f"{self.width + self.width % 2}x{self.height + self.height % 2}"
        cmd += ["-c:v", "libx264", "-preset", "veryfast",
                "-crf", str(self.crf), "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-f", "mp4", str(self._tmp)]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        return self

    def write(self, frame: np.ndarray) -> None:
        frame = np.asarray(frame)
        if frame.dtype != np.uint8:
            frame = (np.clip(frame, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        if frame.shape != (self.height, self.width, 3):
            raise ValueError(f"frame shape {frame.shape} does not match the writer's {(self.height, self.width, 3)}")
        if self.width % 2 or self.height % 2:
            frame = np.pad(frame, ((0, self.height % 2), (0, self.width % 2), (0, 0)), mode="edge")
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).tobytes())
        except BrokenPipeError:
            raise MediaError(f"{self.outfile}: ffmpeg stopped ({_last_error_line(self._proc.stderr.read().decode())})") from None
        self.frames_written += 1

    def __exit__(self, exc_type, exc, tb):
        with contextlib.suppress(BrokenPipeError):
            self._proc.stdin.close()
        if exc_type is not None:
            self._proc.kill()
        rc = self._proc.wait()
        stderr = self._proc.stderr.read().decode("utf-8", "replace")
        self._proc.stderr.close()
        if exc_type is None and (rc != 0 or self.frames_written == 0):
            problem = "no frames written" if self.frames_written == 0 else _last_error_line(stderr)
            error = MediaError(f"{self.outfile}: cannot write video ({problem})")
            self._stack.__exit__(MediaError, error, None)  # removes the temporary file
            raise error
        # renames the temporary file onto outfile on success, removes it on an exception
        return self._stack.__exit__(exc_type, exc, tb)
