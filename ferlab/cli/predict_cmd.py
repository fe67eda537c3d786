"""`ferlab predict PATH...`: emotions of every face in images, videos, folders (recursive) or globs; JSON lines."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from ferlab.cli.options import add_ensemble_option
from ferlab.evaluate.suite import TTA_NAMES

__all__ = ["register", "add_video_flags", "video_config"]


def _without_path(error: str | None, path: str) -> str | None:
    """An error message without the leading `path: ` the line already starts with."""
    return error.removeprefix(f"{path}: ") if error else error


def _annotated(path: str, faces: list, out: Path, stem: str) -> None:  # noqa: ANN001
    from PIL import Image

    from ferlab.io import atomic_path
    from ferlab.predict.draw import annotate
    from ferlab.predict.images import load_image

    target = out / f"{stem}.annotated.png"
    with atomic_path(target, suffix=".png") as tmp:
        Image.fromarray(annotate(load_image(path), faces)).save(tmp, format="PNG")


def add_video_flags(p: argparse.ArgumentParser) -> None:
    """--smooth and --detect-every (shared by `ferlab predict` for videos and `ferlab webcam`)."""
    p.add_argument("--smooth", type=float, default=None, metavar="ALPHA",
                   help="video/webcam: EMA weight of the newest frame's probabilities per tracked face, 0 or 1 = off "
                        "(default: 0.3)")
    p.add_argument("--detect-every", type=int, default=None, metavar="N",
                   help="video/webcam: run the face detector every N frames and track faces in between (default: 3)")


def add_detector_flags(p: argparse.ArgumentParser) -> None:
    """--min-face and --detector-precision (shared by `ferlab predict` and `ferlab webcam`)."""
    p.add_argument("--min-face", type=int, default=0, metavar="PX",
                   help="smallest face (source px) to look for: the detector then works at the lowest resolution "
                        "that still finds it (faster on large images; smaller faces may be missed). "
                        "0 = off, detect at up to 640 px (default)")
    p.add_argument("--detector-precision", choices=("int8", "fp32"), default="int8",
                   help="CenterFace precision: int8 (default; quantised once into the ferlab cache) or fp32")


def detector_config(args: argparse.Namespace):  # noqa: ANN201 - DetectorConfig, imported lazily
    """The DetectorConfig of the detector flags given on the command line."""
    from ferlab.predict.detectors import DetectorConfig

    return DetectorConfig(min_face=args.min_face, precision=args.detector_precision)


def video_config(args: argparse.Namespace, **overrides: object):  # noqa: ANN201 - VideoConfig, imported lazily
    """The VideoConfig of the video flags given on the command line (defaults for the rest)."""
    from ferlab.predict.video import VideoConfig

    given = {"smooth": args.smooth, "detect_every": args.detect_every}
    return VideoConfig(**{k: v for k, v in given.items() if v is not None}, **overrides)


def _video(pred, path: str, out: Path | None, cfg, detect: bool, stem: str) -> dict:  # noqa: ANN001
    """One video -> its JSON summary (`error` set instead of raising for bad input)."""
    from ferlab.errors import FerlabError
    from ferlab.predict.video import VideoResult, process_video

    try:
        result = process_video(pred, path, out, cfg, detect=detect, stem=stem)
    except FerlabError as err:
        return VideoResult.failed(path, str(err))
    return result.to_dict(None if result.tracks else f"{path}: no face found in any frame")


def _images(pred, paths: Iterator[str], detect: bool) -> Iterator[tuple[str, list, str | None]]:  # noqa: ANN001
    """(path, predictions, error) per image, crops of many images classified together."""
    for path, result in pred.predict_batch(paths, detect=detect):
        if isinstance(result, Exception):
            yield path, [], str(result)
        else:
            yield path, list(result), None if result else f"{path}: no face found"


def _predictor(args: argparse.Namespace, kw: dict):  # noqa: ANN202 - Predictor, imported lazily
    """--model / --ensemble -> the Predictor (the bundled model with its shipped TTA by default)."""
    from ferlab.predict import Predictor
    from ferlab.predict.bundled import model_sources, shipped_tta
    from ferlab.predict.ensemble import load_ensemble

    if args.tta is not None:
        kw = {**kw, "tta": args.tta}
    if args.ensemble is None:
        return Predictor.from_checkpoint(args.model, **kw) if args.model else Predictor.from_pretrained(**kw)
    sources = model_sources(args.model, args.ensemble)
    return Predictor(load_ensemble(sources), **{"tta": shipped_tta(sources[0]), **kw})


def _looks_like_model(value: str) -> bool:
    """A model file (.pt/.onnx/.json ensemble) or a run directory: what --ensemble takes, unlike images."""
    from ferlab.train.checkpoint import FILE_BACKENDS

    path = Path(value)
    if path.is_dir():  # a run directory: load_checkpoint takes its best.pt, else last.pt
        return (path / "best.pt").is_file() or (path / "last.pt").is_file()
    return path.suffix.lower() in (".pt", *FILE_BACKENDS)


def _inputs_after_ensemble(args: argparse.Namespace) -> None:
    """`predict --ensemble a.pt photo.jpg`: --ensemble takes any number of values, so it swallows the inputs
    that follow it; hand the trailing values that are not models back to the paths."""
    if args.paths or not args.ensemble:
        return
    split = len(args.ensemble)
    while split > 0 and not _looks_like_model(args.ensemble[split - 1]):
        split -= 1
    args.ensemble, args.paths = args.ensemble[:split], args.ensemble[split:]


def _check_outputs_spare_inputs(args: argparse.Namespace, inputs: list[str], stems: dict[str, str]) -> None:
    """No file predict writes may be one it reads: `--csv photo.jpg` replaced the photo, and `--out` onto the input
    folder overwrote an input named like another input's annotation (`a.annotated.png`)."""
    from ferlab.errors import ConfigError
    from ferlab.predict.video import is_video_path

    reading = {Path(p).resolve(): p for p in inputs}
    if args.csv and Path(args.csv).resolve() in reading:
        raise ConfigError(f"--csv {args.csv} is one of the inputs; write the CSV to another file")
    if not args.out:
        return
    for path in inputs:
        kinds = (".annotated.mp4", ".frames.csv", ".emotions.png") if is_video_path(path) else (".annotated.png",)
        for kind in kinds:
            target = (Path(args.out) / f"{stems[path]}{kind}").resolve()
            if target in reading:
                raise ConfigError(f"--out {args.out}: the output {target.name} of {path} would overwrite the input "
                                  f"{reading[target]}; choose another --out folder")


