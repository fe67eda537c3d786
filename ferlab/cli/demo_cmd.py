"""`ferlab demo`: the main job on bundled defaults, as a list of small steps (grows with predict/explain)."""

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
    from ferlab.cli.data_cmd import run_audit, run_stats
    from ferlab.data.synthetic import synthetic_faces, write_image_folder

    out = Path(args.out)
    source = out / "synthetic_faces.zip"
    print(f"[1/3] generating {args.per_class} synthetic faces per class -> {source}")
    write_image_folder(synthetic_faces(n_per_class=args.per_class, seed=0), source, layout="fer2013")
    print("[2/3] importing and auditing")
    run_audit(argparse.Namespace(source=str(source), json=False, out=str(out / "audit"), exclude="duplicates,blank",
                                 image_size=48, no_near_duplicates=False))
    print("[3/3] statistics")
    run_stats(argparse.Namespace(source=str(source), out=str(out / "stats"), json=False, image_size=48))
    print(f"done: pictures and reports in {out}/")
    return 0
