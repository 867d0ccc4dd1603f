"""Train the SyncNet (`models.syncnet`) on prepared data: ``speech2vid train-syncnet``.

Data: every face track of the manifest's split, as grey lower-face crops (`sync.sync_crop`, 3.8 KB a
frame) with their frame indices, fps and the video's padded MFCC, cached in OUT/sync_<split>.npz.

Batches (`SyncSampler`): `spans` random runs of `span` consecutive 5-frame windows, each from a random
track. For a window at frame k the candidates are the audio windows at k + s for every shift
s in −S..S of its own clip (S = `max_shift`, the true one is s = 0) and, from every other span of the
batch, the audio window at the same place (other clips). Augmentation: horizontal flips, shifts of up
to 3 pixels, contrast, brightness and, on a third of the spans, blur (the generator's faces are soft:
its sync loss will read them).

Loss: multi-way contrastive (the softmax over candidates of the scaled cosine similarity, cross-entropy
on the true one; Chung et al.'s "Perfect match" form of SyncNet's pairwise contrastive loss), which
trains exactly the choice the offset search makes. In `keras.ops` (`SyncLogits`), so TF and JAX share it.

Resumable: after each epoch, OUT/checkpoint.keras (the training model with its optimizer) and
OUT/state.json are written atomically; a re-run with the same OUT continues after the last finished
epoch (the learning rate decays over the first run's epochs; a larger --epochs on resume goes on at the
final rate). Validation on the 'val' split after each epoch: ROC AUC of in-sync against ≥ 10-frame shifts,
and the offset proxy (the share of ≥ 2 s tracks whose distance minimum lies within ±1 frame of 0).
OUT/syncnet.keras is the epoch with the best validation AUC; run.json makes OUT a run for
``speech2vid pack-weights``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import keras
import numpy as np
from keras import ops

from keras_speech2vid.config import SyncNetConfig, get_syncnet_config
from keras_speech2vid.errors import Speech2VidError
from keras_speech2vid.io import atomic_path, write_text
from keras_speech2vid.sync import (audio_windows, inside_audio, normalise_mfcc, summarise, sync_crop, video_windows,
                                   window_centres)

CACHE_FORMAT = "keras_speech2vid-sync-cache-1"
LOGIT_SCALE = 10.0  # logits = scale × cosine; `SyncLoss` divides by the same scale to get distances back
MASKED = 1e4  # subtracted from the logit of a candidate that is not one (a span's own clip among the others)


# ----------------------------------------------------------------------------------------------------------
# data


def sync_cache(data_dir, split: str, cache_dir, progress: bool = True) -> dict:
    """The split's tracks as arrays (see module doc), from OUT/sync_<split>.npz when it matches the data."""
    import tensorflow as tf

    from keras_speech2vid.data.dataset import parse_track, read_manifest

    manifest = read_manifest(data_dir)
    videos = [v for v in manifest["videos"] if v["split"] == split]
    if not videos:
        raise Speech2VidError(f"{data_dir}: no '{split}' videos in manifest.json")
    source = f"{CACHE_FORMAT} {Path(data_dir).resolve()} " + ",".join(sorted(v["video_id"] for v in videos))
    cache = Path(cache_dir) / f"sync_{split}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as d:
            if str(d["source"]) == source:
                return {k: d[k] for k in d.files}
    from tqdm import tqdm

    crops, frames, starts, lengths, fps, mfcc_start, mfcc_len, vids, mfccs = ([] for _ in range(9))
    at = mfcc_at = 0
    for v in tqdm(videos, desc=f"sync crops ({split})", unit="video", disable=not progress):
        mfcc = None
        for track in tf.data.TFRecordDataset(str(Path(data_dir) / v["record"])).map(parse_track):
            if mfcc is None:
                mfcc = track["mfcc"].numpy()
                mfccs.append(mfcc)
            jpegs = track["frames"].numpy()
            crops += [sync_crop(tf.io.decode_jpeg(j, channels=3).numpy()) for j in jpegs]
            frames.append(track["frame_index"].numpy())
            starts.append(at)
            lengths.append(len(jpegs))
            at += len(jpegs)
            fps.append(float(track["fps"].numpy()))
            mfcc_start.append(mfcc_at)
            mfcc_len.append(mfcc.shape[1])
            vids.append(v["video_id"])
        if mfcc is not None:
            mfcc_at += mfcc.shape[1]
    data = {"crops": np.stack(crops), "frame_index": np.concatenate(frames), "start": np.array(starts),
            "length": np.array(lengths), "fps": np.array(fps, np.float32), "mfcc": np.concatenate(mfccs, axis=1),
            "mfcc_start": np.array(mfcc_start), "mfcc_length": np.array(mfcc_len), "video_id": np.array(vids),
            "source": np.array(source)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cache) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **data)
    return data


