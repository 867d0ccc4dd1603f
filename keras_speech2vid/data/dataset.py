"""The tf.data training pipeline over prepared shards (see `prepare`).

`make_dataset(data_dir, split, config, batch_size)` yields
``({"mfcc": (B, 12, 35, 1), "identity": (B, 112, 112, 3n)}, target (B, 109, 109, 3))``:

* targets: every `every`-th frame of each track (frame index divisible by `every`), as the 109×109
  crop [1:110] of the aligned face (spec §4.6), float in [0, 1];
* the target's MFCC window: `audio.gather_windows` on the video's padded MFCC with the front end's
  alignment convention and the video's ``av_offset`` from the manifest (SyncNet's, see `prepare`); for a
  generator with the Whisper front end, its window of the video's Whisper features instead
  (`data.features`, `whisper.window_indices`), under the key "whisper";
* tracks that SyncNet marked inactive (``"active": false``: the face is not the speaker) are skipped
  when the manifest says ``"inactive": "drop"`` (prepare's default);
* n identity frames from the same track, at least `min_identity_distance` frames away from the
  target (the paper's Figure 7). On a track too short for that, the farthest frames available are
  used instead (distance min(d, max reachable)); frames may repeat when the track has fewer than n
  candidates.

JPEG decoding, sampling and windowing are TF ops inside parallel maps, with prefetch. With a `seed`
the pipeline is deterministic: the order and every random choice depend only on the seed. Files
are sharded by tf.distribute's auto-sharding (one file per video).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_speech2vid import audio
from keras_speech2vid.config import AudioConfig, ModelConfig, get_config
from keras_speech2vid.data import sampling
from keras_speech2vid.data.manifest import dropped_tracks, read_manifest  # noqa: F401  (read_manifest re-exported)
from keras_speech2vid.errors import Speech2VidError

FEATURES = {
    "video_id": tf.io.FixedLenFeature([], tf.string),
    "track": tf.io.FixedLenFeature([], tf.int64),
    "frame_index": tf.io.VarLenFeature(tf.int64),
    "frames": tf.io.VarLenFeature(tf.string),
    "fps": tf.io.FixedLenFeature([], tf.float32),
    "mfcc": tf.io.VarLenFeature(tf.float32),
    "mfcc_frames": tf.io.FixedLenFeature([], tf.int64),
}


def parse_track(serialized):
    """One serialized track example → dict of dense tensors (mfcc as (12, F))."""
    ex = tf.io.parse_single_example(serialized, FEATURES)
    frames = tf.sparse.to_dense(ex["frames"], default_value=b"")
    mfcc = tf.reshape(tf.sparse.to_dense(ex["mfcc"]), (12, -1))
    return {"video_id": ex["video_id"], "track": ex["track"], "frame_index": tf.sparse.to_dense(ex["frame_index"]),
            "frames": frames, "fps": ex["fps"], "mfcc": mfcc}


def decode_face(jpeg) -> tf.Tensor:
    # the accurate IDCT (TF's default is the fast one): the same pixels as OpenCV gives `data.arrays`
    image = tf.io.decode_jpeg(jpeg, channels=3, dct_method="INTEGER_ACCURATE")
    image.set_shape((112, 112, 3))
    return tf.cast(image, tf.float32) / 255.0


def identity_positions(length, target_pos, n, min_distance, seed):
    """n int64 positions in [0, length): the rule of `sampling.identity_positions`, with TF's stateless RNG."""
    as_float = lambda x: tf.cast(x, tf.float64)  # noqa: E731
    uniforms = tf.random.stateless_uniform((n,), seed, dtype=tf.float64)
    return tf.cast(sampling.identity_positions(as_float(length), as_float(target_pos), uniforms,
                                               as_float(min_distance), tf), tf.int64)


