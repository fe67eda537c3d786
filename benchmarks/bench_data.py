"""Data-layer speed on the shared FER2013 zip: cold import (empty cache), warm (cached) load, full audit.

Targets on the 2-core machine: cold <= 20 s, warm <= 1 s, audit <= 60 s.
Run: .venv/bin/python benchmarks/bench_data.py [--source ../shared/data/fer2013.zip]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from ferlab.data import load
from ferlab.data.audit import audit

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013.zip"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(DEFAULT))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        ds = load(args.source, cache_dir=cache, progress=False)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        load(args.source, cache_dir=cache, progress=False)
        warm = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = audit(ds)
        audit_s = time.perf_counter() - t0
    rows = [("cold import", cold, 20.0), ("warm load", warm, 1.0), ("full audit", audit_s, 60.0)]
    print(f"source: {args.source} ({len(ds)} images, {len(report.exact_duplicate_groups)} duplicate groups)")
    print(f"| {'step':<12} | {'seconds':>8} | {'target':>7} | ok  |")
    print(f"|{'-' * 14}|{'-' * 10}|{'-' * 9}|-----|")
    for name, seconds, target in rows:
        print(f"| {name:<12} | {seconds:>8.2f} | {target:>7.0f} | {'yes' if seconds <= target else 'NO':<3} |")


if __name__ == "__main__":
    from _cli import run

    run(main)
