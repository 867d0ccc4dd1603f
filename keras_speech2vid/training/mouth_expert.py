"""Train the mouth-shape expert (`models.mouth_expert`) on prepared data, for `TrainConfig.shape_weight`.

Targets are dlib's 20 mouth landmarks of every `every`-th tracked face (canonical box, no detection:
the faces are aligned), cached in OUT/landmarks_<split>.npz with the lower-face crops (about 10 KB a
frame). Adam with a cosine-decayed learning rate. Training blurs the faces by a random factor
(downscale 1–3.5×, then back up), jitters contrast and brightness and adds noise, so the expert also
reads the generator's soft output. A few minutes on a CPU: an interrupted run starts again (the
landmark caches are kept).

OUT afterwards: `mouth_expert.keras` (the last epoch), `mouth_expert.json` (the training mean of the
landmarks, and per epoch the validation aperture correlation and landmark RMSE, sharp and blurred).
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_speech2vid.data.dataset import parse_track, read_manifest
from keras_speech2vid.errors import Speech2VidError
from keras_speech2vid.face import TARGET_OFFSET, TARGET_SIZE, aligned_landmarks, target_crop
from keras_speech2vid.io import atomic_path, write_text
from keras_speech2vid.models.mouth_expert import EXPERT_BOX, aperture_matrix, build_mouth_expert

MOUTH = slice(48, 68)


def mouth_targets(data_dir, split: str, cache_dir, every: int = 1, progress: bool = True):
    """(crops (N, h, w, 3) uint8 of EXPERT_BOX, landmarks (N, 20, 2) float32 in 109-output pixels)."""
    cache = Path(cache_dir) / f"landmarks_{split}.npz"
    source = f"{Path(data_dir).resolve()} every {every}"
    if cache.is_file():
        with np.load(cache) as d:
            if "source" in d and str(d["source"]) == source:  # else other data (or --every): recompute
                return d["crops"], d["landmarks"]
    top, bottom, left, right = EXPERT_BOX
    videos = [v for v in read_manifest(data_dir)["videos"] if v["split"] == split]
    if not videos:
        raise Speech2VidError(f"{data_dir}: no '{split}' videos in manifest.json")
    from tqdm import tqdm

    crops, points = [], []
    for v in tqdm(videos, desc=f"mouth landmarks ({split})", unit="video", disable=not progress):
        for track in tf.data.TFRecordDataset(str(Path(data_dir) / v["record"])).map(parse_track):
            keep = track["frame_index"].numpy() % every == 0
            for jpeg in track["frames"].numpy()[keep]:
                face = tf.io.decode_jpeg(jpeg, channels=3).numpy()
                lm, _ = aligned_landmarks(face, detect=False)
                crops.append(target_crop(face)[top:bottom, left:right])
                points.append(lm[MOUTH] - TARGET_OFFSET)
    crops, points = np.stack(crops), np.stack(points).astype(np.float32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cache) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, crops=crops, landmarks=points, source=np.array(source))
    return crops, points


def aperture(points) -> np.ndarray:
    """Mean inner-lip opening in pixels of (N, 20, 2) mouth landmarks (or (N, 40) flat)."""
    return (np.asarray(points).reshape(-1, 40) @ aperture_matrix()).mean(axis=1)


def _on_canvas(crops):
    """Crops of EXPERT_BOX back at their place in a 109×109 canvas (the expert crops them again)."""
    top, bottom, left, right = EXPERT_BOX
    pad = [[0, 0], [top, TARGET_SIZE - bottom], [left, TARGET_SIZE - right], [0, 0]]
    return tf.pad(crops, pad)


def degrade(crops, scale, contrast, brightness, noise):
    """Blur (down by `scale`, back up), contrast, brightness and Gaussian noise of (B, h, w, 3) in [0, 1]."""
    h, w = crops.shape[1], crops.shape[2]
    size = tf.cast(tf.round(tf.stack([h / scale, w / scale])), tf.int32)
    x = tf.image.resize(tf.image.resize(crops, size, antialias=True), (h, w))
    x = (x - 0.5) * contrast + 0.5 + brightness
    return x + noise * tf.random.normal(tf.shape(x))


def _augment(crops, targets):
    u = tf.random.uniform
    crops = degrade(tf.cast(crops, tf.float32) / 255.0, u([], 1.0, 3.5), u([], 0.8, 1.2), u([], -0.08, 0.08),
                    u([], 0.0, 0.02))
    return _on_canvas(crops), targets


def _evaluate(model, crops, points, mean) -> dict:
    """Validation aperture r and landmark RMSE (pixels), sharp and blurred 2× and 3×."""
    x = tf.cast(crops, tf.float32) / 255.0
    result = {}
    for scale in (1.0, 2.0, 3.0):
        faces = _on_canvas(degrade(x, scale, 1.0, 0.0, 0.0) if scale > 1 else x)
        pred = model.predict(faces, batch_size=256, verbose=0).reshape(-1, 20, 2) + mean
        r = float(np.corrcoef(aperture(pred), aperture(points))[0, 1])
        result[f"blur{scale:g}"] = {"aperture_r": r, "rmse_px": float(np.sqrt(np.mean((pred - points) ** 2)))}
    return result


def train_mouth_expert(data_dir, out_dir, epochs: int = 4, batch_size: int = 64, learning_rate: float = 1e-3,
                       every: int = 1, seed: int | None = None, verbose: int = 1) -> dict:
    """Train the expert on the 'train' split, report on 'val' when there is one. Returns the record."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    crops, points = mouth_targets(data_dir, "train", out_dir, every, progress=bool(verbose))
    manifest = read_manifest(data_dir)
    has_val = any(v["split"] == "val" for v in manifest["videos"])
    val = mouth_targets(data_dir, "val", out_dir, every, progress=bool(verbose)) if has_val else None
    mean = points.mean(axis=0)
    targets = (points - mean).reshape(len(points), 40)
    ds = (tf.data.Dataset.from_tensor_slices((crops, targets)).shuffle(len(crops), seed=seed)
          .batch(batch_size).map(_augment, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2))
    model = build_mouth_expert(TARGET_SIZE)
    steps = epochs * -(-len(crops) // batch_size)
    # cosine decay: the last epoch's weights are the settled ones (small sets swing at a fixed rate)
    model.compile(keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(learning_rate, steps)), "mse")
    record = {"data": str(data_dir), "frames": {"train": len(crops), "val": 0 if val is None else len(val[0])},
              "every": every, "epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
              "mean_landmarks": mean.tolist(), "history": []}
    for epoch in range(1, epochs + 1):
        fit = model.fit(ds, epochs=1, verbose=verbose, shuffle=False)  # the dataset shuffles
        row = {"epoch": epoch, "loss": float(fit.history["loss"][-1])}
        if val is not None:
            row["val"] = _evaluate(model, *val, mean)
            if verbose:
                print(f"epoch {epoch}: val aperture r " + ", ".join(
                    f"{k} {v['aperture_r']:.3f}" for k, v in row["val"].items()))
        record["history"].append(row)
    with atomic_path(out_dir / "mouth_expert.keras") as tmp:
        model.save(tmp)
    write_text(out_dir / "mouth_expert.json", json.dumps(record, indent=2))
    return record
