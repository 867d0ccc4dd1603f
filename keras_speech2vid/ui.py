"""The browser UI: ``speech2vid ui`` (Gradio, the ``[ui]`` extra) over the same library calls as the CLI.

Face image(s) or a talking video, speech uploaded or recorded, Wav2Lip's options (pads, box, resize
factor, nosmooth, static, fps), a progress bar, the result in the page. Bad input is shown as a message
(`gr.Error`), never a traceback. It binds to 127.0.0.1 unless told otherwise.

`make_video` is the job without Gradio, so that it is tested on its own; `build_ui` wraps it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def _numbers(text: str, name: str) -> list[int] | None:
    """Four integers from "a b c d" (commas allowed), or None for an empty field."""
    text = (text or "").replace(",", " ").strip()
    if not text:
        return None
    try:
        values = [int(v) for v in text.split()]
    except ValueError:
        values = []
    if len(values) != 4:
        raise ValueError(f"{name} needs four whole numbers (top bottom left right). Received: {text!r}")
    return values


def make_video(s2v, faces, speech, outdir, *, video=None, pads: str = "", box: str = "", resize_factor: float = 1,
               nosmooth: bool = False, static: bool = False, fps: float = 25.0, full_frame: bool = True,
               progress: bool = False) -> Path:
    """One UI request: face image paths (or a `video` to re-dub) and a speech file → a new mp4 in `outdir`.

    With a video and no images the video is re-dubbed (Wav2Lip's `--face video.mp4`); otherwise the
    images speak, full frame or as the 109×109 face. Raises the library's one-line errors.
    """
    faces = [str(f) for f in (faces or [])]
    if not speech:
        raise ValueError("no speech: upload or record an audio clip")
    if not faces and not video:
        raise ValueError("no face: upload face image(s) or a video")
    bad = [Path(f).name for f in faces if not f.lower().endswith(IMAGE_SUFFIXES)]
    if bad:
        raise ValueError(f"not an image: {', '.join(bad)} (faces are .jpg, .png, ...; a video goes in the video box)")
    box_values, pad_values = _numbers(box, "box"), _numbers(pads, "pads")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkdtemp(prefix="job-", dir=outdir)) / "speech2vid.mp4"
    if video and not faces:
        return s2v.redub(video, speech, out, box=box_values, smooth=False if nosmooth else None, static=static,
                         progress=progress)
    return s2v.generate_video(faces, speech, out, box=box_values, pads=pad_values, resize_factor=resize_factor,
                              fps=fps, full_frame=full_frame, progress=progress)


def build_ui(s2v, outdir):
    """The Gradio page (`gr.Blocks`) over `make_video`."""
    import gradio as gr

    from keras_speech2vid.errors import Speech2VidError

    def run(faces, video, speech, full_frame, pads, box, resize_factor, nosmooth, static, fps,
            progress=gr.Progress(track_tqdm=True)):
        try:
            return str(make_video(s2v, faces, speech, outdir, video=video, pads=pads, box=box,
                                  resize_factor=resize_factor, nosmooth=nosmooth, static=static, fps=fps,
                                  full_frame=full_frame, progress=True))
        except (Speech2VidError, ValueError) as e:
            raise gr.Error(str(e)) from None

    with gr.Blocks(title="Speech2Vid") as page:
        gr.Markdown("# Speech2Vid\nA face (photos, or a video to re-dub) and speech → a talking-face video "
                    "(\"You said that?\", Chung, Jamaludin & Zisserman, BMVC 2017).")
        with gr.Row():
            with gr.Column():
                faces = gr.File(label="Face image(s)", file_count="multiple", file_types=["image"],
                                elem_id="faces")
                video = gr.Video(label="…or a video to re-dub", sources=["upload"], elem_id="video")
                speech = gr.Audio(label="Speech", sources=["upload", "microphone"], type="filepath",
                                  elem_id="speech")
                with gr.Accordion("Options (Wav2Lip's)", open=False):
                    full_frame = gr.Checkbox(True, label="full frame (paste the face back into the photo)")
                    pads = gr.Textbox(label="pads: top bottom left right (px)", placeholder="0 10 0 0")
                    box = gr.Textbox(label="box: top bottom left right (px)", placeholder="-1 -1 -1 -1")
                    resize_factor = gr.Number(1, label="resize factor", minimum=1)
                    nosmooth = gr.Checkbox(False, label="nosmooth (video)")
                    static = gr.Checkbox(False, label="static: the video's first frame only")
                    fps = gr.Number(25, label="fps (photos)", minimum=1)
                button = gr.Button("Generate", variant="primary", elem_id="generate")
            result = gr.Video(label="Result", elem_id="result")
        button.click(run, [faces, video, speech, full_frame, pads, box, resize_factor, nosmooth, static, fps],
                     result)
    return page


def launch(weights=None, host: str = "127.0.0.1", port: int = 7860, outdir=None, share: bool = False,
           block: bool = True):
    """Load the weights once and serve the page. Returns the Gradio app (running when `block` is False)."""
    from keras_speech2vid.inference import Speech2Vid

    s2v = Speech2Vid.load(weights)
    outdir = Path(outdir) if outdir else Path(tempfile.mkdtemp(prefix="speech2vid-ui-"))
    page = build_ui(s2v, outdir)
    page.queue().launch(server_name=host, server_port=port, share=share, prevent_thread_lock=not block,
                        allowed_paths=[str(outdir)])
    return page
