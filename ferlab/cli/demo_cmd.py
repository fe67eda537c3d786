"""`ferlab demo`: the main job on bundled defaults (data audit, predict and explain on example photos, HTML)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo", help="run the main job on bundled defaults (what `make demo` runs)")
    p.add_argument("--out", default="demo-out", help="output folder (default demo-out)")
    p.add_argument("--per-class", type=int, default=30, help="synthetic faces per class (default 30)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ferlab.demo import run_demo

    run_demo(Path(args.out), per_class=args.per_class)
    return 0
