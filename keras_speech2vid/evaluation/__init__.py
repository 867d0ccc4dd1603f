"""Evaluation: self-reconstruction of real talking clips, with image and lip-motion metrics.

Use::

    from keras_speech2vid.evaluation import EvalConfig, evaluate

    report = evaluate(["a.mp4", "b.mp4"], "eval_out", weights="weights/", config=EvalConfig(max_seconds=10))
    report["overall"]["model"]["psnr"], report["overall"]["static"]["lmd"]

`protocol` holds the protocol (identity frames, scored frames, baselines), `metrics` the NumPy metrics
(PSNR, SSIM, LMD, mouth aperture, AV offset), `report` the output files (report.json, report.md, PNG plots).
The command line front is ``speech2vid evaluate``.
"""

from keras_speech2vid.evaluation.metrics import (
    av_offset,
    face_landmarks,
    lag_correlations,
    lmd,
    mouth_aperture,
    mouth_box,
    pearson_r,
    psnr,
    ssim,
)
from keras_speech2vid.evaluation.protocol import (
    METHODS,
    ClipFaces,
    EvalConfig,
    FramePlan,
    evaluate,
    evaluate_clip,
    mismatch_waveform,
    plan_frames,
    read_clip,
    run_evaluation,
)
from keras_speech2vid.evaluation.report import read_report, write_report

__all__ = [
    "METHODS",
    "ClipFaces",
    "EvalConfig",
    "FramePlan",
    "av_offset",
    "evaluate",
    "evaluate_clip",
    "face_landmarks",
    "lag_correlations",
    "lmd",
    "mismatch_waveform",
    "mouth_aperture",
    "mouth_box",
    "pearson_r",
    "plan_frames",
    "psnr",
    "read_clip",
    "read_report",
    "run_evaluation",
    "ssim",
    "write_report",
]
