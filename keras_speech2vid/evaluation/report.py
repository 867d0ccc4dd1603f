"""Evaluation report files: ``report.json``, ``report.md`` and PNG plots (drawn with OpenCV), all atomic.

Files written by `write_report` into the output folder:
  report.json           the whole report (`protocol.run_evaluation`). Strict JSON: the non-finite numbers
                        (PSNR of identical images is +inf) are written as the strings "inf", "-inf",
                        "nan"; `read_report` turns them back into floats.
  report.md             the protocol in a few lines, a summary table (overall, per method) and one table
                        per clip, with the plots linked.
  <clip>_aperture.png   the true and generated mouth aperture over the scored frames (all methods).
  <clip>_metrics.png    bars of each metric per method for that clip.
  overall_metrics.png   the same bars for the overall figures.

Every file goes to a temporary name in the folder first and is renamed when complete (`io.atomic_path`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from keras_speech2vid.io import write_png, write_text

COLORS = {"truth": (20, 20, 20), "model": (31, 119, 180), "static": (150, 150, 150), "mismatched": (255, 127, 14),
          "real": (44, 160, 44), "own audio": (44, 160, 44), "other clip's audio": (255, 127, 14),
          "audio 5 frames late": (31, 119, 180)}  # the last three: `sync_check` plots
METRIC_LABELS = (  # key, column title, format, fixed plot range (None: from the values)
    ("psnr", "PSNR (dB)", "{:.2f}", None),
    ("ssim", "SSIM", "{:.4f}", (0.0, 1.0)),
    ("psnr_mouth", "mouth PSNR (dB)", "{:.2f}", None),
    ("ssim_mouth", "mouth SSIM", "{:.4f}", (0.0, 1.0)),
    ("lmd", "LMD (px)", "{:.2f}", None),
    ("aperture_r", "aperture r", "{:.3f}", (-1.0, 1.0)),
    ("lse_d", "LSE-D", "{:.3f}", None),
    ("lse_c", "LSE-C", "{:.3f}", None),
)


# ----------------------------------------------------------------------------------------------------------
# JSON


def _to_json(value):
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Path):
        return str(value)
    return value


def _from_json(value):
    if isinstance(value, dict):
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    return value


def dumps(report: dict) -> str:
    """The report as strict JSON text (non-finite numbers as strings)."""
    return json.dumps(_to_json(report), indent=2, allow_nan=False) + "\n"


def read_report(path) -> dict:
    """Read a report.json, with "inf"/"-inf"/"nan" strings back as floats."""
    return _from_json(json.loads(Path(path).read_text(encoding="utf-8")))


# ----------------------------------------------------------------------------------------------------------
# Markdown


def _fmt(value, fmt: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return fmt.format(value)


def _table(rows: dict[str, dict]) -> list[str]:
    head = "| method | " + " | ".join(t for _, t, _, _ in METRIC_LABELS) + " | AV offset (frames) | landmarks found |"
    lines = [head, "|" + "---|" * (len(METRIC_LABELS) + 3)]
    for name, m in rows.items():
        cells = []
        for key, _, fmt, _ in METRIC_LABELS:
            cell = _fmt(m.get(key), fmt)
            if key == "aperture_r" and m.get("aperture_r_defined") is False:
                cell += "*"
            cells.append(cell)
        offset = m.get("av_offset")
        if isinstance(offset, int):
            offset = f"{offset:+d} (r {m.get('av_offset_r', 0.0):.2f})"
        elif isinstance(offset, float):
            offset = f"{offset:+.2f} (mean; mean abs {m.get('av_offset_abs'):.2f})"
        else:
            offset = "–"
        found = m.get("landmarks_detected")
        cells += [offset, "–" if found is None else f"{100 * found:.0f} %"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _audio_effect_line(effect) -> list[str]:
    if not effect:
        return []
    return ["", f"Audio effect: driving the model with the mismatched audio instead of the clip's own changes its "
                f"mouth box by {effect['mouth']:.2f} grey levels and the rest of the face by {effect['rest']:.2f} "
                "(mean absolute difference, 0–255). A mouth that follows the audio changes much more than the rest."]


def markdown(report: dict) -> str:
    """The report.md text."""
    p = report["protocol"]
    box = p["mouth_box_109"]
    title = "Speech2Vid evaluation" + (" — self-check (ground truth as the model output)" if p["self_check"] else "")
    lines = [f"# {title}", "",
             f"{len(report['clips'])} clip(s) evaluated, {len(report['skipped'])} skipped; {report['created']}.", "",
             "Protocol: self-reconstruction of each clip's longest face track from its own audio. "
             f"{p['identity_frames']} identity frames spread over the first {100 * p['reference_fraction']:.0f} % of "
             f"the track; scored frames start {p['guard'] + 1} frames after the last identity frame"
             + (f"; first {p['max_seconds']:g} s of each clip" if p["max_seconds"] else "") + ". "
             "Baselines: *static* = the last identity frame repeated; *mismatched* = the model driven by the next "
             "clip's audio (a single clip: its own audio shifted by half its length). "
             f"Mouth box (109 px): rows {box['top']}–{box['bottom'] - 1}, columns {box['left']}–{box['right'] - 1}. "
             "LMD: mean distance of landmarks 48–67 (112 px). Aperture: inner-lip opening / inter-ocular distance; "
             f"r = Pearson correlation with the truth over time; AV offset: the lag (±{p['max_lag']} frames) with "
             "the best r, positive = generated later.", "",
             "\\* r undefined (a constant series), reported as 0.", "",
             "LSE-D / LSE-C: SyncNet's min mean distance and confidence against the clip's own audio (lower D, "
             "higher C: better sync); \"real\" is the real video. Computed with this package's SyncNet "
             "(`models.syncnet`): not comparable with numbers from the original SyncNet.", "",
             "## Overall", "",
             "Frame metrics averaged over all scored frames; aperture r and AV offset averaged over clips.", ""]
    lines += _table(report["overall"])
    lines += _audio_effect_line(report["overall"].get("mismatched", {}).get("audio_effect"))
    lines += ["", "![overall](overall_metrics.png)", ""]
    for clip in report["clips"]:
        t, s = clip["track"], clip["scored"]
        lines += [f"## {clip['name']}", "",
                  f"`{clip['path']}` — {clip['fps']:g} fps, track {t['id']} frames {t['start']}–{t['stop'] - 1}; "
                  f"identity frames {', '.join(map(str, clip['identity_frames']))}; scored frames "
                  f"{s['start']}–{s['stop'] - 1} ({s['count']}); truth landmarks found on "
                  f"{100 * clip['truth_landmarks_detected']:.0f} % of them"
                  + (f"; mismatched audio: {clip['mismatch_audio']}" if clip.get("mismatch_audio") else "") + ".", ""]
        lines += _table({**clip["methods"], **({"real": clip["real"]} if clip.get("real") else {})})
        lines += _audio_effect_line(clip.get("audio_effect"))
        lines += ["", f"![aperture]({clip['name']}_aperture.png) ![metrics]({clip['name']}_metrics.png)", ""]
    if report["skipped"]:
        lines += ["## Skipped", ""] + [f"- `{s['path']}`: {s['reason']}" for s in report["skipped"]] + [""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# plots (OpenCV on an RGB canvas)

_FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX


def _nice_ticks(lo: float, hi: float, count: int = 5) -> np.ndarray:
    span = hi - lo
    raw = span / max(count, 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return np.arange(math.ceil(lo / step) * step, hi + 1e-9 * span, step)


def _text(img, text, org, scale=0.45, color=(30, 30, 30), align="left", thickness=1):
    import cv2

    (w, h), _ = cv2.getTextSize(text, _FONT, scale, thickness)
    x, y = org
    if align == "center":
        x -= w // 2
    elif align == "right":
        x -= w
    cv2.putText(img, text, (int(x), int(y)), _FONT, scale, color, thickness, cv2.LINE_AA)
    return w, h


def _label(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


def line_plot(series: dict, x, title: str, xlabel: str, ylabel: str, size=(960, 400)) -> np.ndarray:
    """An RGB uint8 line plot of ``{name: y values}`` over `x` (colours from `COLORS`)."""
    import cv2

    width, height = size
    img = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 70, 20, 54, 50
    x = np.asarray(x, np.float64)
    ys = {k: np.asarray(v, np.float64) for k, v in series.items()}
    finite = np.concatenate([v[np.isfinite(v)] for v in ys.values()] + [np.zeros(0)])
    y_lo, y_hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if y_hi - y_lo < 1e-9:
        y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
    pad = 0.08 * (y_hi - y_lo)
    y_lo, y_hi = y_lo - pad, y_hi + pad
    x_lo, x_hi = (float(x.min()), float(x.max())) if x.size else (0.0, 1.0)
    if x_hi - x_lo < 1e-9:
        x_lo, x_hi = x_lo - 0.5, x_hi + 0.5
    pw, ph = width - left - right, height - top - bottom

    def px(xv, yv):
        return (left + (xv - x_lo) / (x_hi - x_lo) * pw, top + (y_hi - yv) / (y_hi - y_lo) * ph)

    for tick in _nice_ticks(y_lo, y_hi):
        _, y = px(x_lo, tick)
        cv2.line(img, (left, int(round(y))), (left + pw, int(round(y))), (230, 230, 230), 1)
        _text(img, _label(tick), (left - 6, y + 4), 0.4, align="right")
    for tick in _nice_ticks(x_lo, x_hi, 8):
        xx, _ = px(tick, y_lo)
        cv2.line(img, (int(round(xx)), top), (int(round(xx)), top + ph), (230, 230, 230), 1)
        _text(img, _label(tick), (xx, top + ph + 16), 0.4, align="center")
    cv2.rectangle(img, (left, top), (left + pw, top + ph), (60, 60, 60), 1)
    for name, y in ys.items():
        ok = np.isfinite(y)
        pts = np.array([px(a, b) for a, b in zip(x[ok], y[ok])], np.float64)
        if len(pts):
            color = COLORS.get(name, (200, 0, 200))
            cv2.polylines(img, [np.round(pts * 16).astype(np.int32)], False, color, 2 if name != "truth" else 3,
                          cv2.LINE_AA, shift=4)
    _text(img, title, (8, 22), 0.55, thickness=1)
    _text(img, xlabel, (left + pw / 2, height - 10), 0.45, align="center")
    _text(img, ylabel, (8, top - 8), 0.4)
    lx = left + pw - 10
    for i, name in enumerate(ys):  # legend, top right inside the plot
        y = top + 18 + 18 * i
        w, _ = _text(img, name, (lx, y + 4), 0.42, align="right")
        cv2.line(img, (int(lx - w - 34), y), (int(lx - w - 8), y), COLORS.get(name, (200, 0, 200)), 3, cv2.LINE_AA)
    return img


def bar_panels(metrics: dict, title: str, panel_size=(170, 300), ranges: dict | None = None) -> np.ndarray:
    """RGB uint8 bars: one panel per metric ``{label: {method: value}}``, one bar per method.

    The value axis spans 0 and the values, or ``ranges[label] = (lo, hi)`` (widened to fit the values).
    +inf is drawn as a full-height bar labelled "inf"; None/NaN as "n/a" without a bar.
    """
    import cv2

    pw, ph = panel_size
    top, bottom, gap = 46, 44, 14
    width = gap + len(metrics) * (pw + gap)
    height = top + ph + bottom
    img = np.full((height, width, 3), 255, np.uint8)
    _text(img, title, (gap, 22), 0.55)
    for p, (label, values) in enumerate(metrics.items()):
        x0 = gap + p * (pw + gap)
        finite = [v for v in values.values() if v is not None and math.isfinite(v)]
        fixed = (ranges or {}).get(label)
        lo = min([0.0] + finite + ([fixed[0]] if fixed else []))
        hi = max([0.0] + finite + ([fixed[1]] if fixed else []))
        if hi - lo < 1e-9:
            hi = lo + 1.0
        hi_plot = hi + 0.12 * (hi - lo)
        lo_plot = lo - (0.12 * (hi - lo) if lo < 0 else 0.0)

        def py(v):
            return top + (hi_plot - v) / (hi_plot - lo_plot) * ph

        cv2.rectangle(img, (x0, top), (x0 + pw, top + ph), (200, 200, 200), 1)
        zero = int(round(py(0.0)))
        cv2.line(img, (x0, zero), (x0 + pw, zero), (90, 90, 90), 1)
        n = max(len(values), 1)
        slot = pw / n
        for i, (name, v) in enumerate(values.items()):
            bx0, bx1 = int(x0 + i * slot + 0.18 * slot), int(x0 + (i + 1) * slot - 0.18 * slot)
            color = COLORS.get(name, (200, 0, 200))
            if v is None or (isinstance(v, float) and math.isnan(v)):
                text, yv = "n/a", zero - 4
            else:
                end = hi_plot if math.isinf(v) and v > 0 else (lo_plot if math.isinf(v) else v)
                y = int(round(py(end)))
                cv2.rectangle(img, (bx0, min(y, zero)), (bx1, max(y, zero)), color, -1)
                text = "inf" if math.isinf(v) else f"{v:.3g}"
                yv = (y - 4) if end >= 0 else (y + 14)
            inside = yv < top + 12  # an infinite bar: its label goes inside, in white
            _text(img, text, ((bx0 + bx1) / 2, max(top + 14, min(yv, top + ph - 2))), 0.36, align="center",
                  color=(255, 255, 255) if inside else (30, 30, 30))
            _text(img, name[:8], ((bx0 + bx1) / 2, top + ph + 16), 0.34, align="center")
        _text(img, label, (x0 + pw / 2, top - 8), 0.42, align="center")
    return img


def aperture_plot(clip: dict) -> np.ndarray:
    s = clip["series"]
    m = clip["methods"]
    parts = [f"{k} r={m[k]['aperture_r']:.2f}" for k in m]
    return line_plot(s["aperture"], s["frame"], f"{clip['name']}: mouth aperture ({', '.join(parts)})",
                     "frame", "inner-lip opening / inter-ocular distance")


def metrics_plot(methods: dict, title: str) -> np.ndarray:
    panels = {t: {name: m.get(key) for name, m in methods.items()} for key, t, _, _ in METRIC_LABELS}
    return bar_panels(panels, title, ranges={t: r for _, t, _, r in METRIC_LABELS if r is not None})


def write_report(report: dict, outdir) -> list[Path]:
    """Write report.json, report.md and the PNG plots into `outdir` (which must exist). Returns the paths."""
    outdir = Path(outdir)
    written = []
    for clip in report["clips"]:
        written.append(write_png(outdir / f"{clip['name']}_aperture.png", aperture_plot(clip)))
        written.append(write_png(outdir / f"{clip['name']}_metrics.png",
                                 metrics_plot(clip["methods"], f"{clip['name']}: metrics per method")))
    written.append(write_png(outdir / "overall_metrics.png",
                             metrics_plot(report["overall"], "overall: metrics per method")))
    written.append(write_text(outdir / "report.md", markdown(report)))
    written.append(write_text(outdir / "report.json", dumps(report)))  # last: its presence means complete
    return written
