"""`ferlab export CHECKPOINT --onnx OUT.onnx | --bundle OUT.pt`: package a trained model for inference."""

from __future__ import annotations

import argparse

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="export a checkpoint to ONNX (with a parity check) or a slim .pt")
    p.add_argument("checkpoint", help="checkpoint file (.pt) or run directory")
    p.add_argument("--onnx", default=None, help="write an ONNX file (uint8 faces in, probabilities out)")
    p.add_argument("--bundle", default=None, help="write an inference-only checkpoint (no optimiser state)")
    p.add_argument("--half", action="store_true", help="with --bundle: store weights as fp16 (half the size)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ferlab.errors import ConfigError

    if not args.onnx and not args.bundle:
        raise ConfigError("nothing to do: give --onnx OUT.onnx and/or --bundle OUT.pt")
    if args.bundle:
        from ferlab.export.bundle import slim_checkpoint

        path = slim_checkpoint(args.checkpoint, args.bundle, half=args.half)
        print(f"bundle: {path} ({path.stat().st_size / 1e6:.2f} MB{', fp16 weights' if args.half else ''})")
    if args.onnx:
        from ferlab.export.onnx import PARITY_TOLERANCE, export_onnx

        result = export_onnx(args.checkpoint, args.onnx)
        print(f"onnx: {result.path} ({result.bytes / 1e6:.2f} MB); parity vs PyTorch on {result.num_checked} faces: "
              f"max abs difference {result.max_abs_diff:.2e} (< {PARITY_TOLERANCE:.0e})")
    return 0
