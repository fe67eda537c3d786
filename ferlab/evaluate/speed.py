"""Inference speed of a classifier on this machine: throughput at a large batch and single-image latency."""

from __future__ import annotations

import time

import numpy as np

__all__ = ["measure_speed", "count_parameters", "model_mflops"]


def measure_speed(clf, *, batch_size: int = 256, batches: int = 3, latency_runs: int = 30,  # noqa: ANN001
                  tta: str = "none", seed: int = 0) -> dict[str, float]:
    """`images_per_second` over `batches` batches and median single-image `latency_ms`, after a warm-up.

    Measures `clf.predict_proba` end to end (preprocessing and the evaluation's TTA included) on random faces.
    """
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(batch_size, clf.image_size, clf.image_size), dtype=np.uint8)
    clf.predict_proba(images, batch_size=batch_size, tta=tta)  # warm-up (allocations, lazy init)
    start = time.perf_counter()
    for _ in range(batches):
        clf.predict_proba(images, batch_size=batch_size, tta=tta)
    throughput = batches * batch_size / (time.perf_counter() - start)
    one = images[:1]
    for _ in range(3):
        clf.predict_proba(one, batch_size=1, tta=tta)
    times = []
    for _ in range(latency_runs):
        t0 = time.perf_counter()
        clf.predict_proba(one, batch_size=1, tta=tta)
        times.append(time.perf_counter() - t0)
    return {"images_per_second": float(throughput), "latency_ms": float(np.median(times) * 1000.0)}


def count_parameters(clf) -> int | None:  # noqa: ANN001
    """Number of parameters of a torch classifier; None for backends without a torch model."""
    model = getattr(clf, "torch_model", None)
    return int(sum(p.numel() for p in model.parameters())) if model is not None else None


def model_mflops(clf) -> float | None:  # noqa: ANN001
    """Forward MFLOPs from `ferlab.models.profile` when that helper exists; None otherwise."""
    model = getattr(clf, "torch_model", None)
    if model is None:
        return None
    try:
        from ferlab.models import profile
    except ImportError:
        return None
    fn = getattr(profile, "mflops", None)
    return float(fn(model)) if callable(fn) else None
