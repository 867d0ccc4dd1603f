"""`speech2vid` command line: a thin argparse front over the library functions.

Each subcommand has an `_add_<name>(subparsers)` that declares its arguments and a `_run_<name>(args)`
that calls the library. Library errors (`Speech2VidError`) print one line and exit 2; `--verbose`
shows the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys


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


COMMANDS = {
    "align": (_add_align, _run_align),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="speech2vid", description="Speech2Vid talking-face generation")
    parser.add_argument("--verbose", action="store_true", help="show tracebacks and TensorFlow logs")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (add, _) in COMMANDS.items():
        add(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not args.verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from keras_speech2vid.errors import Speech2VidError

    try:
        COMMANDS[args.command][1](args)
    except Speech2VidError as e:
        if args.verbose:
            raise
        print(f"speech2vid {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"speech2vid {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
