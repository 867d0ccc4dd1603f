"""Linear probe: how well do audio features predict the real mouth opening of *unseen* speakers?
The paper's MFCC windows against the Whisper tiny.en encoder features ("r on unseen speakers").

    python3 bench/bench_whisper_probe.py --data /work/runs/data [--max-train-videos 150]

Protocol
  Corpus: a prepared corpus (`speech2vid prepare`, its manifest.json and TFRecords). Train side: the
  manifest's "train" split (active tracks only), at most `--max-train-videos` videos picked round-robin
  over the train people (seeded: one video of each person, then a second of each, ...), every
  `--train-every`-th frame (frame_index % every == 0), at most `--max-train-frames-per-video` frames per
  video (the stride is raised when a video has more). Test side: ALL tracks of ALL "val" clips (the 13
  validation people of shared/data/VALIDATION.md, checked against speakers.json), every frame.
  Target: `evaluation.metrics.mouth_aperture(face_landmarks(crop))` (dlib, inner-lip opening / inter-ocular
  distance) of the 112x112 aligned crop, z-scored per track (face scale and person differ); frames where
  dlib's detector found no face are dropped.
  Timing: video frame k is at t_k = (k + 0.5)/fps + av_offset (the frame's centre, the manifest's
  av_offset, positive = audio later: the convention of `audio.window_starts`, "centre" alignment).
  Per-frame features:
    MFCC    = the generator's input window of frame k, `audio.gather_windows(mfcc, k, fps, offset=av_offset)`,
              12x35 flattened (420).
    Whisper = the mean of the encoder frames (50 Hz, frame j centred at 0.02 j s) whose centres lie within
              +-0.175 s of t_k (the 0.35 s of the MFCC window, ~18 frames), 384 values. The encoder runs
              once per clip on the clip's whole 16 kHz audio (`io.decode_audio` of the source file) with
              1 s of zeros added on each side (as the MFCC's padding), so shifted times stay defined.
  Context: the features of frames k-4..k+4 are STACKED (concatenated): MFCC 9x420 = 3780, Whisper 9x384
  = 3456 dimensions.
  Probe: ridge regression (numpy/scipy closed form, with intercept) on features standardised with the
  train mean/std; lambda = alpha * n_train, alpha chosen on a grid by 5-fold cross-validation grouped by
  speaker on the train side (the out-of-fold pooled Pearson r); refit on all train frames.
  Report: Pearson r between the prediction and the per-track z-scored aperture on the val people, pooled
  over all val frames, and the median over val clips (per-clip r); for MFCC and for Whisper. Control: the
  same probes on val features shifted by +10 video frames (audio 10 frames later than the face), where r
  should fall to ~0. Per validation person too, the four lrcar_* people as one group (VALIDATION.md).

Cache: per-video apertures and Whisper features in `--cache` (default /work/runs/probe_cache/*.npz), so
re-runs only fit the probes. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import random
import re
import sys
import time
from pathlib import Path

import _common  # noqa: F401
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CONTEXT = 4  # +-video frames, stacked
HALF_WINDOW = 0.175  # s, Whisper pooling half-width
PAD_S = 1.0  # s of zeros on each side of the audio given to Whisper
WHISPER_RATE = 50.0  # encoder frames per second
SHIFT = 10  # video frames, the control
ALPHAS = 10.0 ** np.arange(-2.0, 4.01, 0.5)  # lambda / n_train
FOLDS = 5
MEDIA = {".mp4", ".mpg", ".mov", ".avi", ".mkv", ".flv", ".webm", ".m4v", ".wav"}


def log(msg: str) -> None:
    print(msg, flush=True)


# ------------------------------------------------------------------------------------------------------
# corpus


def validation_people(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    return set(re.findall(r"^\| `([^`]+)` \|", path.read_text(), flags=re.MULTILINE))


def source_index(root: Path) -> dict[str, Path]:
    index = {}
    for sub in ("train", "clips"):
        for p in sorted((root / sub).rglob("*")):
            if p.suffix.lower() in MEDIA and p.is_file():
                index.setdefault(p.stem, p)
    return index


def pick_train(videos: list[dict], speaker_of, limit: int, seed: int) -> list[dict]:
    """Round-robin over the people: one video of each (shuffled order), then a second of each, ..."""
    by = collections.defaultdict(list)
    for v in videos:
        by[speaker_of(v)].append(v)
    rng = random.Random(seed)
    people = sorted(by)
    rng.shuffle(people)
    for p in people:
        by[p].sort(key=lambda v: v["video_id"])
        rng.shuffle(by[p])
    chosen, rnd = [], 0
    while len(chosen) < min(limit, len(videos)):
        for p in people:
            if rnd < len(by[p]) and len(chosen) < limit:
                chosen.append(by[p][rnd])
        rnd += 1
    return chosen


def read_tracks(record: Path) -> list[dict]:
    import tensorflow as tf

    from keras_speech2vid.data.dataset import parse_track

    out = []
    for raw in tf.data.TFRecordDataset(str(record)):
        t = parse_track(raw)
        out.append({"track": int(t["track"]), "frame_index": t["frame_index"].numpy(), "frames": t["frames"].numpy(),
                    "fps": float(t["fps"]), "mfcc": t["mfcc"].numpy()})
    return out


# ------------------------------------------------------------------------------------------------------
# per-video measurements (cached)


class VideoCache:
    """Apertures {(track, frame_index): (aperture, detected)} and raw Whisper features of one video."""

    def __init__(self, path: Path):
        self.path = path
        self.ap: dict[tuple[int, int], tuple[float, bool]] = {}
        self.whisper = None
        self.dirty = False
        if path.is_file():
            with np.load(path, allow_pickle=False) as d:
                for t, k, a, det in zip(d["ap_track"], d["ap_index"], d["ap_value"], d["ap_detected"]):
                    self.ap[(int(t), int(k))] = (float(a), bool(det))
                if "whisper" in d:
                    self.whisper = d["whisper"]

    def save(self):
        if not self.dirty:
            return
        keys = sorted(self.ap)
        arrays = {"ap_track": np.array([k[0] for k in keys], np.int64), "ap_index": np.array([k[1] for k in keys], np.int64),
                  "ap_value": np.array([self.ap[k][0] for k in keys], np.float64),
                  "ap_detected": np.array([self.ap[k][1] for k in keys], bool)}
        if self.whisper is not None:
            arrays["whisper"] = self.whisper
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.stem + ".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(self.path)
        self.dirty = False


def measure_apertures(tracks, wanted: dict[int, np.ndarray], cache: VideoCache) -> int:
    """Fill the cache with the aperture of each wanted (track, frame); returns how many were measured now."""
    import tensorflow as tf

    from keras_speech2vid.evaluation.metrics import face_landmarks, mouth_aperture

    done = 0
    for t in tracks:
        want = {int(k) for k in wanted.get(t["track"], ())}
        for k, jpeg in zip(t["frame_index"], t["frames"]):
            if int(k) in want and (t["track"], int(k)) not in cache.ap:
                image = tf.io.decode_jpeg(jpeg, channels=3, dct_method="INTEGER_ACCURATE").numpy()
                points, detected = face_landmarks(image)
                cache.ap[(t["track"], int(k))] = (float(mouth_aperture(points)), bool(detected))
                cache.dirty = True
                done += 1
    return done


def whisper_raw(source: Path, encoder, cache: VideoCache) -> np.ndarray:
    if cache.whisper is None:
        from keras_speech2vid.io import decode_audio
        from keras_speech2vid.whisper import whisper_features

        wave = decode_audio(source)
        pad = np.zeros(int(PAD_S * 16000), np.float32)
        cache.whisper = np.asarray(whisper_features(np.concatenate([pad, wave, pad]), encoder), np.float16)
        cache.dirty = True
    return cache.whisper


def pooled_whisper(raw: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Mean of the encoder frames centred within +-HALF_WINDOW of each time (s, unpadded audio)."""
    t = times + PAD_S
    csum = np.concatenate([np.zeros((1, raw.shape[1])), np.cumsum(raw.astype(np.float64), axis=0)])
    lo = np.clip(np.ceil((t - HALF_WINDOW) * WHISPER_RATE - 1e-9).astype(np.int64), 0, len(raw))
    hi = np.clip(np.floor((t + HALF_WINDOW) * WHISPER_RATE + 1e-9).astype(np.int64) + 1, 0, len(raw))
    count = np.maximum(hi - lo, 0)
    total = csum[np.maximum(hi, lo)] - csum[lo]
    return (total / np.maximum(count, 1)[:, None]).astype(np.float32)


