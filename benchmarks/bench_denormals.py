"""Subnormal floats and CPU inference speed: a trained net with and without flushing denormals to zero.

Trained nets without batch norm (simple_cnn, sequential_small) carry subnormal activations (|x| < 1.2e-38); x86
cores handle them in microcode, so inference slows down by an order of magnitude. ferlab turns on flush-to-zero
(`ferlab.train.checkpoint.flush_denormals`, ONNX Runtime's `session.set_denormal_as_zero`) and zeroes subnormal
weights at load; this prints what flushing buys on one thread, with the checkpoint's own weights.

Run: .venv/bin/python benchmarks/bench_denormals.py [--model runs/fer2013_zoo/simple_cnn-7-noaug/best.pt]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

DEFAULT_MODEL = "runs/fer2013_zoo/simple_cnn-7-noaug/best.pt"


def _subnormal_share(model: torch.nn.Module, x: torch.Tensor) -> float:
    """Share of the activations of every leaf module that are subnormal, on one batch (flushing off)."""
    counts = [0, 0]

    def hook(_m, _i, out) -> None:  # noqa: ANN001
        if isinstance(out, torch.Tensor) and out.is_floating_point():
            tiny = (out != 0) & (out.abs() < torch.finfo(out.dtype).tiny)
            counts[0] += int(tiny.sum())
            counts[1] += out.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    with torch.inference_mode():
        model(x)
    for h in handles:
        h.remove()
    return counts[0] / max(counts[1], 1)


def _rate(clf, faces: np.ndarray, repeats: int = 3) -> float:  # noqa: ANN001
    clf.predict_proba(faces[:32])
    start = time.perf_counter()
    for _ in range(repeats):
        clf.predict_proba(faces)
    return repeats * len(faces) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="a trained .pt checkpoint or run directory")
    parser.add_argument("--faces", type=int, default=256)
    args = parser.parse_args()
    path = Path(args.model)
    path = path / "best.pt" if path.is_dir() else path
    if not path.is_file():
        print(f"bench_denormals: no checkpoint at {path}; train one (e.g. the fer2013_zoo suite) or pass --model",
              file=sys.stderr)
        return 2
    from ferlab.models.preprocess import preprocess
    from ferlab.train.checkpoint import load_checkpoint, load_classifier

    clf = load_classifier(path)
    clf.torch_model.load_state_dict(load_checkpoint(path)["model_state"])  # undo the load-time zeroing of tiny weights
    faces = np.random.default_rng(0).integers(0, 256, (args.faces, clf.image_size, clf.image_size), dtype=np.uint8)
    torch.set_flush_denormal(False)
    x = preprocess(torch.from_numpy(faces[:64]), clf.torch_model.ferlab_cfg)
    share = _subnormal_share(clf.torch_model, x)
    rows = []
    # one thread: the flag is per thread, and torch's workers took ferlab's (on) when they started
    for threads in (1,):
        torch.set_num_threads(threads)
        rates = {}
        for flush in (False, True):
            torch.set_flush_denormal(flush)
            rates[flush] = _rate(clf, faces)
        probs_off = (torch.set_flush_denormal(False), clf.predict_proba(faces[:64]))[1]
        probs_on = (torch.set_flush_denormal(True), clf.predict_proba(faces[:64]))[1]
        rows.append((threads, rates[False], rates[True], float(np.abs(probs_off - probs_on).max())))
    print(f"{path}: {share:.2e} of module outputs subnormal (random faces, flushing off; subnormals inside a kernel, "
          "e.g. from subnormal weights, slow it without showing here)\n")
    print("| threads | img/s, denormals kept | img/s, flushed to zero | speed-up | max probability change |")
    print("|---|---|---|---|---|")
    for threads, off, on, diff in rows:
        print(f"| {threads} | {off:,.0f} | {on:,.0f} | {on / off:.1f}x | {diff:.1e} |")
    return 0


if __name__ == "__main__":
    from _cli import run

    run(main)
