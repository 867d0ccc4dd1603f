"""`speech2vid` command line: a thin argparse front over the library functions.

Each subcommand has an `_add_<name>(subparsers)` that declares its arguments and a `_run_<name>(args)`
that calls the library. Library errors (`Speech2VidError`) print one line and exit 2; `--verbose`
shows the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
import time


def _add_align(sub):
    p = sub.add_parser("align", help="write the 112×112 aligned face crop of each image")
    p.add_argument("images", nargs="+", help="input images")
    p.add_argument("--outdir", required=True, help="folder for the aligned crops (PNG)")
    p.add_argument("--box", type=int, nargs=4, metavar=("T", "B", "L", "R"), default=None,
                   help="use the face nearest this box (top bottom left right) when there are several")
    return p


def _run_align(args):
    from keras_speech2vid.face.align import align_images

    for src, dst in align_images(args.images, args.outdir, box=args.box):
        print(f"{src} -> {dst}")


def _add_export(sub):
    p = sub.add_parser("export", help="export a weights folder as a TF Serving SavedModel or as ONNX files")
    p.add_argument("--weights", default=None,
                   help="weights folder (generator.keras [+ deblurrer.keras], or a manifest.json folder; "
                        "default: the bundled weights)")
    p.add_argument("--out", required=True, help="export folder: the SavedModel goes to OUT/NAME/VERSION/, "
                                                "ONNX files to OUT/generator.onnx and OUT/deblurrer.onnx")
    p.add_argument("--format", choices=("savedmodel", "onnx"), default="savedmodel", help="default: savedmodel")
    p.add_argument("--version", type=int, default=None,
                   help="SavedModel version folder (default: one more than the largest there)")
    p.add_argument("--name", default="speech2vid", help="SavedModel model name (default: speech2vid)")
    p.add_argument("--precision", choices=("fp32", "int8"), default="fp32",
                   help="int8 (with --format onnx): OUT/identity_encoder.onnx (float32) and OUT/frame_int8.onnx "
                        "(the per-frame graph, statically quantised)")
    return p


@contextlib.contextmanager
def _stage(what: str):
    """Tell a person at a terminal that a long step without a bar of its own starts, and how long it took
    (not a log or a pipe: there an error stays the one line on stderr)."""
    start, shown = time.monotonic(), sys.stderr.isatty()
    if shown:
        print(f"speech2vid: {what} ...", file=sys.stderr, flush=True)
    yield
    if shown:
        print(f"speech2vid: {what}: done in {time.monotonic() - start:.1f} s", file=sys.stderr, flush=True)


def _run_export(args):
    from keras_speech2vid.errors import Speech2VidError

    if args.format == "onnx" and args.version is not None:
        raise Speech2VidError("--version applies to --format savedmodel only")
    from keras_speech2vid.export import export_weights

    with _stage(f"exporting {args.weights or 'the bundled weights'} as {args.format}"):
        result = export_weights(args.weights, args.out, format=args.format, name=args.name, version=args.version,
                                precision=args.precision)
    for note in result.notes:
        print(note)
    for path in result.paths:
        diff = result.max_abs_diff.get(path.stem)
        psnr = result.psnr.get(path.stem)
        print(f"{path}" + (f"  (onnxruntime vs Keras max abs diff {diff:.2e})" if diff is not None else "")
              + (f"  (int8 vs float32 frames: {psnr:.1f} dB PSNR)" if psnr is not None else ""))


def _add_prepare(sub):
    from keras_speech2vid.data.prepare import PrepareConfig

    p = sub.add_parser("prepare", help="videos -> aligned face tracks + MFCC -> TFRecord shards")
    p.add_argument("inputs", nargs="+", help="video files or folders (searched recursively)")
    p.add_argument("--out", required=True, help="DATA_DIR")
    p.add_argument("--every", type=int, default=5, help="targets are every N-th frame of a track")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of videos/speakers for validation")
    p.add_argument("--val", nargs="*", default=[], help="speakers (or video names) to put in validation")
    p.add_argument("--speakers", help="JSON file mapping video name -> speaker (splits by speaker)")
    p.add_argument("--shard", default="0/1", help="i/N: prepare only this machine's share of the videos")
    p.add_argument("--workers", type=int, default=1, help="parallel worker processes")
    p.add_argument("--min-track-frames", type=int, default=10)
    p.add_argument("--nosmooth", action="store_true", help="no temporal smoothing of the alignment")
    p.add_argument("--no-sync", action="store_true",
                   help="skip stage (ii): SyncNet AV offsets and active-speaker flags (on when SyncNet weights exist)")
    p.add_argument("--sync-weights", default=None, help="weights folder with a SyncNet (default: the bundled weights)")
    p.add_argument("--sync-threshold", type=float, default=PrepareConfig().sync_threshold,
                   help="tracks whose SyncNet confidence is below this are not the speaker (inactive)")
    p.add_argument("--sync-min-seconds", type=float, default=PrepareConfig().sync_min_seconds,
                   help="shorter tracks are measured but neither judged nor used for the video's offset")
    p.add_argument("--inactive", choices=("drop", "flag"), default="drop",
                   help="inactive tracks: the loader skips them (drop) or keeps them, marked (flag)")
    p.add_argument("--whisper", action="store_true",
                   help="also store each video's Whisper tiny.en features (for the whisper presets; resumable)")
    p.add_argument("--runner", choices=("direct", "flink", "spark", "dataflow"), default=None,
                   help="run on Apache Beam (the [beam] extra); Beam pipeline options follow as --name=value, and "
                        "DATA_DIR and inputs may be URLs (gs://, s3://). --workers sets the DirectRunner's processes")
    p.add_argument("--fail-on-error", action="store_true",
                   help="exit with status 1 when a video could not be prepared (they are listed in the manifest)")
    return p


def _read_speakers(path) -> dict:
    import json

    from keras_speech2vid.errors import Speech2VidError

    try:
        speakers = json.loads(open(path, encoding="utf-8").read())
    except OSError as e:
        raise Speech2VidError(f"{path}: cannot read --speakers ({e.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise Speech2VidError(f"{path}: --speakers is not JSON ({e})") from None
    if not isinstance(speakers, dict):
        raise Speech2VidError(f"{path}: --speakers must map video names to speakers (a JSON object)")
    return speakers


def _run_prepare(args):
    import logging

    from keras_speech2vid.data.prepare import PrepareConfig, prepare
    from keras_speech2vid.errors import Speech2VidError

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        index, count = (int(v) for v in args.shard.split("/"))
    except ValueError:
        raise SystemExit(f"speech2vid prepare: error: --shard must look like i/N. Received: {args.shard!r}")
    speakers = _read_speakers(args.speakers) if args.speakers else None
    try:
        config = PrepareConfig(every=args.every, val_fraction=args.val_fraction,
                               min_track_frames=args.min_track_frames, smooth=not args.nosmooth, sync=not args.no_sync,
                               sync_weights=args.sync_weights, sync_threshold=args.sync_threshold,
                               sync_min_seconds=args.sync_min_seconds, inactive=args.inactive)
        if not (count >= 1 and 0 <= index < count):
            raise ValueError(f"--shard must be i/N with 0 <= i < N. Received: {args.shard!r}")
        if args.workers < 1:
            raise ValueError(f"--workers must be at least 1. Received: {args.workers}")
    except ValueError as e:
        raise Speech2VidError(str(e)) from None
    if args.runner:
        from keras_speech2vid.data.beam_prepare import is_url, prepare_beam

        if args.whisper and is_url(args.out):
            raise Speech2VidError(f"{args.out}: --whisper needs a local DATA_DIR")
        manifest = prepare_beam(args.inputs, args.out, config, runner=args.runner, workers=args.workers,
                                pipeline_args=args.pipeline_args, shard=(index, count), speakers=speakers,
                                val_groups=args.val)
    else:
        manifest = prepare(args.inputs, args.out, config, shard=(index, count), workers=args.workers,
                           speakers=speakers, val_groups=args.val)
    t = manifest["totals"]
    inactive = t["train"]["inactive_tracks"] + t["val"]["inactive_tracks"]
    print(f"{args.out}: train {t['train']['videos']} videos / {t['train']['frames']} frames, "
          f"val {t['val']['videos']} videos / {t['val']['frames']} frames, {len(manifest['skipped'])} skipped, "
          f"{inactive} inactive tracks ({'dropped' if config.inactive == 'drop' else 'flagged'})")
    if args.whisper:
        from keras_speech2vid.data.features import add_whisper_features

        print(f"{args.out}: Whisper features for {add_whisper_features(args.out)} more videos")
    if args.fail_on_error and manifest["skipped"]:
        first = manifest["skipped"][0]["reason"]
        print(f"speech2vid prepare: error: {len(manifest['skipped'])} videos could not be prepared (the manifest's "
              f"\"skipped\" list), the first: {first}", file=sys.stderr)
        raise SystemExit(1)


def _add_train_common(p, defaults: dict, backends=("tensorflow",)):
    from keras_speech2vid.training.config import SMALL_DATA, cli_options

    p.add_argument("--data", required=True,
                   help="DATA_DIR made by `speech2vid prepare` (or, for --backend jax, by `export-arrays`)")
    p.add_argument("--out", required=True, help="RUN_DIR (continues from its latest checkpoint)")
    p.add_argument("--preset", default="paper", help="paper | paper_1img | tiny")
    p.add_argument("--resume", action="store_true", help="require an existing checkpoint to continue")
    if len(backends) > 1:
        p.add_argument("--backend", default="tensorflow", choices=backends,
                       help="tensorflow: tf.distribute on TFRecords; jax: jit on array chunks, no TensorFlow "
                            "needed (the GPU machine)")
    p.add_argument("--strategy", default="auto", help="auto | one | mirrored | multiworker | tpu (TF driver)")
    p.add_argument("--seed", type=int, default=None, help="deterministic data pipeline")
    groups = {None: p}
    for group, flag, kw in cli_options(defaults):
        if group not in groups:
            groups[group] = p.add_argument_group(group)
        groups[group].add_argument(flag, **kw)
    small = groups[SMALL_DATA]
    small.add_argument("--init-from", default=None, metavar="MODEL",
                       help="start a new run from these weights (a .keras file or a RUN_DIR)")
    small.add_argument("--identity-mouth-mask", nargs="?", const="grey", default=None, choices=("grey", "skin"),
                       help="blank the mouth of the identity images with grey, or with each image's skin "
                            "colour (a model option, kept by the weights)")
    small.add_argument("--identity-mouth-region", default="mouth", choices=("mouth", "lower"),
                       help="with --identity-mouth-mask: blank the whole mouth box, or only from the upper "
                            "inner lip down (default: mouth)")
    return p


def _add_train(sub):
    p = sub.add_parser("train", help="train the generator (L1 loss; paper: SGD, momentum 0.9, lr 1e-5)")
    return _add_train_common(p, {}, backends=("tensorflow", "jax"))


def _add_train_deblur(sub):
    p = sub.add_parser("train-deblur", help="train the deblurring net on artificially degraded faces")
    return _add_train_common(p, {"learning_rate": 1e-4, "optimizer": "adam"})


def _run_training(args, task):
    from keras_speech2vid.training.config import from_cli
    from keras_speech2vid.errors import TrainingError
    from keras_speech2vid.training.run import start_run

    if args.identity_mouth_region != "mouth" and not args.identity_mouth_mask:
        raise TrainingError("--identity-mouth-region needs --identity-mouth-mask")
    try:  # settings first, in one line each, before anything is built
        cfg = from_cli(args)
    except ValueError as e:
        raise TrainingError(f"{args.command}: {e}") from None
    overrides = {}
    if args.identity_mouth_mask:
        overrides = {"identity_mouth_mask": True, "identity_mouth_fill": args.identity_mouth_mask,
                     "identity_mouth_region": args.identity_mouth_region}
    result = start_run(task, args.data, args.out, args.preset, cfg, getattr(args, "backend", "tensorflow"),
                       strategy=args.strategy, seed=args.seed, init_from=args.init_from, resume=args.resume,
                       model_overrides=overrides)
    print(f"{args.out}: step {result['step']}, {result['epochs']} epochs, best val loss {result['best_val']:.5f}")


def _run_train(args):
    _run_training(args, "generator")


def _run_train_deblur(args):
    _run_training(args, "deblurrer")


def _add_export_arrays(sub):
    p = sub.add_parser("export-arrays", help="prepared data -> array chunks for `train --backend jax` "
                                             "(machines without TensorFlow)")
    p.add_argument("data", help="DATA_DIR made by `speech2vid prepare`")
    p.add_argument("--out", required=True, help="ARRAYS_DIR to write")
    p.add_argument("--max-mib", type=float, default=60, help="largest chunk, MiB (default 60: one upload each)")
    p.add_argument("--quality", type=int, default=None, help="re-encode the JPEGs at this quality (smaller)")
    p.add_argument("--every", type=int, default=None, help="every N-th frame is a target (default: the manifest's)")
    p.add_argument("--splits", nargs="+", default=("train", "val"))
    return p


def _run_export_arrays(args):
    from keras_speech2vid.data.arrays import export_arrays
    from keras_speech2vid.errors import Speech2VidError

    try:
        record = export_arrays(args.data, args.out, args.splits, args.max_mib, args.every, args.quality)
    except ValueError as e:
        raise Speech2VidError(f"export-arrays: {e}") from None
    for split, chunks in record["splits"].items():
        mib = sum(c["bytes"] for c in chunks) / (1 << 20)
        print(f"{args.out}: {split}: {len(chunks)} chunks, {sum(c['targets'] for c in chunks)} targets, "
              f"{sum(c['frames'] for c in chunks)} frames, {mib:.1f} MiB")


def _add_train_mouth_expert(sub):
    p = sub.add_parser("train-mouth-expert",
                       help="train the mouth-shape expert for `train --shape-expert` (not in the paper)")
    p.add_argument("--data", required=True, help="a folder made by `speech2vid prepare`")
    p.add_argument("--out", required=True, help="OUT/mouth_expert.keras, mouth_expert.json, landmark caches")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--every", type=int, default=1, help="use every N-th tracked frame")
    p.add_argument("--seed", type=int, default=None)
    return p


def _run_train_mouth_expert(args):
    from keras_speech2vid.training.mouth_expert import train_mouth_expert

    record = train_mouth_expert(args.data, args.out, epochs=args.epochs, batch_size=args.batch_size,
                                learning_rate=args.lr, every=args.every, seed=args.seed)
    last = record["history"][-1]
    val = f", val aperture r {last['val']['blur1']['aperture_r']:.3f}" if "val" in last else ""
    print(f"{args.out}/mouth_expert.keras: {record['frames']['train']} frames, loss {last['loss']:.4f}{val}")


def _add_train_syncnet(sub):
    p = sub.add_parser("train-syncnet", help="train the AV-sync network (offsets and active speakers in "
                                             "`prepare`, LSE-D/LSE-C in `evaluate`)")
    p.add_argument("--data", required=True, help="a folder made by `speech2vid prepare`")
    p.add_argument("--out", required=True, help="RUN_DIR (re-run the same command to resume)")
    p.add_argument("--preset", default="small", help="SyncNet preset: small or tiny")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--steps", type=int, default=500, help="steps per epoch")
    p.add_argument("--spans", type=int, default=8, help="clips per batch")
    p.add_argument("--span", type=int, default=16, help="consecutive windows per clip")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init-from", default=None, help="start from the weights of another run's syncnet.keras")
    p.add_argument("--dropout", type=float, default=None,
                   help="dropout after fc1 of each stream (default: the preset's)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay (0: Adam)")
    p.add_argument("--pair-weight", type=float, default=0.0,
                   help="weight of the pairwise contrastive term beside the multi-way loss (0: none)")
    return p


def _run_train_syncnet(args):
    from keras_speech2vid.config import get_syncnet_config
    from keras_speech2vid.training.syncnet import train_syncnet

    config = get_syncnet_config(args.preset)
    if args.dropout is not None:
        config = config.replace(dropout=args.dropout)
    record = train_syncnet(args.data, args.out, config, epochs=args.epochs, steps_per_epoch=args.steps,
                           spans=args.spans, span=args.span, learning_rate=args.lr, seed=args.seed,
                           init_from=args.init_from, weight_decay=args.weight_decay, pair_weight=args.pair_weight)
    last = record["history"][-1] if record["history"] else {}
    val = last.get("val") or {}
    print(f"{args.out}/syncnet.keras: best epoch {record['best']['epoch']}, val AUC {val.get('auc')}, "
          f"val offset within 1 frame {val.get('offset_within_1')}")


def _add_evaluate_sync(sub):
    p = sub.add_parser("evaluate-sync", help="SyncNet on real clips: offset recovery, AUC, LSE-D/LSE-C real vs "
                                             "mismatched audio")
    p.add_argument("clips", nargs="+", help="talking-face videos (files or folders)")
    p.add_argument("--speakers", help="JSON clip -> person map, with --people to select clips")
    p.add_argument("--people", nargs="*", default=None, help="keep only the clips of these people")
    p.add_argument("--weights", default=None, help="weights folder with a SyncNet (default: the bundled weights)")
    p.add_argument("--max-offset", type=int, default=10, help="known offsets tried: -N..N frames")
    p.add_argument("--min-seconds", type=float, default=2.0, help="shorter clips are reported apart")
    p.add_argument("--out", dest="report", default=None, metavar="JSON", help="write the full report as JSON here")
    p.add_argument("--plots", default=None, help="folder for one distance-by-shift plot per clip")
    return p


def _run_evaluate_sync(args):
    import json

    from keras_speech2vid.data.prepare import find_videos
    from keras_speech2vid.evaluation.sync_check import format_report, sync_check
    from keras_speech2vid.sync import SyncNet

    clips = find_videos(args.clips)
    if args.people is not None:
        if not args.speakers:
            raise SystemExit("speech2vid evaluate-sync: error: --people needs --speakers")
        people = json.loads(open(args.speakers).read())
        clips = [c for c in clips if people.get(c.stem) in set(args.people)]
    report = sync_check(clips, SyncNet.load(args.weights), range(-args.max_offset, args.max_offset + 1),
                        min_seconds=args.min_seconds, plots=args.plots)
    if args.report:
        from keras_speech2vid.io import write_text

        write_text(args.report, json.dumps(report, indent=1) + "\n")
    print(format_report(report))


def _add_model_options(p, batch_default=16):
    p.add_argument("--weights", default=None, help="weights folder (default: the bundled weights)")
    p.add_argument("--no-deblur", action="store_true", help="skip the deblurring network")
    p.add_argument("--batch-size", type=int, default=batch_default,
                   help=f"frames per model call (default: {batch_default})")
    p.add_argument("--xla", action="store_true", help="compile the per-batch function with XLA")
    p.add_argument("--precision", choices=("fp32", "int8"), default="fp32",
                   help="int8: the per-frame graph quantised, 2.4-4x faster on CPU (made once per set of weights, "
                        "then cached; see SPEECH2VID_CACHE)")
    p.add_argument("--int8-runtime", choices=("auto", "onnxruntime", "tflite"), default="auto",
                   help="what runs int8: auto (default) takes TFLite on CPUs with VNNI, else onnxruntime")


def _load_speech2vid(args, **positive):
    from keras_speech2vid.errors import Speech2VidError
    from keras_speech2vid.inference import Speech2Vid

    for name, value in {"batch-size": args.batch_size, **positive}.items():
        if not value > 0 or (name != "fps" and value < 1):
            raise Speech2VidError(f"--{name} must be {'positive' if name == 'fps' else 'at least 1'}, not {value}")
    with _stage(f"loading the weights of {args.weights or 'the bundled preset demo'}"):
        return Speech2Vid.load(args.weights, batch_size=args.batch_size, jit_compile=args.xla,
                               precision=args.precision, int8_runtime=args.int8_runtime)


def _add_generate(sub):
    p = sub.add_parser("generate", help="talking-face video from face image(s) and speech",
                       description="Generate a talking-face video. One --face uses the 1-image model when the "
                                   "weights have one; the 5-image model takes five faces (fewer are repeated "
                                   "cyclically). A video as --face gives its own identity frames. A 112x112 image "
                                   "whose face sits at the aligned position is taken as an aligned crop.")
    p.add_argument("--face", action="append", required=True, metavar="IMG",
                   help="identity face image (repeat for several), or one video")
    p.add_argument("--audio", required=True, help="speech: any media file with an audio stream")
    p.add_argument("--outfile", required=True, help="output mp4 (written atomically)")
    _add_model_options(p)
    p.add_argument("--fps", type=float, default=25.0, help="output frame rate (default: 25)")
    p.add_argument("--full-frame", action="store_true",
                   help="paste the face back into the (first) source image, Poisson-blended")
    p.add_argument("--region", choices=("full", "lower"), default="full",
                   help="--full-frame: blend the whole face (default) or the lower face only")
    p.add_argument("--blend", choices=("poisson", "alpha", "none"), default="poisson",
                   help="--full-frame: blending method (default: poisson)")
    aligned = p.add_mutually_exclusive_group()
    aligned.add_argument("--aligned", action="store_true", help="the faces are aligned 112x112 crops: skip detection")
    aligned.add_argument("--no-aligned", action="store_true",
                         help="detect and align even 112x112 images (by default one is taken as an aligned crop "
                              "unless its face is found elsewhere in it)")
    p.add_argument("--box", type=int, nargs=4, metavar=("T", "B", "L", "R"), default=None,
                   help="use the face nearest this box (top bottom left right) when there are several")
    p.add_argument("--pads", type=int, nargs=4, metavar=("T", "B", "L", "R"), default=None,
                   help="enlarge the detected face box by these pixels before landmarks (Wav2Lip)")
    p.add_argument("--resize_factor", "--resize-factor", dest="resize_factor", type=int, default=1,
                   help="shrink the input image/video by this factor first (Wav2Lip; default: 1)")
    return p


def _run_generate(args):
    from keras_speech2vid.io import check_outfile

    check_outfile(args.outfile, [*args.face, args.audio])  # before the model loads
    s2v = _load_speech2vid(args, fps=args.fps, resize_factor=args.resize_factor)
    aligned = True if args.aligned else (False if args.no_aligned else None)
    out = s2v.generate_video(args.face, args.audio, args.outfile, aligned=aligned,
                             box=args.box, pads=args.pads, resize_factor=args.resize_factor,
                             full_frame=args.full_frame, region=args.region, blend=args.blend,
                             deblur=not args.no_deblur, fps=args.fps, progress=True)
    print(out)


def _add_redub(sub):
    p = sub.add_parser("redub", help="make the person in a video say new speech",
                       description="Re-dub a video: track the face, generate the mouth from the new audio with "
                                   "identity frames from the video, and blend it back. Audio longer than the video "
                                   "loops the video forward and back (ping-pong); shorter audio trims it.")
    p.add_argument("--video", required=True, help="video to re-dub")
    p.add_argument("--audio", required=True, help="the new speech: any media file with an audio stream")
    p.add_argument("--outfile", required=True, help="output mp4 (written atomically)")
    _add_model_options(p)
    p.add_argument("--region", choices=("lower", "full"), default="lower",
                   help="replace the lower face from just below the eyes (default) or the whole face")
    p.add_argument("--blend", choices=("poisson", "alpha", "none"), default="poisson",
                   help="blending method (default: poisson)")
    p.add_argument("--nosmooth", action="store_true", help="do not smooth the face alignment over time")
    p.add_argument("--identity-frames", type=int, default=5, help="identity frames taken from the video (default: 5)")
    p.add_argument("--static", action="store_true", help="use only the first frame of the video")
    p.add_argument("--box", type=int, nargs=4, metavar=("T", "B", "L", "R"), default=None,
                   help="follow the face nearest this box (top bottom left right)")
    return p


def _run_redub(args):
    from keras_speech2vid.io import check_outfile

    check_outfile(args.outfile, [args.video, args.audio])  # before the model loads
    s2v = _load_speech2vid(args, **{"identity-frames": args.identity_frames})
    out = s2v.redub(args.video, args.audio, args.outfile, region=args.region, blend=args.blend,
                    smooth=False if args.nosmooth else None, identity_frames=args.identity_frames,
                    static=args.static, box=args.box, deblur=not args.no_deblur, progress=True)
    print(out)


def _add_demo(sub):
    p = sub.add_parser("demo", help="the bundled face speaking the bundled speech, with the bundled weights")
    p.add_argument("--outfile", required=True, help="output mp4")
    _add_model_options(p)
    return p


def _run_demo(args):
    from keras_speech2vid.inference.demo import demo_files, run_demo
    from keras_speech2vid.io import check_outfile

    check_outfile(args.outfile, demo_files())  # before the model loads
    s2v = _load_speech2vid(args)
    _, summary = run_demo(s2v, args.outfile, deblur=not args.no_deblur, progress=True)
    print(summary)


def _add_ui(sub):
    p = sub.add_parser("ui", help="the browser UI (Gradio; pip install keras_speech2vid[ui])")
    p.add_argument("--weights", default=None, help="weights folder (default: the bundled weights)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    p.add_argument("--outdir", default=None, help="folder for the generated videos (default: a temporary one)")
    p.add_argument("--share", action="store_true", help="also a public Gradio link (needs the internet)")
    return p


def _run_ui(args):
    import importlib.util

    from keras_speech2vid.errors import Speech2VidError

    if importlib.util.find_spec("gradio") is None:
        raise Speech2VidError("the UI needs Gradio: pip install 'keras_speech2vid[ui]'")
    from keras_speech2vid.ui import launch

    launch(args.weights, host=args.host, port=args.port, outdir=args.outdir, share=args.share)


def _add_evaluate(sub):
    p = sub.add_parser("evaluate", help="self-reconstruction metrics on real talking clips (PSNR, SSIM, LMD, lip sync)",
                       description="Re-create each clip's face from its own audio and identity frames from the "
                                   "clip's first part, and compare with the real face: PSNR/SSIM (face and mouth), "
                                   "mouth-landmark distance, mouth-aperture correlation and AV offset, against a "
                                   "static and a mismatched-audio baseline. Writes report.json, report.md and PNG "
                                   "plots to --outdir.")
    p.add_argument("--clips", nargs="+", required=True, metavar="PATH", help="talking-face video clips with audio")
    p.add_argument("--outdir", required=True, help="folder for report.json, report.md and the plots (created)")
    p.add_argument("--weights", default=None, help="weights folder (default: the bundled weights)")
    p.add_argument("--identity-frames", type=int, default=5, help="identity frames per clip (default: 5)")
    p.add_argument("--max-seconds", type=float, default=None, help="evaluate only the first S seconds of each clip")
    p.add_argument("--guard", type=int, default=2,
                   help="frames left out between the last identity frame and the scored frames (default: 2)")
    p.add_argument("--max-lag", type=int, default=10, help="AV offset search range, frames each way (default: 10)")
    p.add_argument("--self-check", action="store_true",
                   help="score the ground truth as if generated (no model): must give PSNR inf, LMD 0, r 1")
    p.add_argument("--no-deblur", action="store_true", help="skip the deblurring network")
    p.add_argument("--no-sync", action="store_true", help="skip LSE-D / LSE-C (SyncNet)")
    p.add_argument("--batch-size", type=int, default=16, help="frames per model call (default: 16)")
    return p


def _run_evaluate(args):
    from keras_speech2vid.errors import Speech2VidError
    from keras_speech2vid.evaluation import EvalConfig, evaluate

    try:
        config = EvalConfig(identity_frames=args.identity_frames, guard=args.guard, max_seconds=args.max_seconds,
                            max_lag=args.max_lag, deblur=not args.no_deblur, sync=not args.no_sync)
    except ValueError as e:
        raise Speech2VidError(str(e)) from None
    if args.batch_size < 1:
        raise Speech2VidError(f"--batch-size must be at least 1, not {args.batch_size}")
    report = evaluate(args.clips, args.outdir, config, weights=args.weights, self_check=args.self_check,
                      log=lambda line: print(line, file=sys.stderr), batch_size=args.batch_size)
    for name, m in report["overall"].items():
        lse = f"  LSE-D {m['lse_d']:.3f}  LSE-C {m['lse_c']:.3f}" if "lse_d" in m else ""
        if "psnr" not in m:  # the real clips: sync figures only
            print(f"{name:>10}:{lse}")
            continue
        print(f"{name:>10}: PSNR {m['psnr']:.2f}  SSIM {m['ssim']:.4f}  mouth PSNR {m['psnr_mouth']:.2f}  "
              f"mouth SSIM {m['ssim_mouth']:.4f}  LMD {m['lmd']:.2f}  aperture r {m['aperture_r']:.3f}{lse}")
    print(os.path.join(args.outdir, "report.md"))


def _add_pack_weights(sub):
    p = sub.add_parser("pack-weights", help="training runs -> a compact, checksummed weights folder")
    p.add_argument("runs", nargs="+", help="RUN_DIRs of `speech2vid train` / `train-deblur` / `train-syncnet`")
    p.add_argument("--out", required=True, help="weights folder to write (e.g. weights/)")
    p.add_argument("--keep", action="store_true", help="keep the models already in OUT that the runs do not replace")
    p.add_argument("--max-file-mib", type=float, default=None,
                   help="split each model over files of at most this size (e.g. 14, to bring weights back "
                        "from the GPU machine)")
    return p


def _run_pack_weights(args):
    from keras_speech2vid.weights import pack_runs

    print(pack_runs(args.runs, args.out, keep=args.keep, max_file_mib=args.max_file_mib))


def _add_import_matconvnet(sub):
    p = sub.add_parser("import-matconvnet", help="the authors' released MatConvNet models (v201.mat, v114.mat) "
                                                 "-> a weights folder",
                       description="Convert the authors' DagNN files (the generator v201.mat and, optionally, the "
                                   "deblurrer v114.mat; MATLAB v5/v7 or v7.3) into a weights folder for generate, "
                                   "evaluate and export. Nothing in the files is executed.")
    p.add_argument("generator", help="v201.mat (the 5-image generator; a 1-image one is recognised)")
    p.add_argument("deblurrer", nargs="?", default=None, help="v114.mat (the deblurring net; optional)")
    p.add_argument("--out", required=True, help="weights folder to write")
    return p


def _run_import_matconvnet(args):
    from keras_speech2vid.matconvnet_import import import_matconvnet

    with _stage("converting the MatConvNet files"):
        print(import_matconvnet(args.generator, args.deblurrer, args.out))


COMMANDS = {
    "prepare": (_add_prepare, _run_prepare),
    "train": (_add_train, _run_train),
    "train-deblur": (_add_train_deblur, _run_train_deblur),
    "train-mouth-expert": (_add_train_mouth_expert, _run_train_mouth_expert),
    "train-syncnet": (_add_train_syncnet, _run_train_syncnet),
    "evaluate-sync": (_add_evaluate_sync, _run_evaluate_sync),
    "export-arrays": (_add_export_arrays, _run_export_arrays),
    "export": (_add_export, _run_export),
    "align": (_add_align, _run_align),
    "generate": (_add_generate, _run_generate),
    "redub": (_add_redub, _run_redub),
    "demo": (_add_demo, _run_demo),
    "ui": (_add_ui, _run_ui),
    "evaluate": (_add_evaluate, _run_evaluate),
    "pack-weights": (_add_pack_weights, _run_pack_weights),
    "import-matconvnet": (_add_import_matconvnet, _run_import_matconvnet),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="speech2vid", description="Speech2Vid talking-face generation")
    parser.add_argument("--verbose", action="store_true", help="show tracebacks and TensorFlow logs")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (add, _) in COMMANDS.items():
        add(sub)
    return parser


def _import_tensorflow_quietly():
    """Import TF with native stderr muted: its start-up banner comes before any log setting applies."""
    if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
        return  # no TF (the GPU machine): the commands that need none still run
    from keras_speech2vid.io import native_stderr_muted

    with native_stderr_muted():
        import tensorflow  # noqa: F401


def _interrupt(signum, frame):
    # SIGTERM (timeout, docker stop, systemd) cleans up as Ctrl-C does; the flag outlives a
    # KeyboardInterrupt that Python drops because it was raised inside a finaliser
    from keras_speech2vid.io import mark_interrupted

    mark_interrupted()
    raise KeyboardInterrupt


def _one_line_warning(message, category, filename, lineno, line=None):
    return f"speech2vid: warning: {message}\n"


def main(argv=None) -> int:
    import signal
    import threading
    import warnings

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not (args.command == "prepare" and args.runner):  # Beam's pipeline options are prepare's
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.pipeline_args = extra
    backend = getattr(args, "backend", "tensorflow")
    if backend == "jax":  # before Keras is imported: it picks its backend once
        if "keras" in sys.modules and sys.modules["keras"].backend.backend() != "jax":
            print(f"speech2vid {args.command}: error: --backend jax needs KERAS_BACKEND=jax when Keras is "
                  "already imported", file=sys.stderr)
            return 2
        os.environ["KERAS_BACKEND"] = "jax"
    elif not args.verbose and os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        _import_tensorflow_quietly()
    from keras_speech2vid.errors import Speech2VidError

    # for this command only (main also runs inside tests and notebooks): one-line warnings (library
    # warnings name their file), and SIGINT/SIGTERM recorded as well as raised, so that outputs are cleaned up
    saved_format = warnings.formatwarning
    warnings.formatwarning = _one_line_warning
    on_main_thread = threading.current_thread() is threading.main_thread()
    from keras_speech2vid.io import check_not_interrupted, check_output_dir, mark_interrupted

    mark_interrupted(False)
    stops = (signal.SIGINT, signal.SIGTERM)
    saved = {s: signal.signal(s, _interrupt) for s in stops} if on_main_thread else {}
    try:
        for name in ("out", "outdir"):  # every --out / --outdir is a folder: checked before any work
            if getattr(args, name, None) and "://" not in str(getattr(args, name)):  # URLs: Beam's filesystems
                check_output_dir(getattr(args, name))
        COMMANDS[args.command][1](args)
        check_not_interrupted()
    except (Speech2VidError, ValueError) as e:  # bad input or a bad option value: one line, no traceback
        if args.verbose:
            raise
        print(f"speech2vid {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"speech2vid {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = saved_format
        mark_interrupted(False)  # main also runs in notebooks: later library calls must not stop
        for s, handler in saved.items():
            signal.signal(s, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
