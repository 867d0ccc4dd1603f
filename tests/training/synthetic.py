"""A small synthetic generator dataset for testing the training machinery (not learning quality)."""

import numpy as np
import tensorflow as tf


def synthetic_dataset(n=32, batch_size=8, identity_images=5, seed=0):
    rng = np.random.default_rng(seed)
    mfcc = (rng.normal(size=(n, 12, 35, 1)) * 5).astype("float32")
    identity = rng.uniform(size=(n, 112, 112, 3 * identity_images)).astype("float32")
    target = identity[:, 1:110, 1:110, :3] * 0.5 + 0.25
    return tf.data.Dataset.from_tensor_slices(({"mfcc": mfcc, "identity": identity}, target)).batch(batch_size)


def run(run_dir, epochs, steps_per_epoch, checkpoint_every, task="generator", jit_compile=False,
        precision="float32"):
    """Entry point for the kill -9 test's child process."""
    from keras_speech2vid.training import TrainConfig, train

    ds = synthetic_dataset()
    cfg = TrainConfig(epochs=epochs, steps_per_epoch=steps_per_epoch, checkpoint_every=checkpoint_every,
                      optimizer="adam", learning_rate=1e-3, jit_compile=jit_compile,
                      precision=precision)
    return train(task, "tiny", ds, run_dir, cfg, val_ds=ds.take(1), verbose=0)


def synthetic_sync_corpus(out_dir, videos=8, seconds=4.0, fps=25.0, val=2, seed=0):
    """A prepared data folder (`data.prepare` layout) of synthetic talking faces that are in sync.

    Each video's sound is a tone whose pitch follows a random syllable envelope e(t) (the MFCC shape, not
    the loudness, carries it: our MFCC has no c0); its face is a grey 112 face whose dark mouth bar opens
    with e(t) at the same time. The last `val` videos are the validation split.
    """
    import json
    from pathlib import Path

    from keras_speech2vid import audio
    from keras_speech2vid.data.prepare import PrepareConfig, _encode_jpeg, track_example, write_manifest

    out_dir = Path(out_dir)
    (out_dir / "records").mkdir(parents=True, exist_ok=True)
    (out_dir / "videos").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_frames, sr = int(seconds * fps), 16000
    for v in range(videos):
        knots = rng.uniform(0, 1, size=int(seconds * 5) + 2)  # about 5 syllables a second
        t = np.arange(int(seconds * sr)) / sr
        env = np.interp(t, np.linspace(0, seconds, len(knots)), knots)
        wave = 0.3 * np.sin(2 * np.pi * np.cumsum(300 + 2500 * env) / sr) + 0.01 * rng.normal(size=len(t))
        mfcc = audio.padded_mfcc(wave.astype(np.float32)).numpy()
        jpegs = []
        for k in range(n_frames):
            e = np.interp((k + 0.5) / fps, t, env)
            face = np.full((112, 112, 3), 170, np.uint8)
            face[60:100, 24:88] = 200  # chin and cheeks
            height = int(2 + 16 * e)
            face[78 - height // 2:78 + (height + 1) // 2, 40:72] = 40  # the mouth
            face = np.clip(face + rng.normal(0, 3, face.shape), 0, 255).astype(np.uint8)
            jpegs.append(_encode_jpeg(face, 90))
        vid = f"synthetic{v:02d}"
        with tf.io.TFRecordWriter(str(out_dir / "records" / f"{vid}.tfrecord")) as w:
            w.write(track_example(vid, 0, range(n_frames), jpegs, fps, mfcc))
        entry = {"video_id": vid, "file": f"{vid}.mp4", "record": f"records/{vid}.tfrecord", "fps": fps,
                 "frames": n_frames, "frames_with_face": n_frames, "frames_kept": n_frames,
                 "tracks": [{"track": 0, "start": 0, "stop": n_frames, "frames": n_frames}],
                 "duration": seconds, "audio_seconds": seconds, "av_offset": 0.0}
        (out_dir / "videos" / f"{vid}.json").write_text(json.dumps(entry))
    val_ids = [f"synthetic{v:02d}" for v in range(videos - val, videos)]
    return write_manifest(out_dir, PrepareConfig(val_fraction=0.0), val_groups=val_ids)
