"""How well our SyncNet reads real clips (``speech2vid evaluate-sync``): the acceptance checks of stage (ii).

Per clip (its longest face track, as `protocol.read_clip`; the audio from the file):

* offset recovery: the audio is delayed by each known offset o (frames; o < 0 advances it) by shifting
  the waveform with zeros, the MFCC is recomputed and the offset estimated; a hit is |estimate − o| ≤ 1
  ("offset±1"), or |estimate − o − the clip's own offset| ≤ 1 ("rel.±1": real clips are not all in sync,
  the own offset is the estimate at o = 0). Chance for a uniform guess over the ±S search is 3 / (2S + 1);
* ROC AUC of the in-sync window distances against those of shifts ≥ `far` frames (o = 0), over the
  windows whose audio lies in the real audio at both shifts (`training.syncnet.far_pairs`);
* LSE-D / LSE-C (min mean distance, confidence) of the clip with its own audio and with another clip's
  audio (the next clip of the list, looped or trimmed: `protocol.mismatch_waveform`).

Figures are given per source (the clip name's first word: grid, vox2, lrcar, ...), over clips of at least
`min_seconds`, and apart for the shorter ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from keras_speech2vid.sync import SyncNet, summarise, sync_crop

SAMPLE_RATE = 16000


def delay_waveform(wave: np.ndarray, frames: int, fps: float) -> np.ndarray:
    """The waveform with its content `frames` video frames later (zeros in front), same length."""
    n = int(round(frames / fps * SAMPLE_RATE))
    if n == 0:
        return wave
    if n > 0:
        return np.concatenate([np.zeros(n, wave.dtype), wave[:-n]])[: len(wave)]
    return np.concatenate([wave[-n:], np.zeros(-n, wave.dtype)])


def source_of(name: str) -> str:
    return name.split("_", 1)[0]


def clip_crops(faces) -> tuple[np.ndarray, np.ndarray]:
    """(frame indices, (T, 48, 80) sync crops) of `protocol.read_clip`'s result."""
    indices = np.array(sorted(faces.crops), np.int64)
    return indices, np.stack([sync_crop(faces.crops[int(k)]) for k in indices])


def check_clip(syncnet: SyncNet, indices: np.ndarray, crops: np.ndarray, fps: float, wave: np.ndarray,
               mismatch: np.ndarray | None, offsets: Sequence[int], far: int = 10) -> dict:
    """One clip's figures (see module doc) from its `clip_crops` and audio."""
    from keras_speech2vid import audio
    from keras_speech2vid.training.syncnet import far_pairs, roc_auc

    estimates, curves = {}, {}
    real = None
    for o in offsets:
        d, at = syncnet.distances(crops, indices, audio.padded_mfcc(delay_waveform(wave, o, fps)).numpy(), fps)
        if not len(d):
            return {"windows": 0}
        result = summarise(d)
        estimates[int(o)] = result.offset
        if o == 0:
            real, centres = d, at
        if o == 5:
            curves["audio 5 frames late"] = result.distances
    in_sync = summarise(real)
    out = {"windows": int(len(real)), "seconds": len(indices) / fps, "estimates": estimates,
           "hits": int(sum(abs(e - o) <= 1 for o, e in estimates.items())), "tried": len(estimates),
           # against the clip's own offset (the estimate at o = 0): real clips are not all in sync
           "hits_relative": int(sum(abs(e - o - in_sync.offset) <= 1 for o, e in estimates.items())),
           "auc": roc_auc(*far_pairs(real, centres, fps, len(wave) / SAMPLE_RATE, syncnet.config, far)),
           "real": {"lse_d": in_sync.min_distance, "lse_c": in_sync.confidence, "offset": in_sync.offset}}
    curves["own audio"] = in_sync.distances
    if mismatch is not None:
        other = syncnet.estimate(crops, indices, audio.padded_mfcc(mismatch).numpy(), fps)
        out["mismatched"] = {"lse_d": other.min_distance, "lse_c": other.confidence, "offset": other.offset}
        curves["other clip's audio"] = other.distances
    out["curves"] = curves  # D(s), s = -S..S
    return out


def plot_clip(entry: dict, max_shift: int, crops: np.ndarray | None = None) -> np.ndarray:
    """RGB plot of a clip's mean distance D(s) over the shift s, for each audio of `check_clip`; with
    `crops` (T, 48, 80), a strip of 8 of them spread over the clip on top: what SyncNet's video stream sees."""
    import cv2

    from keras_speech2vid.evaluation.report import line_plot

    plot = line_plot(entry["curves"], np.arange(-max_shift, max_shift + 1),
                     f"{entry['clip']}: SyncNet mean distance by audio shift (minimum = the offset)",
                     "shift s (frames, + = audio later)", "D(s)")
    if crops is None or not len(crops):
        return plot
    picks = np.linspace(0, len(crops) - 1, 8).round().astype(int)
    strip = np.concatenate([cv2.resize(crops[i], (120, 72), interpolation=cv2.INTER_CUBIC) for i in picks], axis=1)
    return np.concatenate([np.repeat(strip[:, :, None], 3, axis=2), plot[:, :strip.shape[1]]], axis=0)