def track_arrays(cache: dict, t: int):
    """(crops, frame indices, padded MFCC, fps) of track t of a `sync_cache`."""
    a, n = int(cache["start"][t]), int(cache["length"][t])
    m0, m1 = int(cache["mfcc_start"][t]), int(cache["mfcc_start"][t] + cache["mfcc_length"][t])
    return cache["crops"][a:a + n], cache["frame_index"][a:a + n], cache["mfcc"][:, m0:m1], float(cache["fps"][t])


class SyncSampler:
    """Training batches of `spans` × `span` windows (see module doc); deterministic given the seed."""

    def __init__(self, cache: dict, config: SyncNetConfig, spans: int = 8, span: int = 16, seed: int = 0,
                 augment: bool = True):
        if spans < 2:
            raise ValueError(f"spans must be >= 2 (other clips are negatives). Received: spans={spans}")
        self.cache, self.config, self.spans, self.span, self.augment = cache, config, spans, span, augment
        self.rng = np.random.default_rng(seed)
        starts = []  # (track, position of the first window centre) of every usable span
        for t in range(len(cache["start"])):
            _, k, _, _ = track_arrays(cache, t)
            valid = np.zeros(len(k) + 1, np.int64)
            valid[window_centres(k, config.video_frames) + 1] = 1
            run = np.cumsum(valid)  # span of `span` valid, consecutive centres: k contiguous over it
            first = np.arange(len(k) - span + 1)
            ok = (run[first + span] - run[first] == span) & (k[np.minimum(first + span - 1, len(k) - 1)] - k[first]
                                                               == span - 1)
            starts += [(t, int(p)) for p in first[ok]]
        if len(starts) < spans:
            raise Speech2VidError(f"only {len(starts)} usable spans of {span} windows; need {spans}")
        self.starts = np.array(starts, np.int64)
        self._normalised: dict[int, np.ndarray] = {}

    def __len__(self):
        return len(self.starts)

    def _mfcc(self, t: int, mfcc: np.ndarray) -> np.ndarray:
        if t not in self._normalised:  # once per track: the normalisation is over the whole clip
            self._normalised[t] = normalise_mfcc(mfcc, self.config)
        return self._normalised[t]

    def _augment(self, x: np.ndarray) -> np.ndarray:
        import cv2

        r = self.rng
        if r.random() < 0.5:
            x = x[:, :, ::-1]
        dy, dx = r.integers(-3, 4, size=2)  # alignment jitter: shift by up to 3 px, edges repeated
        if dy or dx:
            h, w = x.shape[1:3]
            x = np.pad(x, ((0, 0), (3, 3), (3, 3)), mode="edge")[:, 3 - dy:3 - dy + h, 3 - dx:3 - dx + w]
        if r.random() < 1 / 3:  # blur: down by 1.5–3× and back
            f = r.uniform(1.5, 3.0)
            h, w = x.shape[1:3]
            small = (max(1, int(w / f)), max(1, int(h / f)))
            x = np.stack([cv2.resize(cv2.resize(im, small, interpolation=cv2.INTER_AREA), (w, h)) for im in x])
        x = (x - 0.5) * r.uniform(0.7, 1.3) + 0.5 + r.uniform(-0.1, 0.1)
        return np.clip(x, 0.0, 1.0).astype(np.float32)

    def batch(self):
        """({"video": (spans·span, 48, 80, 5), "mfcc": (spans·(span + 2S), 12, 20, 1)}, targets (spans·span,))."""
        s = self.config.max_shift
        pick = self.rng.choice(len(self.starts), self.spans, replace=False)
        videos, audios = [], []
        for t, p in self.starts[pick]:
            crops, k, mfcc, fps = track_arrays(self.cache, int(t))
            pos = np.arange(p, p + self.span)
            v = video_windows(crops, pos, self.config.video_frames)
            if self.augment:  # the same draw for the whole span: one clip, one look
                frames = np.transpose(v, (3, 0, 1, 2)).reshape(-1, *v.shape[1:3])  # (5·span, 48, 80)
                v = np.transpose(self._augment(frames).reshape(v.shape[3], *v.shape[:3]), (1, 2, 3, 0))
            videos.append(v)
            audios.append(audio_windows(self._mfcc(int(t), mfcc), np.arange(k[p] - s, k[p] + self.span + s), fps,
                                        self.config))
        targets = np.full(self.spans * self.span, s, np.int32)
        return {"video": np.concatenate(videos), "mfcc": np.concatenate(audios)}, targets

    def __iter__(self):
        while True:
            yield self.batch()


