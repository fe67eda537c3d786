"""`ferlab explain IMAGE...`: heat-map overlays and facial-region shares for every face of each image."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("explain", help="show which facial regions drive each face's predicted emotion",
                              description="Heat-map overlays (PNG) and region shares (brows, eyes, nose, mouth, "
                                          "jaw/cheeks, other) per face, for the predicted class or --target.")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--model", default=None, help="checkpoint (.pt or run dir); default: the bundled model")
    p.add_argument("--no-detect", action="store_true", help="treat each image as an already cropped face")
    p.add_argument("--detector", default="auto", help="face detector: auto, centerface, haar")
    p.add_argument("--method", default="gradcam", help="gradcam, gradcam++, scorecam, occlusion or ig")
    p.add_argument("--target", default=None, help="explain this class instead of the predicted one ('why not sad?')")
    p.add_argument("--out", default=None, help="write <image>_face<k>_<method>.png overlays here")
    p.add_argument("--json", action="store_true", help="print one JSON line per image")
    p.set_defaults(func=run)


def _predictor(model: str | None):  # noqa: ANN202
    from ferlab.predict.predictor import Predictor

    return Predictor.from_checkpoint(model) if model else Predictor.from_pretrained()


def _round(d: dict[str, float]) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in d.items()}


def run(args: argparse.Namespace) -> int:
    from ferlab.errors import FerlabError
    from ferlab.explain.api import explain_image, overlay_png, resolve_target
    from ferlab.explain.methods import get_method
    from ferlab.io import atomic_write_bytes

    get_method(args.method)  # unknown method: one-line error before any model loads
    predictor = _predictor(args.model)
    resolve_target(tuple(predictor.classes), args.target)  # unknown target class: one-line error
    out = Path(args.out) if args.out else None
    done = 0
    for path in args.images:
        record: dict = {"path": path, "faces": [], "error": None}
        try:
            explanations = explain_image(predictor, path, method=args.method, target=args.target,
                                         detect=not args.no_detect, detector=args.detector)
        except FerlabError as err:
            record["error"] = str(err)
            explanations = []
        for k, ex in enumerate(explanations):
            face = {"box": list(ex.box) if ex.box else None, "predicted": ex.predicted,
                    "probs": _round(ex.probs), "target": ex.target, "regions": _round(ex.regions),
                    "regions_per_area": _round(ex.regions_per_area)}
            if out is not None and ex.face is not None:
                png = out / f"{Path(path).stem}_face{k}_{args.method}.png"
                atomic_write_bytes(png, overlay_png(ex.face, ex.heatmap))
                face["overlay"] = str(png)
            record["faces"].append(face)
        done += record["error"] is None
        if args.json:
            print(json.dumps(record), flush=True)
        elif record["error"]:
            print(f"{path}: error: {record['error']}", file=sys.stderr)
        else:
            for k, face in enumerate(record["faces"]):
                top = sorted(face["regions"].items(), key=lambda kv: -kv[1])[:3]
                print(f"{path} face {k}: {face['predicted']} (explaining {face['target']}); regions: "
                      + ", ".join(f"{r} {s:.0%}" for r, s in top))
    return 0 if done else 1
