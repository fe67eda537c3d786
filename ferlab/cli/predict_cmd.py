"""`ferlab predict PATH...`: emotions of every face in images, folders (recursive) or globs, one JSON line per input."""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["register", "iter_inputs"]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def iter_inputs(paths: list[str]) -> Iterator[str]:
    """Files named, folders walked recursively in sorted order (image suffixes only), globs expanded."""
    for raw in paths:
        if os.path.isdir(raw):
            for root, dirs, files in os.walk(raw):
                dirs.sort()
                yield from (os.path.join(root, f) for f in sorted(files) if Path(f).suffix.lower() in IMAGE_SUFFIXES)
        elif glob.has_magic(raw):
            yield from sorted(glob.glob(raw, recursive=True))
        else:
            yield raw


def _run(args: argparse.Namespace) -> int:
    from ferlab.predict import Predictor

    kw = {"detector": args.detector, "batch_size": args.batch_size}
    pred = Predictor.from_checkpoint(args.model, **kw) if args.model else Predictor.from_pretrained(**kw)
    ok = 0
    for path, result in pred.predict_batch(iter_inputs(args.paths), detect=not args.no_detect):
        faces = [] if isinstance(result, Exception) else [f.to_dict() for f in result]
        error = str(result) if isinstance(result, Exception) else (None if faces else f"{path}: no face found")
        ok += error is None
        if args.json:
            print(json.dumps({"path": path, "faces": faces, "error": error}), flush=True)
        else:
            print(f"{path}: " + (error or ", ".join(f"{f['label']} {f['probs'][f['label']]:.2f}" for f in faces)))
    if not ok:
        print("ferlab: error: no input could be processed", file=sys.stderr)
        return 1
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("predict", help="emotions of the faces in images, folders or globs")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--model", help="checkpoint (.pt) or export (.onnx); default: the bundled model")
    p.add_argument("--json", action="store_true", help="one JSON line per input on stdout")
    p.add_argument("--no-detect", action="store_true", help="each input is already a face crop")
    p.add_argument("--detector", default="auto", help="auto | centerface | haar | none")
    p.add_argument("--batch-size", type=int, default=256)
    p.set_defaults(func=_run)
