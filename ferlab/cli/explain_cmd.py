"""`ferlab explain IMAGE...`: heat-map overlays and facial-region shares for every face of each image (plus, with
`--features`, first-layer filters and activation maps); `ferlab explain --data SOURCE`: the dataset-level report."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("explain", help="show which facial regions drive each face's predicted emotion",
                              description="Heat-map overlays (PNG) and region shares (brows, eyes, nose, mouth, "
                                          "jaw/cheeks, other) per face, for the predicted class or --target. "
                                          "With --data: the dataset report (mean heat maps per emotion, region x "
                                          "emotion table, faithfulness and sanity checks, report.html).")
    p.add_argument("images", nargs="*",
                   help="image files, folders (walked recursively) or globs (or use --data for a whole split)")
    p.add_argument("--model", default=None, help="checkpoint (.pt or run dir); default: the bundled model")
    p.add_argument("--no-detect", action="store_true", help="treat each image as an already cropped face")
    p.add_argument("--detector", default="auto", help="face detector: auto, centerface, haar")
    p.add_argument("--method", default="gradcam", help="gradcam, gradcam++, scorecam, occlusion or ig")
    p.add_argument("--target", default=None, help="explain this class instead of the predicted one ('why not sad?')")
    p.add_argument("--out", default=None, help="write <image>_face<k>_<method>.png overlays here "
                                               "(with --data: the report folder)")
    p.add_argument("--json", action="store_true", help="print one JSON line per image (with --data: the summary)")
    p.add_argument("--features", action="store_true",
                   help="also write <image>.filters.png (first-layer filters) and <image>.activations.png "
                        "(per-layer activation maps of the first face) into --out")
    p.add_argument("--layers", default=None, help="with --features: comma-separated layer names for the activation "
                                                  "maps (default: first conv and each stage)")
    d = p.add_argument_group("dataset report (--data)")
    d.add_argument("--data", default=None, help="explain a labelled split of this data source instead of images")
    d.add_argument("--split", default="test", help="split to explain: test (default), private_test, val, train, all")
    d.add_argument("--limit", type=int, default=None, help="explain at most N faces (stratified, deterministic)")
    d.add_argument("--methods", default=None,
                   help="comma-separated methods for the trust checks, besides --method (e.g. gradcam,occlusion,ig)")
    d.add_argument("--faithfulness-samples", type=int, default=200,
                   help="faces (stratified) for the faithfulness and sanity checks; 0 skips them (default: 200)")
    d.add_argument("--batch-size", type=int, default=64, help="attribution batch size (default: 64)")
    p.set_defaults(func=run)


def _predictor(model: str | None):  # noqa: ANN202
    from ferlab.predict.predictor import Predictor

    return Predictor.from_checkpoint(model) if model else Predictor.from_pretrained(backend="torch")


def _round(d: dict[str, float]) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in d.items()}


_DATASET_ONLY = (("limit", None), ("methods", None), ("faithfulness_samples", 200), ("batch_size", 64),
                 ("split", "test"))


def _check_mode(args: argparse.Namespace) -> None:
    """IMAGE files and --data are exclusive; flags of one mode are refused in the other (one-line errors)."""
    from ferlab.errors import ConfigError

    if args.data and args.images:
        raise ConfigError("give IMAGE files or --data SOURCE, not both")
    if not args.data and not args.images:
        raise ConfigError("nothing to explain: give IMAGE files, or --data SOURCE for the dataset report")
    if args.data:
        if not args.out:
            raise ConfigError("--data needs --out DIR (where the report is written)")
        if args.features or args.layers:
            raise ConfigError("--features works on IMAGE files, not with --data")
    else:
        given = [f"--{k.replace('_', '-')}" for k, default in _DATASET_ONLY if getattr(args, k) != default]
        if given:
            raise ConfigError(f"{', '.join(given)}: only for the dataset report (--data SOURCE)")
        if (args.features or args.layers) and not args.out:
            raise ConfigError("--features needs --out DIR (where the PNGs are written)")


def run(args: argparse.Namespace) -> int:
    from ferlab.explain.methods import get_method

    get_method(args.method)  # unknown method: one-line error before any model loads
    _check_mode(args)
    if args.out:
        from ferlab.errors import ConfigError
        from ferlab.io import blocked_folder_message

        if blocked := blocked_folder_message(Path(args.out)):  # now, not after every image is explained
            raise ConfigError(blocked)
    return _run_dataset(args) if args.data else _run_images(args)


def _run_dataset(args: argparse.Namespace) -> int:
    from ferlab.explain.dataset_report import explain_source

    result = explain_source(args.model, args.data, split=args.split, out=args.out, progress=True,
                            method=args.method, methods=args.methods, target=args.target, limit=args.limit,
                            faithfulness_samples=args.faithfulness_samples, batch_size=args.batch_size)
    if args.json:
        from ferlab.evaluate.report import json_safe

        print(json.dumps(json_safe(result.summary())))
        print(f"ferlab: report written to {args.out}/report.html", file=sys.stderr)
        return 0
    print(f"{result.model} on {result.split}: {result.n_images} faces explained with {result.method}, "
          f"accuracy {result.accuracy:.4f}")
    for emotion, shares in result.region_table("correct").items():
        top = sorted(shares.items(), key=lambda kv: -kv[1])[:3] if shares else []
        print(f"  {emotion:>10}: " + (", ".join(f"{r} {v:.0%}" for r, v in top) if top else "no correct prediction"))
    for t in result.trust:
        faith = "better than random" if t.faithfulness["better_than_random"] else "FLAGGED: no better than random"
        sanity = "passed" if t.sanity["passed"] else "FLAGGED: ignores the model's weights"
        print(f"  {t.method}: faithfulness {faith} (p={t.faithfulness['p_value']:.2g}); sanity {sanity} "
              f"(rank correlation {t.sanity['rank_correlation']:.2f})")
    print(f"report written to {args.out}/report.html")
    return 0


def _run_images(args: argparse.Namespace) -> int:
    from ferlab.errors import FerlabError
    from ferlab.explain.api import explain_image, overlay_png, require_torch_model, resolve_target
    from ferlab.io import atomic_write_bytes
    from ferlab.predict.detectors import resolve_detector_name
    from ferlab.predict.inputs import list_inputs, output_stems

    images = list_inputs(args.images, images_only=True)
    if not args.no_detect:
        resolve_detector_name(args.detector)  # an unknown detector: one line now, not one error per image
    predictor = _predictor(args.model)
    torch_net = require_torch_model(predictor.classifier)  # an ONNX or classical model: one line, once
    resolve_target(tuple(predictor.classes), args.target)  # unknown target class: one-line error
    layers = [name.strip() for name in args.layers.split(",") if name.strip()] if args.layers else None
    network = torch_net if args.features else None
    out = Path(args.out) if args.out else None
    done = 0
    stems = output_stems(images)  # a/x.png and b/x.png must not overwrite each other
    for path in images:
        record: dict = {"path": path, "faces": [], "error": None}
        stem = stems[path]
        try:
            explanations = explain_image(predictor, path, method=args.method, target=args.target,
                                         detect=not args.no_detect, detector=args.detector)
        except FerlabError as err:
            record["error"] = str(err)
            explanations = []
        for k, ex in enumerate(explanations):
            # `label` is the name predict and the REST API use; `predicted` stays for existing readers.
            face = {"box": list(ex.box) if ex.box else None, "label": ex.predicted, "predicted": ex.predicted,
                    "probs": _round(ex.probs), "target": ex.target, "regions": _round(ex.regions),
                    "regions_per_area": _round(ex.regions_per_area)}
            if out is not None and ex.face is not None:
                png = out / f"{stem}_face{k}_{args.method}.png"
                atomic_write_bytes(png, overlay_png(ex.face, ex.heatmap))
                face["overlay"] = str(png)
            record["faces"].append(face)
        if network is not None and explanations and explanations[0].face is not None:
            from ferlab.explain.features import write_features

            written = write_features(network, explanations[0].face, out, stem, layers=layers)
            record["features"] = {name: str(p) for name, p in written.items()}
        done += record["error"] is None
        if args.json:
            print(json.dumps(record), flush=True)
        elif record["error"]:  # on stdout as predict lists its inputs, the path said once; stderr keeps one line
            print(f"{path}: {record['error'].removeprefix(f'{path}: ')}")
        else:
            for k, face in enumerate(record["faces"]):
                top = sorted(face["regions"].items(), key=lambda kv: -kv[1])[:3]
                print(f"{path} face {k}: {face['predicted']} (explaining {face['target']}); regions: "
                      + ", ".join(f"{r} {s:.0%}" for r, s in top))
            if "features" in record:
                print(f"{path}: features written to " + ", ".join(record["features"].values()))
    if not done:
        print("ferlab: error: no image could be explained", file=sys.stderr)
        return 1
    return 0
