"""The stream of generated frames (`FrameStream`) and the output-path check."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from keras_speech2vid.errors import MediaError
from keras_speech2vid.io import MAX_NAME



class FrameStream:
    """An iterator of RGB uint8 frames that knows, before the first frame, what a writer needs.

    Attributes:
      num_frames: how many frames it yields; size: (width, height); fps; audio: the audio source
      (path or waveform) to mux; background: the still `Background` of a full-frame run (else None).
    """

    def __init__(self, make: Callable[[], Iterator[np.ndarray]], num_frames: int, size: tuple[int, int],
                 fps: float, audio, progress: bool = False, desc: str = "generating", background=None):
        self.num_frames = int(num_frames)
        self.size = (int(size[0]), int(size[1]))
        self.fps = float(fps)
        self.audio = audio
        self.background = background
        self._make = make
        self._it = None
        self._bar = None
        self._progress = progress
        self._desc = desc

    def __len__(self) -> int:
        return self.num_frames

    def __iter__(self):
        return self

    def __next__(self) -> np.ndarray:
        if self._it is None:
            from tqdm.auto import tqdm

            self._it = self._make()
            self._bar = tqdm(total=self.num_frames, unit="frame", desc=self._desc, disable=not self._progress,
                             file=sys.stderr, dynamic_ncols=True)
        try:
            frame = next(self._it)
        except StopIteration:
            self.close()
            raise
        self._bar.update(1)
        return frame

    def close(self) -> None:
        if self._it is not None and hasattr(self._it, "close"):
            self._it.close()
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def write(self, outfile) -> Path:
        """Stream every frame into `outfile` (mp4, audio muxed as AAC, written atomically)."""
        from keras_speech2vid.io import VideoWriter

        outfile = Path(outfile)
        try:
            with VideoWriter(outfile, self.fps, self.size, audio=self.audio) as writer:
                for frame in self:
                    writer.write(frame)
        finally:
            self.close()
        return outfile


def check_outfile(outfile, inputs=()) -> Path:
    """Fail early (before any model work) when the output folder does not exist, or when the output
    is one of the `inputs` (the same path, or another name of the same file): writing it would destroy it."""
    import os

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
