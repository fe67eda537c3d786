"""Cost of evaluation on this CPU: end-to-end `evaluate()` images/s and single-image latency per TTA mode.

Usage: `python benchmarks/bench_eval.py [--models simple_cnn,mini_xception] [--images 1024]`.
Untrained weights (speed does not depend on them) on synthetic faces; the same `measure_speed` as the leaderboard
(throughput at batch 256, median batch-1 latency with one torch thread).
"""

from __future__ import annotations

import argparse
import time

from ferlab.data.synthetic import synthetic_faces
from ferlab.evaluate.report import evaluate
from ferlab.evaluate.speed import measure_speed
from ferlab.labels import EMOTIONS
from ferlab.models import create_model
from ferlab.train.checkpoint import TorchClassifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="simple_cnn,mini_xception")
    parser.add_argument("--images", type=int, default=1024)
    args = parser.parse_args()
    faces = synthetic_faces(n_per_class=max(args.images // len(EMOTIONS), 1), test_fraction=0.0)
    print(f"| model | tta | evaluate() img/s ({len(faces)} faces) | predict img/s (batch 256) | latency ms (batch 1) |")
    print("|---|---|---|---|---|")
    for name in args.models.split(","):
        model = create_model(name, num_classes=len(EMOTIONS))
        clf = TorchClassifier(model, EMOTIONS, name, 48, {"path": f"untrained:{name}"})
        for tta in ("none", "flip", "tencrop"):
            start = time.perf_counter()
            evaluate(clf, faces, tta=tta, train_hashes=faces.hashes[:10])
            eval_rate = len(faces) / (time.perf_counter() - start)
            speed = measure_speed(clf, tta=tta, batches=2, latency_runs=20)
            print(f"| {name} | {tta} | {eval_rate:,.0f} | {speed['images_per_second']:,.0f} | "
                  f"{speed['latency_ms']:.2f} |", flush=True)


if __name__ == "__main__":
    from _cli import run

    run(main)