def clip_features(frames: np.ndarray, fps: float, offset: float, mfcc: np.ndarray, raw: np.ndarray,
                  shift: int) -> tuple[np.ndarray, np.ndarray]:
    """Stacked (n, 9*420) MFCC and (n, 9*384) Whisper features of video frames `frames` (+ shift)."""
    from keras_speech2vid.audio import gather_windows

    ctx = np.arange(-CONTEXT, CONTEXT + 1)
    idx = (frames[:, None] + ctx[None, :] + shift).reshape(-1)  # (n*9,)
    m = np.asarray(gather_windows(mfcc, idx.astype(np.int64), fps=fps, offset=offset))  # (n*9, 12, 35, 1)
    m = m.reshape(len(frames), -1)
    w = pooled_whisper(raw, (idx + 0.5) / fps + offset).reshape(len(frames), -1)
    return m, w


# ------------------------------------------------------------------------------------------------------
# ridge


def pearson(a, b) -> float:
    a = np.asarray(a, np.float64) - np.mean(a)
    b = np.asarray(b, np.float64) - np.mean(b)
    den = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / den if den > 1e-12 else float("nan")


def _stats(x: np.ndarray, y: np.ndarray):
    x64 = x.astype(np.float64)
    return [len(y), x64.sum(0), float(y.sum()), x64.T @ x64, x64.T @ y]