def sync_check(clips: Sequence, syncnet: SyncNet, offsets: Sequence[int] = range(-10, 11), min_seconds: float = 2.0,
               far: int = 10, progress: bool = True, plots=None) -> dict:
    """Run `check_clip` over clips (each mismatched with the next one's audio); returns the report.

    `plots`: a folder for one `plot_clip` PNG per clip (clips of at least `min_seconds`).
    """
    from tqdm import tqdm

    from keras_speech2vid.errors import Speech2VidError
    from keras_speech2vid.evaluation.protocol import mismatch_waveform, read_clip
    from keras_speech2vid.io import decode_audio

    clips = [Path(c) for c in clips]
    waves = [decode_audio(c) for c in clips]
    entries, skipped = [], []
    for i, clip in enumerate(tqdm(clips, desc="evaluate-sync", unit="clip", disable=not progress)):
        try:
            faces = read_clip(clip)
        except Speech2VidError as e:
            skipped.append({"clip": str(clip), "reason": str(e)})
            continue
        mismatch = mismatch_waveform(waves, i)[0] if len(clips) > 1 else None
        indices, crops = clip_crops(faces)
        entry = check_clip(syncnet, indices, crops, faces.fps, waves[i], mismatch, list(offsets), far)
        if not entry.get("windows"):
            skipped.append({"clip": str(clip), "reason": "no 5-frame window"})
            continue
        entries.append({"clip": clip.stem, "source": source_of(clip.stem), **entry})
        if plots is not None and entry["seconds"] >= min_seconds:
            from keras_speech2vid.io import write_png

            Path(plots).mkdir(parents=True, exist_ok=True)
            write_png(Path(plots) / f"sync_{clip.stem}.png", plot_clip(entries[-1], syncnet.config.max_shift, crops))
    groups: dict[str, dict] = {}
    for long in (True, False):
        chosen = [e for e in entries if (e["seconds"] >= min_seconds) == long]
        for source in sorted({e["source"] for e in chosen}) + ["all"]:
            members = [e for e in chosen if source in ("all", e["source"])]
            if members:
                groups[f"{source}{'' if long else ' (short)'}"] = summarise_group(members)
    s = syncnet.config.max_shift
    return {"offsets": list(map(int, offsets)), "min_seconds": min_seconds, "chance": 3 / (2 * s + 1),
            "groups": groups, "clips": entries, "skipped": skipped,
            "note": "LSE-D/LSE-C by this package's SyncNet: not comparable with the original network's numbers"}


def summarise_group(entries: Sequence[dict]) -> dict:
    tried = sum(e["tried"] for e in entries)
    out = {"clips": len(entries), "offset_within_1": sum(e["hits"] for e in entries) / tried,
           "offset_within_1_relative": sum(e["hits_relative"] for e in entries) / tried,
           "own_offsets": [e["real"]["offset"] for e in entries],
           "auc": _mean([e["auc"] for e in entries]),
           "lse_d_real": float(np.mean([e["real"]["lse_d"] for e in entries])),
           "lse_c_real": float(np.mean([e["real"]["lse_c"] for e in entries]))}
    with_other = [e for e in entries if "mismatched" in e]
    if with_other:
        out.update(lse_d_mismatched=float(np.mean([e["mismatched"]["lse_d"] for e in with_other])),
                   lse_c_mismatched=float(np.mean([e["mismatched"]["lse_c"] for e in with_other])),
                   real_above_mismatched=sum(e["real"]["lse_c"] > e["mismatched"]["lse_c"] for e in with_other),
                   compared=len(with_other))
    return out


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def format_report(report: dict) -> str:
    lines = [f"offsets {report['offsets'][0]}..{report['offsets'][-1]} frames; chance of |error| <= 1: "
             f"{report['chance']:.3f}",
             f"{'group':<22}{'clips':>6}{'offset±1':>10}{'rel.±1':>8}{'AUC':>7}{'LSE-D real':>12}{'LSE-C real':>12}"
             f"{'LSE-C mism.':>13}{'real>mism.':>12}"]
    for name, g in report["groups"].items():
        mism = f"{g['lse_c_mismatched']:.3f}" if "lse_c_mismatched" in g else "-"
        better = f"{g['real_above_mismatched']}/{g['compared']}" if "compared" in g else "-"
        auc = "-" if g["auc"] is None else f"{g['auc']:.3f}"
        lines.append(f"{name:<22}{g['clips']:>6}{g['offset_within_1']:>10.3f}{g['offset_within_1_relative']:>8.3f}"
                     f"{auc:>7}{g['lse_d_real']:>12.3f}"
                     f"{g['lse_c_real']:>12.3f}{mism:>13}{better:>12}")
    if report["skipped"]:
        lines.append(f"{len(report['skipped'])} clips skipped (see the JSON report)")
    lines.append(report["note"])
    return "\n".join(lines)
