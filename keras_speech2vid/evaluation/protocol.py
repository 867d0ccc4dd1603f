"""Self-reconstruction evaluation on real talking clips (the backend of ``speech2vid evaluate``).

For each clip, the model re-creates the clip's own face from the clip's own audio and a few identity
frames of the same clip, and the result is compared with the real (aligned) face, frame by frame.

Protocol, per clip
  1. Span: the first ``max_seconds`` of the clip (all of it by default). Its frames are tracked
     (`face.track_video`, smoothing on, as the training data) and the **longest face track** in the span is
     evaluated; frames of other tracks and frames without a face are not used. The ground truth of frame t
     is the 109×109 target crop (`face.target_crop`) of the track's aligned 112 face, exactly as training
     targets are made.
  2. Identity frames (never the target, nor its neighbours): the track's first
     R = max(n, ceil(``reference_fraction`` · L)) frames (L the track's length, n ``identity_frames``) form
     the *reference* part; the n identity frames are spread evenly over it (frame start + floor((i + ½)·R/n),
     i = 0..n−1, all distinct). Only frames more than ``guard`` frames after the last identity frame are
     *scored*: every scored frame is at least guard + 1 frames away from every identity frame, and the
     identity is the same for the whole clip (the identity branch runs once). With the defaults (n = 5,
     20 %, guard 2) a 3 s clip at 25 fps keeps 59 of its 75 frames (identity frames 1, 4, 7, 10, 13;
     scored 16..74). A track with fewer than ``min_frames`` scored frames is skipped (reported under
     "skipped" with the reason, as is a clip without a face).
     The generator gets the n faces through `inference.fit_faces` (repeated or subsampled to the count the
     chosen generator takes: the 1-image generator for n = 1 when the weights have one, else the 5-image one).
  3. Every scored frame is generated from its own audio window (the same windows as generation:
     `FrameEngine.windows_at`, MFCC or Whisper as the generator hears, with the model's alignment and offset), and deblurred when the weights have a
     deblurrer (unless ``deblur=False``).
  4. Two baselines, computed in the same run on the same scored frames:
     * ``static``: the last identity frame (the one nearest the scored frames), its 109 crop repeated.
     * ``mismatched``: the model with the same identity, driven by another clip's audio: the next clip in
       the list (the last clip takes the first), looped or trimmed to this clip's audio length
       (``np.resize``), so frame t hears the other clip at time t. With a single clip, its own audio
       circularly shifted by half its length.
  5. Metrics (`keras_speech2vid.evaluation.metrics`) for every method: PSNR and SSIM of the 109 crop and of
     the mouth box; LMD of the 20 mouth landmarks (dlib on both faces, 112 coordinates); the Pearson r of
     the generated and true mouth-aperture series over the scored frames (0 where undefined: a constant
     series such as the static baseline's); the estimated AV offset, the lag within ±``max_lag`` frames
     (at most half the series) that maximises that correlation. With a SyncNet (the bundled one by default),
     LSE-D and LSE-C (`keras_speech2vid.sync`: min mean distance and confidence over ±15 frames) of every
     method's scored frames against the clip's own audio, and of the real frames ("real"). These come from
     this package's SyncNet: they are not comparable with numbers computed with the original network.

Self-check (``self_check=True``): the ground truth itself is passed in as the "model" output (no weights
needed; the mismatched baseline is left out as it needs a model). It must give PSNR +inf, SSIM 1, LMD 0,
aperture r 1 and AV offset 0: a check of the pipeline's bookkeeping.

Overall figures: the frame metrics (PSNR, SSIM, mouth PSNR/SSIM, LMD) are averaged over all scored frames
of all clips (frame-weighted); aperture r, AV offset and its |value| are averaged over clips.

Memory: the aligned crops of the evaluated span are held (37 KB a frame, 55 MB a minute at 25 fps);
generated frames are scored as they come and dropped. Use ``max_seconds`` for long clips.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from keras_speech2vid.errors import NoFaceError, Speech2VidError
from keras_speech2vid.evaluation import metrics as M

FORMAT = "keras_speech2vid-evaluation-1"
METHODS = ("model", "static", "mismatched")
FRAME_METRICS = ("psnr", "ssim", "psnr_mouth", "ssim_mouth", "lmd")
CLIP_METRICS = ("aperture_r", "av_offset")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Settings of the evaluation protocol (see the module doc)."""

    identity_frames: int = 5
    guard: int = 2  # frames between the last identity frame and the first scored frame, exclusive
    reference_fraction: float = 0.2  # share of the track the identity frames are taken from
    max_seconds: float | None = None  # evaluate only the start of each clip
    max_lag: int = 10  # AV offset search range, frames each way
    mouth_margin: float = M.MOUTH_MARGIN
    min_frames: int = 3  # scored frames a clip needs
    deblur: bool = True
    sync: bool = True  # LSE-D / LSE-C when a SyncNet is available

    def __post_init__(self):
        checks = {
            "identity_frames": self.identity_frames >= 1,
            "guard": self.guard >= 0,
            "reference_fraction": 0.0 <= self.reference_fraction < 1.0,
            "max_seconds": self.max_seconds is None or self.max_seconds > 0,
            "max_lag": self.max_lag >= 0,
            "mouth_margin": self.mouth_margin >= 0,
            "min_frames": self.min_frames >= 2,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"invalid {name}. Received: {name}={getattr(self, name)!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class FramePlan:
    """Which frames of a track are identity frames and which are scored (frame indices in the clip)."""

    start: int  # the track's first frame
    stop: int  # one past its last frame
    identity: tuple[int, ...]
    static: int  # the static baseline's frame
    scored_start: int  # scored frames: scored_start .. stop − 1

    @property
    def scored(self) -> np.ndarray:
        return np.arange(self.scored_start, self.stop)

    @property
    def num_scored(self) -> int:
        return max(0, self.stop - self.scored_start)


def plan_frames(start: int, stop: int, identity_frames: int = 5, guard: int = 2,
                reference_fraction: float = 0.2) -> FramePlan:
    """Identity and scored frames of the track ``start .. stop − 1`` (see the module doc, step 2).

    Every scored frame t satisfies |t − i| > guard for every identity frame i. The plan may have no scored
    frames (a short track); check `FramePlan.num_scored`.
    """
    length = int(stop) - int(start)
    n = int(identity_frames)
    if length < 1 or n < 1 or guard < 0:
        raise ValueError(f"need a non-empty track, identity_frames >= 1 and guard >= 0. Received: "
                         f"start={start}, stop={stop}, identity_frames={identity_frames}, guard={guard}")
    reference = max(n, int(math.ceil(reference_fraction * length)))
    identity = tuple(int(start) + int(math.floor((i + 0.5) * reference / n)) for i in range(n))
    scored_start = min(identity[-1] + int(guard) + 1, int(stop))
    return FramePlan(int(start), int(stop), identity, identity[-1], scored_start)


def mismatch_waveform(waves: Sequence[np.ndarray], index: int) -> tuple[np.ndarray, int | None]:
    """The mismatched baseline's audio for clip `index`, and the clip it comes from (None: its own).

    The next clip's audio (cyclically), looped or trimmed to this clip's length; with one clip, its own
    audio circularly shifted by half its length.
    """
    own = np.asarray(waves[index], dtype=np.float32)
    if len(waves) < 2:
        return np.roll(own, len(own) // 2), None
    other_index = (index + 1) % len(waves)
    return np.resize(np.asarray(waves[other_index], dtype=np.float32), len(own)), other_index


# ----------------------------------------------------------------------------------------------------------
# reading a clip


@dataclasses.dataclass
class ClipFaces:
    """The tracked face of one clip: its longest track's aligned 112 crops (frame index → crop)."""

    path: Path
    fps: float
    frames_read: int
    track: int
    start: int
    stop: int
    crops: dict[int, np.ndarray]

    def truth(self, index: int) -> np.ndarray:
        from keras_speech2vid.face import target_crop

        return target_crop(self.crops[index])


def read_clip(path, max_seconds: float | None = None, box=None, track_config=None) -> ClipFaces:
    """Track the clip's first `max_seconds` (all of it when None) and keep its longest face track.

    Raises:
      MediaError: unreadable video. NoFaceError: no face in the span.
    """
    from keras_speech2vid.face import track_spans, track_video
    from keras_speech2vid.io import probe

    path = Path(path)
    info = probe(path)
    fps = float(info.fps or 25.0)
    limit = None if max_seconds is None else max(1, int(round(max_seconds * fps)))
    records, crops = [], {}
    stream = track_video(path, box=box, config=track_config)
    try:
        for frame, rec in stream:
            if limit is not None and rec.index >= limit:
                break
            records.append(rec)
            if rec.has_face:
                crops[rec.index] = rec.crop(frame)
    finally:
        stream.close()
    spans = track_spans(records)
    if not spans:
        raise NoFaceError(f"{path}: no face track in the evaluated frames")
    best = max(spans, key=lambda s: (s.length, -s.start))
    keep = {k: v for k, v in crops.items() if best.start <= k < best.stop}
    return ClipFaces(path, fps, len(records), best.track, best.start, best.stop, keep)


# ----------------------------------------------------------------------------------------------------------
# scoring


class _Scorer:
    """Per-frame metrics of one method against the truth, and its aperture series."""

    def __init__(self, box):
        self.box = box
        self.values = {k: [] for k in FRAME_METRICS}
        self.aperture: list[float] = []
        self.detected: list[bool] = []

    def add(self, face: np.ndarray, truth: np.ndarray, truth_landmarks: np.ndarray, landmarks=None):
        face = np.asarray(face)
        if landmarks is None:
            landmarks = M.face_landmarks(face)
        points, detected = landmarks
        v = self.values
        v["psnr"].append(M.psnr(face, truth))
        v["ssim"].append(M.ssim(face, truth))
        v["psnr_mouth"].append(M.psnr(M.crop_box(face, self.box), M.crop_box(truth, self.box)))
        v["ssim_mouth"].append(M.ssim(M.crop_box(face, self.box), M.crop_box(truth, self.box)))
        v["lmd"].append(M.lmd(points, truth_landmarks))
        self.aperture.append(M.mouth_aperture(points))
        self.detected.append(bool(detected))

    def summary(self, truth_aperture: Sequence[float], max_lag: int) -> dict:
        out = {k: float(np.mean(v)) for k, v in self.values.items()}
        r, defined = M.pearson_r(self.aperture, truth_aperture)
        lag, lag_r = M.av_offset(self.aperture, truth_aperture, max_lag)
        out.update(aperture_r=r, aperture_r_defined=defined, av_offset=lag, av_offset_r=lag_r,
                   landmarks_detected=float(np.mean(self.detected)))
        return out


def _generated_frames(s2v, engine, identity, wave, frames, fps, deblur: bool):
    """The model's uint8 109 faces for the given frame indices of a clip with audio `wave` (streamed)."""
    windows = engine.windows_at(wave, frames, fps, s2v.alignment, s2v.offset, s2v.audio_config)
    return engine.iter_frames([windows], identity, deblur)


def _lse(syncnet, grey: list, frames, mfcc, fps) -> dict | None:
    """LSE-D, LSE-C and SyncNet's offset of grey sync crops at consecutive frame indices."""
    result = syncnet.estimate(np.stack(grey), np.asarray(frames, np.int64), mfcc, fps) if grey else None
    if result is None:
        return None
    return {"lse_d": result.min_distance, "lse_c": result.confidence, "sync_offset": result.offset}


def evaluate_clip(faces: ClipFaces, wave: np.ndarray, config: EvalConfig, s2v=None, mismatch_wave=None,
                  self_check: bool = False, syncnet=None) -> dict:
    """Score one tracked clip (see the module doc). Returns the clip's report entry.

    Args:
      faces: `read_clip`'s result; wave: the clip's 16 kHz audio; s2v: a `Speech2Vid` (not needed for
      the self-check); mismatch_wave: the mismatched baseline's audio (None: no mismatched baseline).

    Raises:
      Speech2VidError: the track has fewer than ``config.min_frames`` scored frames.
    """
    from keras_speech2vid.face import target_crop
    from keras_speech2vid.sync import sync_crop

    if s2v is None and not self_check:
        raise ValueError("evaluate_clip needs a Speech2Vid model unless self_check=True")
    plan = plan_frames(faces.start, faces.stop, config.identity_frames, config.guard, config.reference_fraction)
    if plan.num_scored < config.min_frames:
        raise Speech2VidError(f"{faces.path}: face track of {faces.stop - faces.start} frames leaves "
                              f"{plan.num_scored} scored frames (need {config.min_frames})")
    frames = plan.scored
    box = M.mouth_box(config.mouth_margin)
    truth = [faces.truth(int(t)) for t in frames]
    truth_landmarks = [M.face_landmarks(face) for face in truth]
    truth_points = np.stack([p for p, _ in truth_landmarks])
    truth_aperture = M.mouth_aperture(truth_points)

    scorers: dict[str, _Scorer] = {}
    sources: dict[str, object] = {}
    identity_faces = [faces.crops[i] for i in plan.identity]
    count = None
    if self_check:
        sources["model"] = iter(truth)
    else:
        count = s2v.choose_generator(len(identity_faces))
        engine = s2v.engine(count)
        identity = engine.identity_for(identity_faces)
        deblur = bool(config.deblur)
        sources["model"] = _generated_frames(s2v, engine, identity, wave, frames, faces.fps, deblur)
    static_face = target_crop(faces.crops[plan.static])
    static_landmarks = M.face_landmarks(static_face)
    sources["static"] = (static_face for _ in frames)
    if mismatch_wave is not None and not self_check:
        sources["mismatched"] = _generated_frames(s2v, engine, identity, mismatch_wave, frames, faces.fps,
                                                  bool(config.deblur))
    model_grey, effect = [], None  # grey model frames, to measure what the mismatched audio changes
    sync_crops: dict[str, list] = {}
    for name, source in sources.items():
        scorer = scorers[name] = _Scorer(box)
        other_grey = []
        for k, face in enumerate(source):
            scorer.add(face, truth[k], truth_points[k], static_landmarks if name == "static" else None)
            if syncnet is not None:
                sync_crops.setdefault(name, []).append(sync_crop(face))
            if name in ("model", "mismatched") and not self_check:
                (model_grey if name == "model" else other_grey).append(M.grey(face))
        if name == "mismatched":
            mouth, rest = M.audio_effect(model_grey, other_grey, box)
            effect = {"mouth": float(mouth.mean()), "rest": float(rest.mean()), "frames": len(mouth)}
        if len(scorer.aperture) != len(frames):
            raise Speech2VidError(f"{faces.path}: {name} gave {len(scorer.aperture)} frames, expected {len(frames)}")

    methods = {name: s.summary(truth_aperture, config.max_lag) for name, s in scorers.items()}
    real = None
    if syncnet is not None:
        from keras_speech2vid import audio as A

        mfcc = A.padded_mfcc(wave).numpy()
        for name in methods:
            methods[name].update(_lse(syncnet, sync_crops[name], frames, mfcc, faces.fps) or {})
        real = _lse(syncnet, [sync_crop(face) for face in truth], frames, mfcc, faces.fps)
    lag_table = {name: {str(lag): r for lag, (r, _) in M.lag_correlations(s.aperture, truth_aperture,
                                                                          config.max_lag).items()}
                 for name, s in scorers.items()}
    return {
        "name": faces.path.stem,
        "path": str(faces.path),
        "fps": faces.fps,
        "frames_read": faces.frames_read,
        "track": {"id": faces.track, "start": faces.start, "stop": faces.stop},
        "identity_frames": list(plan.identity),
        "generator_identity_images": count,
        "static_frame": plan.static,
        "scored": {"start": plan.scored_start, "stop": plan.stop, "count": plan.num_scored},
        "max_lag": M.max_lag_for(len(frames), config.max_lag),
        "truth_landmarks_detected": float(np.mean([d for _, d in truth_landmarks])),
        "methods": methods,
        "real": real,
        "audio_effect": effect,
        "series": {
            "frame": [int(t) for t in frames],
            "aperture": {"truth": [float(v) for v in truth_aperture],
                         **{name: [float(v) for v in s.aperture] for name, s in scorers.items()}},
            "lag_r": lag_table,
        },
        "per_frame": {name: {k: [float(v) for v in vals] for k, vals in s.values.items()}
                      for name, s in scorers.items()},
    }


def overall(clips: Sequence[dict]) -> dict:
    """Summary over clips: frame metrics over all scored frames, aperture r and AV offset over clips."""
    out = {}
    names = [m for m in METHODS if any(m in c["methods"] for c in clips)]
    for name in names:
        entries = [c for c in clips if name in c["methods"]]
        summary: dict = {"clips": len(entries), "frames": int(sum(c["scored"]["count"] for c in entries))}
        for key in FRAME_METRICS:
            values = np.concatenate([np.asarray(c["per_frame"][name][key], np.float64) for c in entries])
            summary[key] = float(np.mean(values))
        summary["aperture_r"] = float(np.mean([c["methods"][name]["aperture_r"] for c in entries]))
        offsets = [c["methods"][name]["av_offset"] for c in entries if c["methods"][name]["av_offset"] is not None]
        summary["av_offset"] = float(np.mean(offsets)) if offsets else None
        summary["av_offset_abs"] = float(np.mean(np.abs(offsets))) if offsets else None
        summary["landmarks_detected"] = float(np.mean([c["methods"][name]["landmarks_detected"] for c in entries]))
        summary.update(_mean_lse([c["methods"][name] for c in entries]))
        out[name] = summary
    real = _mean_lse([c["real"] for c in clips if c.get("real")])
    if real:
        out["real"] = {"clips": sum(bool(c.get("real")) for c in clips), **real}
    effects = [c["audio_effect"] for c in clips if c.get("audio_effect")]
    if effects and "mismatched" in out:  # frame-weighted, as the frame metrics
        frames = sum(e["frames"] for e in effects)
        out["mismatched"]["audio_effect"] = {k: sum(e[k] * e["frames"] for e in effects) / frames
                                             for k in ("mouth", "rest")}
    return out


def _mean_lse(entries: Sequence[dict]) -> dict:
    """Clip means of LSE-D and LSE-C over the entries that have them."""
    have = [e for e in entries if "lse_d" in e]
    return {k: float(np.mean([e[k] for e in have])) for k in ("lse_d", "lse_c")} if have else {}


def _unique_names(paths: Sequence[Path]) -> list[str]:
    seen: dict[str, int] = {}
    names = []
    for p in paths:
        stem = p.stem
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}_{seen[stem]}")
    return names


def run_evaluation(clips: Sequence, config: EvalConfig | None = None, s2v=None, weights=None,
                   self_check: bool = False, log=None, batch_size: int | None = None) -> dict:
    """Evaluate clips (video files with audio) and return the report (a JSON-ready dict; nothing written).

    Args:
      clips: paths of talking-face video clips (each with an audio stream).
      config: an `EvalConfig`; s2v: a loaded `Speech2Vid`, else it is loaded from `weights` (None: the
        bundled weights). Not loaded for the self-check.
      log: a callable taking one line of progress text (e.g. ``print``), or None.
      batch_size: frames per model call when the model is loaded here.

    Raises:
      MediaError/AudioError: a clip cannot be read (before any model work).
      Speech2VidError: no clip could be evaluated.
    """
    from keras_speech2vid.errors import MediaError
    from keras_speech2vid.inference.inputs import load_audio

    config = config or EvalConfig()
    paths = [Path(c) for c in clips]
    if not paths:
        raise ValueError("clips is empty: give at least one video clip")
    for p in paths:
        if not p.is_file():
            raise MediaError(f"{p}: no such file")
    waves = [load_audio(p) for p in paths]  # fail early on a clip without audio
    if s2v is None and not self_check:
        from keras_speech2vid.inference import Speech2Vid

        s2v = Speech2Vid.load(weights, **({} if batch_size is None else {"batch_size": int(batch_size)}))
    syncnet = None
    if config.sync:
        from keras_speech2vid.sync import SyncNet

        syncnet = (SyncNet.find(weights) if weights is not None else None) or SyncNet.find(None)
    names = _unique_names(paths)
    results, skipped = [], []
    for index, path in enumerate(paths):
        mismatch, source = (None, None) if self_check else mismatch_waveform(waves, index)
        try:
            faces = read_clip(path, config.max_seconds)
            entry = evaluate_clip(faces, waves[index], config, s2v=s2v, mismatch_wave=mismatch,
                                  self_check=self_check, syncnet=syncnet)
        except MediaError:
            raise
        except Speech2VidError as e:  # no face track, or too short a track: noted, the others go on
            skipped.append({"path": str(path), "reason": str(e)})
            if log:
                log(f"{path}: skipped ({e})")
            continue
        entry["name"] = names[index]
        if mismatch is not None:
            entry["mismatch_audio"] = (f"own audio circularly shifted by {len(waves[index]) // 2 / 16000:.2f} s"
                                       if source is None else f"audio of {paths[source].name}, looped/trimmed")
        results.append(entry)
        if log:
            m = entry["methods"]["model"]
            log(f"{path}: {entry['scored']['count']} frames, PSNR {m['psnr']:.2f} SSIM {m['ssim']:.3f} "
                f"LMD {m['lmd']:.2f} aperture r {m['aperture_r']:.3f} offset {m['av_offset']}")
    if not results:
        raise Speech2VidError("no clip could be evaluated: " + "; ".join(s["reason"] for s in skipped))
    weights_dir = None if self_check else (str(weights) if weights is not None else None)
    return {
        "format": FORMAT,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "protocol": {
            **config.to_dict(),
            "self_check": bool(self_check),
            "weights": weights_dir,
            "methods": [m for m in METHODS if any(m in c["methods"] for c in results)],
            "mouth_box_109": dict(zip(("top", "bottom", "left", "right"), M.mouth_box(config.mouth_margin))),
            "alignment": None if s2v is None else (s2v.alignment or s2v.audio_config.alignment),
            "deblurrer": None if s2v is None else s2v.deblurrer is not None,
            "syncnet": None if syncnet is None else "this package's SyncNet (LSE-D/LSE-C not comparable with "
                                                     "the original network's)",
        },
        "clips": results,
        "skipped": skipped,
        "overall": overall(results),
    }


def evaluate(clips: Sequence, outdir, config: EvalConfig | None = None, s2v=None, weights=None,
             self_check: bool = False, log=None, batch_size: int | None = None) -> dict:
    """`run_evaluation` and then `report.write_report` into `outdir` (created if needed). Returns the report."""
    from keras_speech2vid.evaluation.report import write_report

    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise Speech2VidError(f"{outdir}: --outdir is a file, not a folder")
    report = run_evaluation(clips, config, s2v=s2v, weights=weights, self_check=self_check, log=log,
                            batch_size=batch_size)
    outdir.mkdir(parents=True, exist_ok=True)
    write_report(report, outdir)
    return report