def _solve(stats, alpha: float):
    from scipy.linalg import cho_factor, cho_solve

    n, sx, sy, g, b = stats
    mx, my = sx / n, sy / n
    gc = g - n * np.outer(mx, mx)
    bc = b - n * mx * my
    gc[np.diag_indices_from(gc)] += alpha * n
    w = cho_solve(cho_factor(gc, overwrite_a=True), bc)
    return w, my - mx @ w


def fit_ridge(x: np.ndarray, y: np.ndarray, groups: np.ndarray):
    """Ridge with the alpha of the best grouped-CV pooled r; returns (w, c, alpha, cv_r per alpha)."""
    # speakers into folds, largest first, each to the lightest fold
    sizes = collections.Counter(groups.tolist())
    load, fold_of = [0] * FOLDS, {}
    for g, n in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])):
        f = int(np.argmin(load))
        fold_of[g] = f
        load[f] += n
    fold = np.array([fold_of[g] for g in groups.tolist()])
    per_fold = [_stats(x[fold == f], y[fold == f]) for f in range(FOLDS)]
    total = [sum(s[i] for s in per_fold) for i in range(5)]
    oof = np.zeros((len(ALPHAS), len(y)))
    for f in range(FOLDS):
        train = [total[i] - per_fold[f][i] for i in range(5)]
        xf = x[fold == f].astype(np.float64)
        for a_i, alpha in enumerate(ALPHAS):
            w, c = _solve(train, alpha)
            oof[a_i, fold == f] = xf @ w + c
    cv = np.array([pearson(p, y) for p in oof])
    best = int(np.nanargmax(cv))
    w, c = _solve(total, ALPHAS[best])
    return w, c, ALPHAS[best], cv


# ------------------------------------------------------------------------------------------------------


def zscore(values: np.ndarray) -> np.ndarray | None:
    if len(values) < 5 or values.std() <= 1e-6:
        return None
    return (values - values.mean()) / values.std()


