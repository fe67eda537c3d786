"""Evaluate a checkpoint file on a data source: load both, pick the split, evaluate, optionally write the report."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ferlab.data.dataset import FaceDataset
from ferlab.evaluate.report import EvalReport, evaluate

__all__ = ["evaluate_checkpoint", "evaluate_dataset", "even_subset", "with_training_validation"]


def even_subset(ds: FaceDataset, limit: int | None) -> FaceDataset:
    """At most `limit` samples, evenly spaced over the split (deterministic, keeps the class mix roughly)."""
    if limit is None or limit >= len(ds):
        return ds
    return ds.subset(np.linspace(0, len(ds) - 1, num=max(int(limit), 1)).round().astype(np.int64))


def with_training_validation(ds: FaceDataset, config: dict) -> FaceDataset:
    """The train and val splits of the training run (its class scheme, limit and validation carve, through the
    function training used), so that `--split val` scores the model on the images it chose by, never on test."""
    from ferlab.train.data_prep import training_splits

    return training_splits(ds, config)


def evaluate_dataset(clf, ds: FaceDataset, *, split: str = "test", tta: str = "none",  # noqa: ANN001
                     batch_size: int = 256, limit: int | None = None, progress: bool = False) -> EvalReport:
    """Evaluate `clf` on one split (or `all`) of a loaded dataset; the `train` split's hashes give the leakage-free
    score (none for `train` or `all`)."""
    part = even_subset(ds.split(split), limit)
    has_train = split not in ("train", "all") and (ds.splits == "train").any()
    train_hashes = ds.hashes[ds.splits == "train"] if has_train else None
    return evaluate(clf, part, tta=tta, train_hashes=train_hashes, batch_size=batch_size, split_name=split,
                    progress=progress)


def evaluate_checkpoint(
    checkpoint: str | os.PathLike | Sequence[str | os.PathLike],
    data: str | os.PathLike,
    *,
    split: str = "test",
    tta: str = "none",
    batch_size: int = 256,
    limit: int | None = None,
    out: str | os.PathLike | None = None,
    progress: bool = False,
) -> EvalReport:
    """Load the checkpoint (any backend `load_classifier` knows; a run directory means its best.pt; several: their
    ensemble) and the data at the model's image size, then evaluate."""
    from ferlab.data import load
    from ferlab.predict.ensemble import load_ensemble

    sources = [checkpoint] if isinstance(checkpoint, str | os.PathLike) else list(checkpoint)
    clf = load_ensemble(sources)
    config = clf.info.get("config") or {}
    manifest = config.get("manifest") if split == "val" else None  # training excluded these images before carving
    ds = load(data, image_size=clf.image_size, progress=progress, manifest=manifest)  # a missing one: one-line error
    if split == "val":
        ds = with_training_validation(ds, config)
    report = evaluate_dataset(clf, ds, split=split, tta=tta, batch_size=batch_size, limit=limit, progress=progress)
    if out is not None:
        from ferlab.evaluate.writers import write_report

        write_report(report, Path(out))
    return report