# ----------------------------------------------------------------------------------------------------------
# loss


@keras.saving.register_keras_serializable(package="keras_speech2vid")
class SyncLogits(keras.layers.Layer):
    """Candidate logits (spans·span, 2S+1 + spans) from video (spans·span, E) and audio (spans·(span+2S), E).

    Candidate c < 2S+1 is the same clip's audio at shift c − S; candidate 2S+1 + j is span j's audio at
    the same place (its own span's is masked out). Logits are `scale` · cosine (embeddings are unit length).
    """

    def __init__(self, spans: int, span: int, max_shift: int, scale: float = LOGIT_SCALE, **kwargs):
        super().__init__(**kwargs)
        self.spans, self.span, self.max_shift, self.scale = int(spans), int(span), int(max_shift), float(scale)

    def call(self, video, audio):
        n, length, s = self.spans, self.span, self.max_shift
        v = ops.reshape(video, (n, length, -1))
        a = ops.reshape(audio, (n, length + 2 * s, -1))
        idx = np.arange(length)[:, None] + np.arange(2 * s + 1)[None, :]  # (span, 2S+1)
        shifted = ops.take(a, ops.convert_to_tensor(idx.reshape(-1)), axis=1)
        shifted = ops.reshape(shifted, (n, length, 2 * s + 1, -1))
        own = ops.sum(v[:, :, None, :] * shifted, axis=-1)  # (spans, span, 2S+1)
        mid = a[:, s:s + length]  # in-sync audio of each span
        other = ops.einsum("jie,kie->jik", v, mid)  # (spans, span, spans)
        # the own clip's column repeats candidate S: push it out of the softmax
        other = other - MASKED * ops.convert_to_tensor(np.eye(n, dtype="float32"))[:, None, :]
        logits = ops.concatenate([own, other], axis=-1) * self.scale
        return ops.reshape(logits, (n * length, 2 * s + 1 + n))

    def get_config(self):
        return {**super().get_config(), "spans": self.spans, "span": self.span, "max_shift": self.max_shift,
                "scale": self.scale}


