"""`ferlab eval CHECKPOINT --data SOURCE`: metrics, pictures and reports of one checkpoint on one split."""

from __future__ import annotations

import argparse
import json
import sys

from ferlab.cli.options import add_ensemble_option
from ferlab.evaluate.suite import TTA_NAMES

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="evaluate a checkpoint on a labelled split",
                              description="Accuracy, macro-F1, per-class report, confusion matrices, calibration, "
                                          "leakage-free accuracy and the most confident mistakes.")
    p.add_argument("checkpoint", nargs="?", default=None,
                   help="checkpoint file (.pt/.onnx) or run directory (default: the bundled model)")
    p.add_argument("--data", required=True, help="data source: FER2013 zip/folder/CSV or a class-per-folder dataset")
    p.add_argument("--split", default="test",
                   help="split to evaluate: test (default), private_test, val, train, or all (a whole foreign dataset)")
    p.add_argument("--tta", default=None, choices=TTA_NAMES,
                   help="test-time augmentation (default: the one a bundled model ships with, else none)")
    p.add_argument("--val-from", default=None, metavar="RUN",
                   help="with --split val: score on the validation carve of another run (its directory or checkpoint) "
                        "instead of the model's own, to compare models on images none of them trained on (refused if "
                        "one did)")
    add_ensemble_option(p, "CHECKPOINT")
    p.add_argument("--against", default=None, metavar="MODEL",
                   help="also score this model (file, run directory or ensemble file) on the same images and print "
                        "the accuracy difference with its 95%% interval and McNemar's exact test (with --split val: "
                        "on the first model's carve, or --val-from's, refused if MODEL trained on it)")
    p.add_argument("--against-tta", default=None, choices=TTA_NAMES,
                   help="test-time augmentation of --against (default: the same as --tta)")
    p.add_argument("--batch-size", type=int, default=256, help="inference batch size (default: 256)")
    p.add_argument("--limit", type=int, default=None, help="evaluate at most N evenly spaced images of the split")
    p.add_argument("--out", default=None, help="write report.json/.md/.html and PNG pictures into this folder")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)


def _summary(report) -> str:  # noqa: ANN001
    lf = report.leakage_free_accuracy
    ci = report.accuracy_ci95
    lines = [f"{report.model} on {report.split} ({report.num_images} images, tta {report.tta})",
             f"  accuracy {report.accuracy:.4f}" + (f" (95% CI {ci[0]:.4f}-{ci[1]:.4f})" if ci else "")
             + f"   macro-F1 {report.macro_f1:.4f}   log loss {report.log_loss:.4f}   ECE {report.ece:.4f}",
             f"  leakage-free accuracy {lf:.4f} on {report.leakage_free_num_images} images" if lf is not None
             else "  leakage-free accuracy: n/a"]
    lines += [f"  {c:>10}  P {s['precision']:.3f}  R {s['recall']:.3f}  F1 {s['f1']:.3f}  n {s['support']}"
              for c, s in report.per_class.items()]
    if report.dropped_classes:
        lines.append("  dropped data classes: " + ", ".join(f"{c} ({n})" for c, n in report.dropped_classes.items()))
    if report.model_only_classes:
        lines.append("  model-only classes: " + ", ".join(report.model_only_classes))
    return "\n".join(lines)


def _paired(args: argparse.Namespace, sources: list, tta: str, report):  # noqa: ANN001, ANN202
    """--against: the other model scored on the images `report` covers (on validation: the same carve, checked)."""
    from ferlab.evaluate.paired import compare_paired
    from ferlab.evaluate.run import evaluate_checkpoint

    val_from = (args.val_from or str(sources[0])) if args.split == "val" else None
    other = evaluate_checkpoint([args.against], args.data, split=args.split, tta=args.against_tta or tta,
                                batch_size=args.batch_size, limit=args.limit, progress=True, val_from=val_from)
    return compare_paired(report, other)


def run(args: argparse.Namespace) -> int:
    from ferlab.errors import ConfigError
    from ferlab.evaluate.run import evaluate_checkpoint

    if args.batch_size < 1 or (args.limit is not None and args.limit < 1):
        raise ConfigError("--batch-size and --limit must be >= 1")
    if args.against_tta and not args.against:
        raise ConfigError("--against-tta needs --against MODEL")
    from ferlab.predict.bundled import model_sources, shipped_tta

    sources = model_sources(args.checkpoint, args.ensemble)  # by default the file `ferlab predict` runs
    tta = args.tta or shipped_tta(sources[0])
    report = evaluate_checkpoint(sources, args.data, split=args.split, tta=tta,
                                 batch_size=args.batch_size, limit=args.limit,
                                 out=None if args.against else args.out, progress=True, val_from=args.val_from)
    paired = _paired(args, sources, tta, report) if args.against else None
    if paired is not None and args.out:  # the report files carry the comparison too
        from ferlab.evaluate.writers import write_report

        write_report(report, args.out, paired=paired)
    if args.json:
        print(json.dumps(report.to_dict() | ({"paired": paired.to_dict()} if paired else {})))
    else:
        print(_summary(report))
        if paired:
            print(paired.summary())
        if args.out:
            print(f"report written to {args.out}/report.html")
    if args.out and args.json:
        print(f"ferlab: report written to {args.out}", file=sys.stderr)
    return 0
