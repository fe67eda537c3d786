"""Inference speed of a classifier on this machine: throughput at a large batch and single-image latency."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

__all__ = ["batched_throughput", "measure_speed", "count_parameters", "model_mflops"]


def batched_throughput(clf, *, tta: str = "none", faces: int = 2048, batch_size: int = 256,  # noqa: ANN001
                       seconds: float = 0.0, seed: int = 0) -> float:
    """Faces per second through `clf.predict_proba` (TTA included) on random uint8 faces: the median of passes
    over `faces` crops, repeated for at least `seconds` (0: one pass), after a one-batch warm-up."""
    rng = np.random.default_rng(seed)
    crops = rng.integers(0, 256, (faces, clf.image_size, clf.image_size), dtype=np.uint8)
    clf.predict_proba(crops[:batch_size], batch_size=batch_size, tta=tta)  # warm-up (allocations, lazy init)
    rates: list[float] = []
    start = time.perf_counter()
    while not rates or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        clf.predict_proba(crops, batch_size=batch_size, tta=tta)
        rates.append(faces / (time.perf_counter() - t0))
    return float(np.median(rates))


def measure_speed(clf, *, batch_size: int = 256, batches: int = 3, latency_runs: int = 30,  # noqa: ANN001
                  tta: str = "none", latency_threads: int | None = 1, seed: int = 0) -> dict[str, float]:
    """`images_per_second` over `batches` batches and median single-image `latency_ms`, after a warm-up.

    Measures `clf.predict_proba` end to end (preprocessing and the evaluation's TTA included) on random faces.
    Latency runs with `latency_threads` torch threads (default 1: one request per core, as a server would; on a
    shared CPU, intra-op thread hand-offs otherwise dominate a batch of one). Throughput uses torch's default.
    """
    throughput = batched_throughput(clf, tta=tta, faces=batches * batch_size, batch_size=batch_size, seed=seed)
    with _torch_threads(latency_threads):
        one = np.random.default_rng(seed).integers(0, 256, (1, clf.image_size, clf.image_size), dtype=np.uint8)
        for _ in range(3):
            clf.predict_proba(one, batch_size=1, tta=tta)
        times = []
        for _ in range(latency_runs):
            t0 = time.perf_counter()
            clf.predict_proba(one, batch_size=1, tta=tta)
            times.append(time.perf_counter() - t0)
    return {"images_per_second": float(throughput), "latency_ms": float(np.median(times) * 1000.0)}


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count (no-op for None)."""
    if not n:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def count_parameters(clf) -> int | None:  # noqa: ANN001
    """Number of parameters of a torch classifier; None for backends without a torch model."""
    from ferlab.models.profile import count_params

    model = getattr(clf, "torch_model", None)
    return int(count_params(model)) if model is not None else None


def model_mflops(clf) -> float | None:  # noqa: ANN001
    """Forward MFLOPs for one face (`ferlab.models.profile.mflops`); None for backends without a torch model."""
    model = getattr(clf, "torch_model", None)
    if model is None:
        return None
    from ferlab.models.profile import mflops

    cfg = getattr(model, "ferlab_cfg", None)
    size = tuple(cfg.input_size) if cfg is not None else (1, clf.image_size, clf.image_size)
    first = next(model.parameters(), None)
    if first is not None and first.device.type != "cpu":
        return None  # the profiler feeds a CPU tensor
    return float(mflops(model, size))
