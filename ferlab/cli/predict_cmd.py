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


def parse_shard(text: str | None) -> tuple[int, int]:
    """`i/n` (1-based) -> (i - 1, n); None -> the whole input (0, 1)."""
    from ferlab.errors import ConfigError

    if text is None:
        return 0, 1
    index, _, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        raise ConfigError(f"--shard expects i/n such as 2/8, got '{text}'") from None
    if not 1 <= i <= n:
        raise ConfigError(f"--shard {text}: i must be between 1 and n")
    return i - 1, n


def shard(items: Iterator[str], index: int, count: int) -> Iterator[str]:
    """Every `count`-th input starting at `index`: shards of one sorted listing are disjoint and cover it."""
    return (item for k, item in enumerate(items) if k % count == index)


def _annotated(path: str, faces: list, out: Path) -> None:  # noqa: ANN001
    from PIL import Image

    from ferlab.io import atomic_path
    from ferlab.predict.draw import annotate
    from ferlab.predict.images import load_image

    target = out / f"{Path(path).stem}.annotated.png"
    with atomic_path(target, suffix=".png") as tmp:
        Image.fromarray(annotate(load_image(path), faces)).save(tmp, format="PNG")


def _run(args: argparse.Namespace) -> int:
    import csv

    from ferlab.io import atomic_open
    from ferlab.predict import Predictor

    index, count = parse_shard(args.shard)
    kw = {"detector": args.detector, "batch_size": args.batch_size}
    pred = Predictor.from_checkpoint(args.model, **kw) if args.model else Predictor.from_pretrained(**kw)
    out = Path(args.out) if args.out else None
    ok = 0
    with (atomic_open(args.csv, "w", newline="", encoding="utf-8") if args.csv else open(os.devnull, "w")) as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "face", "x", "y", "w", "h", "score", "label", *pred.classes, "error"])
        for path, result in pred.predict_batch(shard(iter_inputs(args.paths), index, count),
                                               detect=not args.no_detect):
            found = [] if isinstance(result, Exception) else list(result)
            faces = [f.to_dict() for f in found]
            error = str(result) if isinstance(result, Exception) else (None if faces else f"{path}: no face found")
            ok += error is None
            for k, f in enumerate(faces):
                writer.writerow([path, k, *f["box"], f"{f['score']:.4f}", f["label"],
                                 *(f"{f['probs'][c]:.4f}" for c in pred.classes), ""])
            if error:
                writer.writerow([path, "", "", "", "", "", "", "", *[""] * len(pred.classes), error])
            if out is not None and found:
                _annotated(path, found, out)
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
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="process only shard I of N of the sorted inputs (for Slurm/Ray/Kubernetes job arrays)")
    p.add_argument("--csv", default=None, metavar="FILE", help="also write one CSV row per face (or error)")
    p.add_argument("--out", default=None, metavar="DIR", help="write annotated images (boxes, labels, bars) here")
    p.set_defaults(func=_run)