@keras.saving.register_keras_serializable(package="keras_speech2vid")
class SyncLoss(keras.losses.Loss):
    """Cross-entropy over the candidates of `SyncLogits`, plus `pair_weight` × SyncNet's pairwise
    contrastive loss (Chung & Zisserman 2016) on the same distances: d² for the in-sync pair and
    max(margin − d, 0)² for the pairs shifted by at least `far` frames and for the other clips.

    The cross-entropy ranks each window's candidates; the pairwise term puts in-sync distances below
    off-sync ones across windows and clips too, which a threshold and a pooled AUC need.
    """

    def __init__(self, max_shift: int, scale: float = LOGIT_SCALE, pair_weight: float = 0.0, margin: float = 1.3,
                 far: int = 5, name: str = "sync_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.max_shift, self.scale, self.pair_weight = int(max_shift), float(scale), float(pair_weight)
        self.margin, self.far = float(margin), int(far)

    def call(self, y_true, y_pred):
        ce = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
        if not self.pair_weight:
            return ce
        s = self.max_shift
        cos = ops.clip(y_pred / self.scale, -1.0, 1.0)  # masked own-clip column: clipped, then excluded
        d = ops.sqrt(ops.maximum(2.0 - 2.0 * cos, 1e-6))
        far = np.array([abs(c - s) >= self.far if c < 2 * s + 1 else True for c in range(y_pred.shape[-1])])
        real = ops.cast(y_pred > -MASKED / 10, "float32")  # masked candidates are not pairs
        negative = ops.convert_to_tensor(far.astype("float32"))[None, :] * real
        push = ops.sum(ops.square(ops.relu(self.margin - d)) * negative, axis=-1) / ops.sum(negative, axis=-1)
        return ce + self.pair_weight * (ops.square(d[:, s]) + push)

    def get_config(self):
        return {**super().get_config(), "max_shift": self.max_shift, "scale": self.scale,
                "pair_weight": self.pair_weight, "margin": self.margin, "far": self.far}


def build_sync_trainer(syncnet: keras.Model, spans: int, span: int, max_shift: int) -> keras.Model:
    """The training graph: SyncNet's two embeddings → `SyncLogits` (fit with targets = max_shift)."""
    video = keras.Input(syncnet.input["video"].shape[1:], name="video")
    mfcc = keras.Input(syncnet.input["mfcc"].shape[1:], name="mfcc")
    v, a = syncnet({"video": video, "mfcc": mfcc})
    logits = SyncLogits(spans, span, max_shift, name="sync_logits")(v, a)
    return keras.Model({"video": video, "mfcc": mfcc}, logits, name="sync_trainer")


# ----------------------------------------------------------------------------------------------------------
# validation


def roc_auc(positive, negative) -> float:
    """P(negative distance > positive distance), ties half: ROC AUC with distance as the score.

    None when either side is empty.
    """
    pos, neg = np.asarray(positive, np.float64), np.asarray(negative, np.float64)
    if not len(pos) or not len(neg):
        return None
    scores = np.concatenate([pos, neg])
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]  # 1-based ranks, ties share their mean
    neg_ranks = ranks[len(pos):]
    return float((neg_ranks.sum() - len(neg) * (len(neg) + 1) / 2) / (len(pos) * len(neg)))


def far_pairs(d: np.ndarray, centres, fps: float, seconds: float, config: SyncNetConfig, far: int = 10):
    """(in-sync distances, distances at |shift| ≥ far) of windows whose audio is real audio at both.

    A shift into the silent padding is an easy negative: short clips would look better than they are.
    """
    s = config.max_shift
    keep = inside_audio(centres, 0, fps, seconds, config)
    negatives = [d[inside_audio(centres, j - s, fps, seconds, config) & keep, j]
                 for j in np.r_[0:s - far + 1, s + far:2 * s + 1]]
    return d[keep, s], np.concatenate(negatives)


def validate(syncnet, cache: dict, min_seconds: float = 2.0, far: int = 10) -> dict:
    """AUC (in sync vs |shift| ≥ far, `far_pairs`) over all windows; offset proxy and confidence on long tracks."""
    from keras_speech2vid.sync import audio_seconds

    pos, neg, hits, confidences = [], [], [], []
    for t in range(len(cache["start"])):
        crops, k, mfcc, fps = track_arrays(cache, t)
        d, centres = syncnet.distances(crops, k, mfcc, fps)
        if not len(d):
            continue
        p, n = far_pairs(d, centres, fps, audio_seconds(mfcc, syncnet.config), syncnet.config, far)
        pos.append(p)
        neg.append(n)
        if len(k) / fps >= min_seconds:
            result = summarise(d)
            hits.append(abs(result.offset) <= 1)
            confidences.append(result.confidence)
    tracks = len(pos)
    pos, neg = np.concatenate(pos) if pos else np.zeros(0), np.concatenate(neg) if neg else np.zeros(0)
    out = {"auc": roc_auc(pos, neg), "pairs": [int(len(pos)), int(len(neg))],
           "tracks": tracks, "long_tracks": len(hits)}
    if hits:
        out.update(offset_within_1=float(np.mean(hits)), confidence=float(np.mean(confidences)))
    return out


# ----------------------------------------------------------------------------------------------------------
# the loop


