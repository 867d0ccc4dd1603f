"""``speech2vid demo``: the bundled face speaking the bundled speech, and the one line that checks it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_speech2vid.errors import MediaError
from keras_speech2vid.io import check_outfile


def demo_files() -> tuple[Path, Path]:
    """(face image, speech) bundled for ``speech2vid demo`` (VoxCeleb2, CC BY 4.0; see assets/demo/ATTRIBUTION.md)."""
    import importlib.resources

    folder = Path(str(importlib.resources.files("keras_speech2vid") / "assets" / "demo"))
    face, speech = folder / "face.jpg", folder / "speech.m4a"
    for path in (face, speech):
        if not path.is_file():
            raise MediaError(f"{path}: bundled demo file missing (reinstall keras_speech2vid)")
    return face, speech


def run_demo(s2v, outfile, **kwargs) -> tuple[Path, str]:
    """The demo, full frame, into `outfile` with `s2v` (a `Speech2Vid`; `kwargs` go to its `generate`).

    Returns the path and one checkable line: frames, duration, fps, and the mouth's motion against the
    upper face's (`evaluation.metrics.mouth_motion`, on the output frames warped back to the aligned face).
    """
    from keras_speech2vid.evaluation.metrics import mouth_motion
    from keras_speech2vid.face import warp_face

    face, speech = demo_files()
    outfile = check_outfile(outfile, [face, speech])
    stream = s2v.generate(face, speech, full_frame=True, **kwargs)
    matrix, faces = stream.background.matrix, []
    stream.tap(lambda frame: faces.append(warp_face(frame, matrix, exact=False)))
    stream.write(outfile)
    mouth, upper = mouth_motion(np.stack(faces))
    seconds = len(faces) / stream.fps
    return outfile, (f"{outfile}: {len(faces)} frames, {seconds:.2f} s at {stream.fps:g} fps; mouth motion "
                     f"{mouth:.1f} grey levels, {mouth / max(upper, 1e-6):.1f}x the upper face's")