def collect(videos, data: Path, sources, encoder, cache_dir: Path, every: int, max_frames: int | None,
            shifts: tuple[int, ...], active_only: bool, label: str, t0: float):
    """Rows of one side: features per shift, targets, and clip/person ids."""
    feats = {s: ([], []) for s in shifts}
    y, clip, person = [], [], []
    counts = collections.Counter()
    for n, v in enumerate(videos, 1):
        cache = VideoCache(cache_dir / f"{v['video_id']}.npz")
        source = sources.get(v["video_id"])
        if source is None:
            counts["no source file"] += 1
            continue
        tracks = read_tracks(data / v["record"])
        active = {t["track"]: t.get("active", True) is not False for t in v.get("tracks", [])}
        wanted = {}
        for t in tracks:
            if active_only and not active.get(t["track"], True):
                counts["inactive tracks skipped"] += 1
                continue
            k = t["frame_index"]
            k = k[k % every == 0]
            if max_frames and len(k) > max_frames:
                k = k[::math.ceil(len(k) / max_frames)]
            wanted[t["track"]] = k
        counts["measured now"] += measure_apertures(tracks, wanted, cache)
        raw = whisper_raw(source, encoder, cache)
        cache.save()
        offset = float(v.get("av_offset") or 0.0)
        for t in tracks:
            if t["track"] not in wanted:
                continue
            k = wanted[t["track"]]
            ap = np.array([cache.ap[(t["track"], int(i))] for i in k])
            keep = ap[:, 1] > 0.5
            counts["undetected frames dropped"] += int((~keep).sum())
            z = zscore(ap[keep, 0])
            if z is None:
                counts["constant/short tracks dropped"] += 1
                continue
            k = k[keep]
            for s in shifts:
                m, w = clip_features(k, t["fps"], offset, t["mfcc"], raw, s)
                feats[s][0].append(m)
                feats[s][1].append(w)
            y.append(z)
            clip += [v["video_id"]] * len(k)
            person += [v["_person"]] * len(k)
        if n % 25 == 0 or n == len(videos):
            log(f"  {label}: {n}/{len(videos)} videos, {sum(map(len, y))} frames, {time.time() - t0:.0f} s")
    out = {s: (np.concatenate(m).astype(np.float32), np.concatenate(w).astype(np.float32)) for s, (m, w) in feats.items()}
    return out, np.concatenate(y), np.array(clip), np.array(person), counts


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="/work/runs/data", help="prepared corpus (manifest.json)")
    p.add_argument("--shared", default=None, help="shared/data folder (default: ../shared/data next to the repo, "
                   "else /work/shared/data): the sources, speakers.json, VALIDATION.md")
    p.add_argument("--cache", default="/work/runs/probe_cache")
    p.add_argument("--max-train-videos", type=int, default=150)
    p.add_argument("--max-train-frames-per-video", type=int, default=300)
    p.add_argument("--train-every", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-val-videos", type=int, default=None, help="smoke tests only (default: all val clips)")
    a = p.parse_args()
    t0 = time.time()
    data = Path(a.data)
    repo = Path(__file__).resolve().parents[1]
    shared = Path(a.shared) if a.shared else next(
        (c for c in (repo.parent / "shared" / "data", Path("/work/shared/data")) if c.is_dir()), Path("/work/shared/data"))
    manifest = json.loads((data / "manifest.json").read_text())
    speakers = json.loads((shared / "speakers.json").read_text())
    val_people = validation_people(shared / "VALIDATION.md")
    for v in manifest["videos"]:
        v["_person"] = speakers.get(v["video_id"], v.get("speaker", v["video_id"]))
    train_all = [v for v in manifest["videos"] if v["split"] == "train"]
    val = [v for v in manifest["videos"] if v["split"] == "val"][:a.max_val_videos]
    val_set = {v["_person"] for v in val}
    train_set = {v["_person"] for v in train_all}
    if train_set & val_set:
        sys.exit(f"people in both splits: {sorted(train_set & val_set)}")
    if val_people and val_set != val_people:
        log(f"WARNING: val split people differ from VALIDATION.md: missing {sorted(val_people - val_set)}, "
            f"extra {sorted(val_set - val_people)}")
    train = pick_train(train_all, lambda v: v["_person"], a.max_train_videos, a.seed)
    sources = source_index(shared)
    log(f"train: {len(train)} of {len(train_all)} videos ({len({v['_person'] for v in train})} of {len(train_set)} "
        f"people); val: {len(val)} videos ({len(val_set)} people); cache {a.cache}")

    import tensorflow as tf

    from keras_speech2vid.whisper import load_whisper_encoder

    tf.get_logger().setLevel("ERROR")  # predict_on_batch retracing notes, one per clip length

    encoder = load_whisper_encoder()
    cache_dir = Path(a.cache)
    tr, y_tr, _, g_tr, c_tr = collect(train, data, sources, encoder, cache_dir, a.train_every,
                                      a.max_train_frames_per_video, (0,), True, "train", t0)
    va, y_va, clip_va, g_va, c_va = collect(val, data, sources, encoder, cache_dir, 1, None, (0, SHIFT), False,
                                            "val", t0)
    log(f"features done, {time.time() - t0:.0f} s; train {dict(c_tr)}; val {dict(c_va)}")

    results = {}
    for i, name in enumerate(("MFCC", "Whisper")):
        x = tr[0][i]
        mu, sd = x.mean(0), x.std(0)
        sd = np.where(sd > 1e-6, sd, 1.0)
        w, c, alpha, cv = fit_ridge((x - mu) / sd, y_tr, g_tr)
        res = {"dims": x.shape[1], "alpha": alpha, "cv": float(np.nanmax(cv)),
               "edge": alpha in (ALPHAS[0], ALPHAS[-1])}
        for s in (0, SHIFT):
            pred = ((va[s][i] - mu) / sd).astype(np.float64) @ w + c
            per_clip = [pearson(pred[clip_va == cl], y_va[clip_va == cl]) for cl in np.unique(clip_va)]
            per_clip = [r for r in per_clip if np.isfinite(r)]
            res[s] = {"pooled": pearson(pred, y_va), "median": float(np.median(per_clip)), "clips": len(per_clip),
                      "pred": pred}
        results[name] = res
        log(f"{name} probe fitted (alpha {alpha:g}, cv r {res['cv']:.3f}), {time.time() - t0:.0f} s")

    n_clips_va = len(np.unique(clip_va))
    print()
    print("Linear probe, audio features -> real mouth aperture (dlib inner-lip / inter-ocular, z-scored per track)")
    print(f"train: {len(np.unique(g_tr))} people, {len({v['video_id'] for v in train})} clips, {len(y_tr)} frames "
          f"(frame_index % {a.train_every} == 0, <= {a.max_train_frames_per_video}/clip); "
          f"val (unseen people): {len(np.unique(g_va))} people, {n_clips_va} clips, {len(y_va)} frames (all)")
    print(f"ridge, standardised features, context frames k-{CONTEXT}..k+{CONTEXT} stacked, lambda = alpha*n "
          f"by {FOLDS}-fold CV grouped by speaker; control = val audio shifted +{SHIFT} video frames")
    print()
    print("| features | dims | alpha | train CV r | val r pooled | val r median/clip | shifted r pooled | shifted median |")
    print("|---|---|---|---|---|---|---|---|")
    for name, label in (("MFCC", "MFCC 12x35 window"), ("Whisper", "Whisper tiny.en, 0.35 s mean")):
        r = results[name]
        print(f"| {label} | {r['dims']} | {r['alpha']:g}{' (grid edge)' if r['edge'] else ''} | {r['cv']:.3f} | "
              f"{r[0]['pooled']:.3f} | {r[0]['median']:.3f} | {r[SHIFT]['pooled']:.3f} | {r[SHIFT]['median']:.3f} |")
    print()
    print("per validation person (pooled r over the person's frames; lrcar_* together, as VALIDATION.md asks):")
    print("| person | clips | frames | MFCC r | Whisper r |")
    print("|---|---|---|---|---|")
    group = np.array(["lrcar_* (4 people)" if g.startswith("lrcar_") else g for g in g_va])
    for g in sorted(set(group), key=lambda s: (not s.startswith("lrcar"), s)):
        sel = group == g
        rs = [pearson(results[n][0]["pred"][sel], y_va[sel]) for n in ("MFCC", "Whisper")]
        print(f"| {g} | {len(np.unique(clip_va[sel]))} | {int(sel.sum())} | {rs[0]:.3f} | {rs[1]:.3f} |")
    print()
    print(f"command: python3 bench/bench_whisper_probe.py --data {a.data} --max-train-videos {a.max_train_videos} "
          f"--max-train-frames-per-video {a.max_train_frames_per_video} --train-every {a.train_every} --seed {a.seed}")
    print(f"runtime {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