def train_syncnet(data_dir, out_dir, config: SyncNetConfig | str = "small", epochs: int = 10,
                  steps_per_epoch: int = 500, spans: int = 8, span: int = 16, learning_rate: float = 1e-3,
                  seed: int = 0, init_from=None, weight_decay: float = 0.0, pair_weight: float = 0.0,
                  verbose: int = 1) -> dict:
    """Train (or resume) a SyncNet in OUT; returns the run record (also OUT/run.json).

    `init_from`: a `syncnet.keras` (or a run folder holding one) whose weights start a new run.
    """
    from keras_speech2vid.data.dataset import read_manifest
    from keras_speech2vid.models.syncnet import build_syncnet
    from keras_speech2vid.sync import SyncNet

    config = get_syncnet_config(config)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train = sync_cache(data_dir, "train", out_dir, progress=bool(verbose))
    has_val = any(v["split"] == "val" for v in read_manifest(data_dir)["videos"])
    val = sync_cache(data_dir, "val", out_dir, progress=bool(verbose)) if has_val else None
    settings = {"data": str(data_dir), "epochs": epochs, "steps_per_epoch": steps_per_epoch, "spans": spans,
                "span": span, "learning_rate": learning_rate, "seed": seed,
                "init_from": None if init_from is None else str(init_from), "weight_decay": weight_decay,
                "pair_weight": pair_weight}
    state_path, checkpoint = out_dir / "state.json", out_dir / "checkpoint.keras"
    state = {"epoch": 0, "history": [], "best": None}
    if state_path.is_file() and checkpoint.is_file():
        state = json.loads(state_path.read_text())
        if state.get("model") != json.loads(json.dumps(config.to_dict())):
            raise Speech2VidError(f"{out_dir}: holds a run of another SyncNet config; use a new --out")
        trainer = keras.saving.load_model(checkpoint, safe_mode=True)
        syncnet = trainer.get_layer("syncnet")
        if verbose:
            print(f"resuming {out_dir} after epoch {state['epoch']}")
    else:
        keras.utils.set_random_seed(seed)
        syncnet = build_syncnet(config)
        if init_from is not None:
            from keras_speech2vid.weights import load_keras_file

            source = Path(init_from) / "syncnet.keras" if Path(init_from).is_dir() else Path(init_from)
            syncnet.set_weights(load_keras_file(source).get_weights())
        trainer = build_sync_trainer(syncnet, spans, span, config.max_shift)
        schedule = keras.optimizers.schedules.CosineDecay(learning_rate, epochs * steps_per_epoch, alpha=0.05)
        optimizer = (keras.optimizers.AdamW(schedule, weight_decay=weight_decay) if weight_decay else
                     keras.optimizers.Adam(schedule))
        trainer.compile(optimizer, SyncLoss(config.max_shift, pair_weight=pair_weight),
                        metrics=["sparse_categorical_accuracy"], jit_compile=False)  # XLA: ×0.56 on CPU (bench)
    state.update(model=config.to_dict(), settings=settings, windows={"train": int(len(train["crops"]))})
    for epoch in range(state["epoch"] + 1, epochs + 1):
        sampler = SyncSampler(train, config, spans, span, seed=seed * 1000 + epoch)
        began = time.perf_counter()
        fit = trainer.fit(iter(sampler), steps_per_epoch=steps_per_epoch, epochs=1, verbose=verbose,
                          shuffle=False)  # the sampler draws at random
        seconds = time.perf_counter() - began
        row = {"epoch": epoch, "loss": float(fit.history["loss"][-1]),
               "accuracy": float(fit.history["sparse_categorical_accuracy"][-1]),
               "samples_per_s": steps_per_epoch * spans * span / seconds}
        if val is not None:
            row["val"] = validate(SyncNet(syncnet, config), val)
        score = (row.get("val") or {}).get("auc") or row["accuracy"]  # AUC: over thousands of windows, steadier
        if state["best"] is None or score >= state["best"]["score"]:
            state["best"] = {"epoch": epoch, "score": score}
            with atomic_path(out_dir / "syncnet.keras") as tmp:
                syncnet.save(tmp)
        state["history"].append(row)
        state["epoch"] = epoch
        with atomic_path(checkpoint) as tmp:
            trainer.save(tmp)
        write_text(state_path, json.dumps(state, indent=1) + "\n")
        _write_record(out_dir, config, settings, state, epochs)
        if verbose:
            print(f"epoch {epoch}: " + json.dumps(row))
    return _write_record(out_dir, config, settings, state, epochs)


def _write_record(out_dir: Path, config: SyncNetConfig, settings: dict, state: dict, epochs: int) -> dict:
    """OUT/run.json: what `pack-weights` reads (the best epoch so far is OUT/syncnet.keras)."""
    record = {"task": "syncnet", "model": config.to_dict(), "settings": settings, "history": state["history"],
              "best": state["best"], "finished": state["epoch"] >= epochs}
    write_text(out_dir / "run.json", json.dumps(record, indent=1) + "\n")
    return record
