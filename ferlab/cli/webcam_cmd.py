"""`ferlab webcam [--device N]`: a live window with boxes, emotions and probability bars, faces tracked and smoothed."""

from __future__ import annotations

import argparse
import sys

from ferlab.cli.predict_cmd import add_detector_flags, add_video_flags, detector_config, video_config

__all__ = ["register", "run"]


def _device(text: str) -> int | str:
    """A camera index ("0") or a device path / stream URL."""
    return int(text) if text.isdigit() else text


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("webcam", help="live emotions from a camera in a window (q or Esc quits)",
                              description="Open camera N and show every face with its tracked, smoothed emotion "
                                          "and probability bars. Needs a desktop session and OpenCV with GUI "
                                          "support (opencv-python).")
    p.add_argument("--device", type=_device, default=0, metavar="N",
                   help="camera index or device path (default: %(default)s)")
    p.add_argument("--model", default=None, metavar="CHECKPOINT|ONNX",
                   help="a .pt checkpoint or .onnx model (default: the bundled model)")
    p.add_argument("--detector", default="auto", help="auto | centerface | haar | none")
    add_detector_flags(p)
    add_video_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ferlab.predict import Predictor
    from ferlab.predict.webcam import CameraSource, WindowSink, check_display, run_live

    cfg = video_config(args, batch_frames=1, progress=False)
    check_display()  # fail fast, before the model loads
    kw = {"detector": args.detector, "detector_config": detector_config(args)}
    predictor = Predictor.from_checkpoint(args.model, **kw) if args.model else Predictor.from_pretrained(**kw)
    source = CameraSource(args.device)
    try:
        sink = WindowSink(f"ferlab webcam {args.device}")
    except BaseException:
        source.close()
        raise
    shown = run_live(predictor, source, sink, cfg)
    print(f"ferlab webcam: {shown} frames", file=sys.stderr)
    return 0
