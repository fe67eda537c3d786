"""Inference cost of every registry model on this CPU: params, MFLOPs, img/s at batch 256, batch-1 latency.

Usage: `python benchmarks/bench_models.py [--models 'vgg*,mini_xception'] [--batch 256] [--repeats 3] [--plain]`.
Throughput uses channels_last (up to 3x faster here); `--plain` adds the contiguous-layout figure for comparison.
Best of `--repeats` timed runs after one warm-up (the machine is shared: the best run is the least disturbed).
Training img/s lives in the training benchmark.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import time

import torch
from tqdm import tqdm

from ferlab.models import create_model, list_models
from ferlab.models.profile import count_params, mflops


def best_seconds(fn, repeats: int) -> float:  # noqa: ANN001
    fn()  # warm-up: oneDNN primitive creation, allocator
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


@torch.inference_mode()
def bench(name: str, batch: int, repeats: int, plain: bool) -> dict:
    """One row: size, cost and speed of `name` with default options."""
    model = create_model(name).eval()
    cfg = model.ferlab_cfg
    row = {"model": name, "params_m": count_params(model) / 1e6, "mflops": mflops(model, cfg.input_size)}
    x = torch.randn(batch, *cfg.input_size)
    if plain:
        row["img_s_plain"] = batch / best_seconds(lambda: model(x), repeats)
    model = model.to(memory_format=torch.channels_last)
    xc = x.contiguous(memory_format=torch.channels_last)
    row["img_s"] = batch / best_seconds(lambda: model(xc), repeats)
    one = xc[:1]
    row["latency_ms"] = 1000 * best_seconds(lambda: model(one), max(repeats, 10))
    return row


def select(patterns: str) -> list[str]:
    names = list_models()
    chosen = [n for n in names if any(fnmatch.fnmatch(n, p.strip()) for p in patterns.split(","))]
    if not chosen:
        sys.exit(f"bench_models: no model matches {patterns!r}; known: {', '.join(names)}")
    return chosen


def table(rows: list[dict], batch: int) -> str:
    plain = "img_s_plain" in rows[0]
    head = ["model", "params", "MFLOPs", f"img/s b{batch} (cl)", "batch-1 ms"]
    head[4:4] = [f"img/s b{batch} (plain)"] if plain else []
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for r in rows:
        cells = [r["model"], f"{r['params_m']:.2f} M", f"{r['mflops']:,.0f}", f"{r['img_s']:,.0f}"]
        cells += [f"{r['img_s_plain']:,.0f}"] if plain else []
        cells.append(f"{r['latency_ms']:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="*", help="comma-separated shell patterns (default: all)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--plain", action="store_true", help="also time the contiguous (non channels_last) layout")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    ap.add_argument("--json", action="store_true", help="print rows as JSON instead of a Markdown table")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = select(args.models)
    rows = [bench(n, args.batch, args.repeats, args.plain) for n in tqdm(names, desc="models", file=sys.stderr)]
    print(json.dumps(rows, indent=2) if args.json else table(rows, args.batch))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", file=sys.stderr)


if __name__ == "__main__":
    from _cli import run

    run(main)