def make_dataset(data_dir, split: str = "train", config: ModelConfig | str = "paper", batch_size: int = 32, *,
                 every: int | None = None, min_identity_distance: int = 25, shuffle: bool | None = None,
                 seed: int | None = None, repeat: bool = False, drop_remainder: bool | None = None,
                 audio_config: AudioConfig | None = None, shuffle_buffer: int = 1024,
                 return_meta: bool = False, clip_frames: int = 1, sync_config=None) -> tf.data.Dataset:
    """The training/validation pipeline over DATA_DIR's shards (see module doc).

    `shuffle` defaults to True for "train"; `seed` makes the pipeline deterministic. `every`
    defaults to the manifest's value. `drop_remainder` defaults to True for "train".
    With `return_meta`, elements are (inputs, target, meta) with meta = {"video_id", "track",
    "frame_index" (target), "identity_index" (n)}, for inspection and tests.

    `clip_frames` > 1 (the sync-expert loss): each sample is a clip of that many consecutive frames of a
    track around a target position, with one identity; the batch holds them in order (`batch_size` must
    be a multiple of `clip_frames`), and the inputs gain "sync_audio", the clip's SyncNet audio window
    (`sync_config`'s MFCC window, normalised per video as `sync.normalise_mfcc`), repeated per frame.
    """
    config = get_config(config)
    audio_config = audio_config or AudioConfig()
    manifest = read_manifest(data_dir)
    videos = [v for v in manifest["videos"] if v["split"] == split]
    if not videos:
        raise Speech2VidError(f"{data_dir}: no videos in split {split!r}")
    every = int(every or manifest.get("every", 5))
    shuffle = split == "train" if shuffle is None else shuffle
    drop_remainder = split == "train" if drop_remainder is None else drop_remainder
    n = config.identity_images
    files = [str(Path(data_dir) / v["record"]) for v in videos]
    offsets = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer([v["video_id"] for v in videos],
                                            [float(v.get("av_offset", 0.0)) for v in videos],
                                            key_dtype=tf.string, value_dtype=tf.float32), 0.0)
    base_seed = 0 if seed is None else int(seed)
    dropped = tf.constant([f"{v['video_id']}/{t}" for v in videos for t in sorted(dropped_tracks(manifest, v))],
                          tf.string)

    def kept(track):
        key = tf.strings.join([track["video_id"], tf.strings.as_string(track["track"])], "/")
        return tf.logical_not(tf.reduce_any(tf.equal(dropped, key)))

    if clip_frames < 1 or clip_frames % 2 == 0 or batch_size % clip_frames:
        raise ValueError(f"clip_frames must be odd and divide batch_size. Received: clip_frames={clip_frames}, "
                         f"batch_size={batch_size}")
    half = clip_frames // 2
    if clip_frames > 1:
        from keras_speech2vid.config import get_syncnet_config
        from keras_speech2vid.sync import normalise_mfcc, sync_audio_config

        sync_config = get_syncnet_config(sync_config or "small")
        sync_audio = sync_audio_config(sync_config)

        def with_sync_mfcc(track):
            normalised = tf.numpy_function(lambda m: normalise_mfcc(m, sync_config).astype(np.float32),
                                           [track["mfcc"]], tf.float32, stateful=False)
            return {**track, "sync_mfcc": tf.ensure_shape(normalised, track["mfcc"].shape)}

    whisper = config.audio_front_end == "whisper"
    if whisper:
        from keras_speech2vid.data.features import whisper_path
        from keras_speech2vid.whisper import window_first

        missing = [v["video_id"] for v in videos if not whisper_path(data_dir, v["video_id"]).is_file()]
        if missing:
            raise Speech2VidError(f"{data_dir}: no Whisper features for {len(missing)} of {len(videos)} videos "
                                  f"(e.g. {missing[0]}); make them with `speech2vid prepare ... --whisper`")

        def load_features(video_id):
            return np.load(whisper_path(data_dir, video_id.decode()), allow_pickle=False).astype(np.float32)

        def with_features(track):
            features = tf.numpy_function(load_features, [track["video_id"]], tf.float32, stateful=False)
            return {**track, "whisper": tf.ensure_shape(features, (None, config.whisper_dim))}

    def audio_window(track, k):
        """The target's audio input: its MFCC window, or its Whisper feature window."""
        offset = offsets.lookup(track["video_id"])
        if not whisper:
            return audio.gather_windows(track["mfcc"], k[None], fps=track["fps"], offset=offset,
                                        config=audio_config)[0]
        as64 = lambda x: tf.cast(x, tf.float64)  # noqa: E731
        first = tf.cast(window_first(as64(k), as64(track["fps"]), as64(offset), config.whisper_frames, 50.0,
                                     tf.floor), tf.int64)
        last = tf.shape(track["whisper"], out_type=tf.int64)[0] - 1
        return tf.gather(track["whisper"], tf.clip_by_value(first + tf.range(config.whisper_frames, dtype=tf.int64),
                                                            0, last))

    def samples_of_track(track):
        # (track, position) for every target position of the track
        index = track["frame_index"]
        targets = index % every == 0
        if clip_frames > 1:  # the clip's frames around the target are consecutive video frames
            length = tf.shape(index, out_type=tf.int64)[0]
            pos = tf.range(length)
            inside = (pos >= half) & (pos + half < length)
            ahead = tf.gather(index, tf.minimum(pos + half, length - 1))
            behind = tf.gather(index, tf.maximum(pos - half, 0))
            targets = targets & inside & (ahead - behind == 2 * half)
        positions = tf.where(targets)[:, 0]
        count = tf.shape(positions)[0]
        tracks = tf.data.Dataset.from_tensors(track).repeat()
        return tf.data.Dataset.zip((tracks, tf.data.Dataset.from_tensor_slices(positions))).take(
            tf.cast(count, tf.int64))

    def make_sample(index, item):
        track, pos = item
        frames = track["frames"]
        length = tf.shape(frames, out_type=tf.int64)[0]
        sample_seed = tf.stack([tf.constant(base_seed, tf.int64), index])
        ids = identity_positions(length, pos, n, min_identity_distance, sample_seed)
        identity = tf.concat([decode_face(frames[i]) for i in tf.unstack(ids, num=n)], axis=-1)
        k = track["frame_index"][pos]
        if clip_frames == 1:
            target = decode_face(frames[pos])[1:110, 1:110]
            inputs = {config.audio_front_end: audio_window(track, k), "identity": identity}
            meta = {"video_id": track["video_id"], "track": track["track"], "frame_index": k,
                    "identity_index": tf.gather(track["frame_index"], ids)}
        else:  # clip_frames examples: the consecutive frames around pos, one identity
            at = pos + tf.range(-half, half + 1, dtype=tf.int64)
            target = tf.stack([decode_face(frames[i])[1:110, 1:110] for i in tf.unstack(at, num=clip_frames)])
            ks = tf.gather(track["frame_index"], at)
            sync_window = audio.gather_windows(track["sync_mfcc"], k[None], fps=track["fps"], alignment="centre",
                                               offset=offsets.lookup(track["video_id"]), config=sync_audio)
            inputs = {config.audio_front_end: tf.stack([audio_window(track, ks[i]) for i in range(clip_frames)]),
                      "identity": tf.tile(identity[None], (clip_frames, 1, 1, 1)),
                      "sync_audio": tf.tile(sync_window, (clip_frames, 1, 1, 1))}
            repeat = lambda x: tf.tile(x[None], (clip_frames,) + (1,) * x.shape.rank)  # noqa: E731
            meta = {"video_id": repeat(track["video_id"]), "track": repeat(track["track"]), "frame_index": ks,
                    "identity_index": repeat(tf.gather(track["frame_index"], ids))}
        return (inputs, target, meta) if return_meta else (inputs, target)

    ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        ds = ds.shuffle(len(files), seed=base_seed, reshuffle_each_iteration=True)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(4, len(files)), num_parallel_calls=tf.data.AUTOTUNE,
                       deterministic=True if seed is not None else None)
    ds = ds.map(parse_track, num_parallel_calls=tf.data.AUTOTUNE).filter(kept)
    if whisper:
        ds = ds.map(with_features, num_parallel_calls=tf.data.AUTOTUNE)
    if clip_frames > 1:
        ds = ds.map(with_sync_mfcc, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.flat_map(samples_of_track)
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=base_seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.enumerate().map(make_sample, num_parallel_calls=tf.data.AUTOTUNE,
                            deterministic=True if seed is not None else None)
    if clip_frames > 1:
        ds = ds.unbatch()  # a clip's frames stay together and in order: batch_size is a multiple
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    options = tf.data.Options()
    if seed is not None:
        options.deterministic = True
    ds = ds.with_options(options)
    return ds.prefetch(tf.data.AUTOTUNE)
