"""`ferlab models [PATTERN] [--json]`: the model zoo with parameters, MFLOPs and input size."""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "models", help="list the model zoo (params, MFLOPs at the input size, input size, family)",
        description="List registered models matching PATTERN (shell-style, e.g. 'vgg*'). MFLOPs are forward FLOPs "
                    "(2 x multiply-adds) of one image at the model's input size.")
    p.add_argument("pattern", nargs="?", default="*", metavar="PATTERN", help="shell-style name filter (default: *)")
    p.add_argument("--json", action="store_true", help="print a JSON list of model summaries on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ferlab.models.catalog import catalog, format_catalog

    rows = catalog(args.pattern, progress=sys.stderr.isatty())
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=2))
    else:
        sys.stdout.write(format_catalog(rows))
    return 0
