"""The stream of generated frames (`FrameStream`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Iterator

import numpy as np


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
        self._taps = []

    def tap(self, fn: Callable[[np.ndarray], None]) -> "FrameStream":
        """Also hand every frame to `fn` as it passes (e.g. to measure the output while it is written)."""
        self._taps.append(fn)
        return self

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
        for fn in self._taps:
            fn(frame)
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