def _run(args: argparse.Namespace) -> int:
    import csv
    import itertools

    from ferlab.errors import ConfigError
    from ferlab.io import atomic_open
    from ferlab.predict.detectors import resolve_detector_name
    from ferlab.predict.inputs import list_inputs, output_stems, parse_shard, shard
    from ferlab.predict.video import is_video_path

    _inputs_after_ensemble(args)
    if not args.paths:
        raise ConfigError("predict needs at least one PATH (an image, video, folder or glob)")
    index, count = parse_shard(args.shard)
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    resolve_detector_name(args.detector)  # an unknown --detector is one line now, not one error per input
    inputs = list_inputs(args.paths)
    stems = output_stems(inputs)  # over the whole listing: shards writing to one --out never collide
    if index >= len(inputs):  # more job-array workers than inputs: this one has nothing to do, which is no failure
        print(f"ferlab: shard {args.shard} holds none of the {len(inputs)} inputs; nothing to do", file=sys.stderr)
        return 0
    _check_outputs_spare_inputs(args, inputs, stems)
    cfg = video_config(args)
    kw = {"detector": args.detector, "batch_size": args.batch_size, "detector_config": detector_config(args)}
    pred = _predictor(args, kw)
    out = Path(args.out) if args.out else None
    detect = not args.no_detect
    ok = 0
    with (atomic_open(args.csv, "w", newline="", encoding="utf-8") if args.csv else open(os.devnull, "w")) as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "face", "x", "y", "w", "h", "score", "label", *pred.classes, "error", "warning"])
        blank = [""] * len(pred.classes)
        for videos, group in itertools.groupby(shard(iter(inputs), index, count), key=is_video_path):
            if videos:
                for path in group:
                    summary = _video(pred, path, out, cfg, detect, stems[path])
                    error = summary["error"]
                    ok += error is None
                    for t in summary["tracks"]:  # one row per track: its dominant emotion and mean probabilities
                        writer.writerow([path, t["id"], "", "", "", "", "", t["dominant"],
                                         *(f"{t['mean_probs'][c]:.4f}" for c in pred.classes), "", ""])
                    if error:
                        writer.writerow([path, "", "", "", "", "", "", "", *blank, error, ""])
                    if args.json:
                        print(json.dumps(summary), flush=True)
                    else:
                        tracks = ", ".join(f"#{t['id']} {t['dominant']}" for t in summary["tracks"])
                        done = f"{summary['frames']} frames, {len(summary['tracks'])} tracks: {tracks}"
                        print(f"{path}: " + (_without_path(error, path) or done))
                continue
            for path, found, error in _images(pred, group, detect):
                faces = [f.to_dict() for f in found]
                ok += error is None
                for k, f in enumerate(faces):
                    writer.writerow([path, k, *f["box"], f"{f['score']:.4f}", f["label"],
                                     *(f"{f['probs'][c]:.4f}" for c in pred.classes), "", f.get("warning") or ""])
                if error:
                    writer.writerow([path, "", "", "", "", "", "", "", *blank, error, ""])
                if out is not None and found:
                    _annotated(path, found, out, stems[path])
                if args.json:
                    print(json.dumps({"path": path, "faces": faces, "error": error}), flush=True)
                else:
                    found_text = ", ".join(f"{f['label']} {f['probs'][f['label']]:.2f}" for f in faces)
                    print(f"{path}: " + (_without_path(error, path) or found_text))
    if not ok:
        print("ferlab: error: no input could be processed", file=sys.stderr)
        return 1
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("predict", help="emotions of the faces in images, videos, folders or globs")
    p.add_argument("paths", nargs="*", metavar="PATH", help="images, videos, folders or globs (at least one)")
    p.add_argument("--model", help="checkpoint (.pt) or export (.onnx); default: the bundled model")
    add_ensemble_option(p, "--model")
    p.add_argument("--json", action="store_true", help="one JSON line per input on stdout")
    p.add_argument("--no-detect", action="store_true", help="each input is already a face crop")
    p.add_argument("--detector", default="auto", help="auto | centerface | haar | none")
    add_detector_flags(p)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--tta", default=None, choices=TTA_NAMES,
                   help="test-time augmentation (default: the one a bundled model file ships with, else none; "
                        "as `ferlab eval`)")
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="process only shard I of N of the sorted inputs (for Slurm/Ray/Kubernetes job arrays)")
    p.add_argument("--csv", default=None, metavar="FILE", help="also write one CSV row per face (or error)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="write annotated images (boxes, labels, bars) here; for a video: <stem>.annotated.mp4, "
                        "<stem>.frames.csv and <stem>.emotions.png")
    add_video_flags(p)
    p.set_defaults(func=_run)
