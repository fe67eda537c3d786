"""`ferlab export CHECKPOINT --onnx OUT.onnx [--int8 --calibration SOURCE] | --bundle OUT.pt`: package a trained
model for inference; `ferlab export MODEL.onnx --int8 --calibration SOURCE` quantises an existing export."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register", "run", "CALIBRATION_SIZE"]

CALIBRATION_SIZE = 512


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="export a checkpoint to ONNX (with a parity check, optionally int8) "
                                             "or a slim .pt")
    p.add_argument("checkpoint", help="checkpoint file (.pt) or run directory; or an fp32 .onnx export with --int8")
    p.add_argument("--onnx", default=None, help="write an ONNX file (uint8 faces in, probabilities out)")
    p.add_argument("--bundle", default=None, help="write an inference-only checkpoint (no optimiser state)")
    p.add_argument("--half", action="store_true", help="with --bundle: store weights as fp16 (half the size)")
    p.add_argument("--int8", action="store_true",
                   help="also write a static int8 (QDQ) model as OUT.int8.onnx beside the fp32 OUT.onnx")
    p.add_argument("--calibration", default=None, metavar="SOURCE",
                   help="with --int8: data source whose train split (else all faces) calibrates the int8 model")
    p.add_argument("--calibration-size", type=int, default=None, metavar="N",
                   help=f"with --int8: how many calibration faces, a seeded random sample (default {CALIBRATION_SIZE})")
    p.set_defaults(func=run)


def _check_flags(args: argparse.Namespace, is_onnx: bool) -> None:
    """Reject flag combinations that cannot work before anything is written."""
    from ferlab.errors import ConfigError

    if args.half and not args.bundle:
        raise ConfigError("--half only applies with --bundle (ONNX exports keep fp32 weights; use --int8 to shrink)")
    if args.int8 and not args.calibration:
        raise ConfigError("--int8 needs --calibration SOURCE (faces to calibrate on, e.g. the training data)")
    if not args.int8 and (args.calibration or args.calibration_size is not None):
        raise ConfigError("--calibration and --calibration-size only apply with --int8")
    if args.calibration_size is not None and args.calibration_size < 1:
        raise ConfigError(f"--calibration-size must be at least 1, got {args.calibration_size}")
    if is_onnx:
        if args.onnx or args.bundle:
            raise ConfigError(f"{args.checkpoint} is already an ONNX export: only --int8 applies to it")
        if not args.int8:
            raise ConfigError(f"nothing to do with {args.checkpoint}: give --int8 --calibration SOURCE")
    elif not args.onnx and not args.bundle:
        raise ConfigError("nothing to do: give --onnx OUT.onnx and/or --bundle OUT.pt")
    elif args.int8 and not args.onnx:
        raise ConfigError("--int8 quantises the ONNX export: give --onnx OUT.onnx too")
    if args.onnx and not args.onnx.lower().endswith(".onnx"):  # ferlab (and others) tell an ONNX file by its suffix
        raise ConfigError(f"--onnx {args.onnx}: the file name must end in .onnx, or it cannot be loaded back")
    if args.onnx and args.int8 and args.onnx.lower().endswith(".int8.onnx"):
        raise ConfigError(f"--onnx {args.onnx} is the int8 twin's name: give the fp32 name (OUT.onnx); --int8 writes "
                          "OUT.int8.onnx beside it")
    _check_outputs(args, is_onnx)


def _check_outputs(args: argparse.Namespace, is_onnx: bool) -> None:
    """Every file export writes is distinct from the others and from the checkpoint it reads: --onnx and
    --bundle on one path left only the ONNX file, and --bundle onto the run's best.pt replaced its weights."""
    from ferlab.errors import ConfigError
    from ferlab.export.quantize import int8_path
    from ferlab.train.checkpoint import checkpoint_file

    source = checkpoint_file(args.checkpoint)  # for a run directory, the file export reads
    outputs = {"--bundle": args.bundle, "--onnx": args.onnx}
    if args.int8:
        outputs["the int8 model"] = str(int8_path(args.checkpoint if is_onnx else args.onnx))
    named = {flag: Path(path).expanduser().resolve() for flag, path in outputs.items() if path}
    source = source.expanduser().resolve()
    run_files = {source.with_name("best.pt"), source.with_name("last.pt")}  # last.pt: what --resume needs
    for flag, path in named.items():
        if path == source:
            raise ConfigError(f"{flag} {outputs[flag]} is the checkpoint being exported; write to another file")
        if path in run_files and path.is_file():
            raise ConfigError(f"{flag} {outputs[flag]} would replace the run's {path.name} beside the checkpoint "
                              "being exported; write to another file")
    flags = list(named)
    for i, first in enumerate(flags):
        for second in flags[i + 1:]:
            if named[first] == named[second]:
                raise ConfigError(f"{first} and {second} name the same file {outputs[first]}; give each its own")


def _quantize(fp32: Path, args: argparse.Namespace) -> None:
    """Calibrate on a seeded sample of the source, write OUT.int8.onnx and print its size and agreement."""
    from ferlab.data import load
    from ferlab.export.quantize import calibration_split, export_metadata, int8_path, quantize_onnx

    size = int(export_metadata(fp32)["image_size"])
    ds = load(args.calibration, image_size=size, progress=True)
    calibration, check, pool = calibration_split(ds.images, ds.splits, args.calibration_size or CALIBRATION_SIZE)
    result = quantize_onnx(fp32, int8_path(fp32), calibration, check_faces=check)
    print(f"int8: {result.path} ({result.bytes / 1e6:.2f} MB, {result.bytes / result.fp32_bytes:.0%} of fp32); "
          f"calibrated on {result.num_calibration} faces ({pool}); vs fp32 on {result.num_checked} other faces: "
          f"top-1 agreement {result.agreement:.2%}, max abs probability difference {result.max_abs_diff:.3f}")


def run(args: argparse.Namespace) -> int:
    is_onnx = Path(args.checkpoint).suffix.lower() == ".onnx"
    _check_flags(args, is_onnx)
    if args.int8:
        from ferlab.data.sources import find_reader

        find_reader(Path(args.calibration).expanduser().resolve())  # a bad source fails before anything is written
    if args.bundle:
        from ferlab.export.bundle import slim_checkpoint

        path = slim_checkpoint(args.checkpoint, args.bundle, half=args.half)
        print(f"bundle: {path} ({path.stat().st_size / 1e6:.2f} MB{', fp16 weights' if args.half else ''})")
    if args.onnx:
        from ferlab.export.onnx import PARITY_TOLERANCE, export_onnx

        result = export_onnx(args.checkpoint, args.onnx)
        print(f"onnx: {result.path} ({result.bytes / 1e6:.2f} MB); parity vs PyTorch on {result.num_checked} faces: "
              f"max abs difference {result.max_abs_diff:.2e} (< {PARITY_TOLERANCE:.0e})")
    if args.int8:
        _quantize(Path(args.checkpoint) if is_onnx else Path(args.onnx), args)
    return 0
