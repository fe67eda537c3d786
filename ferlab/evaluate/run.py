"""Evaluate a checkpoint file on a data source: load both, pick the split, evaluate, optionally write the report."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ferlab.data.dataset import FaceDataset
from ferlab.evaluate.report import EvalReport, evaluate

__all__ = ["evaluate_checkpoint", "evaluate_dataset", "even_subset", "foreign_validation", "with_training_validation"]


def even_subset(ds: FaceDataset, limit: int | None) -> FaceDataset:
    """At most `limit` samples, evenly spaced over the split (deterministic, keeps the class mix roughly)."""
    if limit is not None and limit < 1:  # 0 or -3 scored one image, silently
        from ferlab.errors import ConfigError

        raise ConfigError(f"limit must be >= 1 (or None for the whole split), got {limit}")
    if limit is None or limit >= len(ds):
        return ds
    return ds.subset(np.linspace(0, len(ds) - 1, num=max(int(limit), 1)).round().astype(np.int64))


def with_training_validation(ds: FaceDataset, config: dict) -> FaceDataset:
    """The train and val splits of the training run (its class scheme, limit and validation carve, through the
    function training used), so that `--split val` scores the model on the images it chose by, never on test."""
    from ferlab.train.data_prep import training_splits

    return training_splits(ds, config)


def _run_splits(ds: FaceDataset, config: dict) -> FaceDataset:
    """A run's train/val splits from data loaded without a manifest (the run's own manifest applied first)."""
    if config.get("manifest"):
        from ferlab.data.manifest import apply_manifest

        ds = apply_manifest(ds, config["manifest"])
    return with_training_validation(ds, config)


def foreign_validation(ds: FaceDataset, carve_config: dict, model_configs: Sequence[dict],
                       carve_name: str = "the other run") -> tuple[FaceDataset, np.ndarray]:
    """(the train/val splits carved by another run's config, the content hashes of every model's training images),
    from data loaded without a manifest. Two models compare fairly on images neither trained on: DataError if a
    model trained on any image of that carve, or if its config cannot tell which images it trained on."""
    from ferlab.errors import DataError

    if not carve_config:
        raise DataError(f"{carve_name} records no training config, so it names no validation carve")
    carved = _run_splits(ds, carve_config)
    val_ids = set(carved.ids[carved.splits == "val"].tolist())
    train_hashes = []
    for config in model_configs:
        if not config:
            raise DataError(f"the model's checkpoint records no training config, so ferlab cannot check that it never "
                            f"trained on the validation images of {carve_name}")
        own = carved if config == carve_config else _run_splits(ds, config)  # a model scored on its own carve
        trained = own.ids[own.splits == "train"]
        seen = len(val_ids.intersection(trained.tolist()))
        if seen:
            raise DataError(f"the model trained on {seen} of the {len(val_ids)} validation images of {carve_name}; "
                            f"compare on a carve that no model trained on")
        train_hashes.append(own.hashes[own.splits == "train"])
    return carved, np.concatenate(train_hashes)


def _check_own_carve(ds: FaceDataset, expected: str | None, data: str | os.PathLike) -> None:
    """Warn when `--split val` carved other images than the run validated on (other data, another version of it):
    the figure is then no validation score of the run. Checkpoints older than the digest are not checked."""
    import warnings

    from ferlab.train.data_prep import carve_digest

    if expected and carve_digest(ds.split("val")) != expected:
        warnings.warn(f"the validation carve of {data} is not the one this model was selected on (other data or "
                      "another version of it): this is not the run's validation score", stacklevel=3)


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
    val_from: str | os.PathLike | None = None,
) -> EvalReport:
    """Load the checkpoint (any backend `load_classifier` knows; a run directory means its best.pt; several: their
    ensemble) and the data at the model's image size, then evaluate. `val_from` (with split "val"): another run's
    validation carve instead of the model's own (`foreign_validation`); an ensemble's "val" is its first member's
    carve, refused if another member trained on it."""
    from ferlab.data import load
    from ferlab.errors import ConfigError
    from ferlab.predict.ensemble import load_ensemble

    if val_from is not None and split != "val":
        raise ConfigError("--val-from needs --split val")
    sources = [checkpoint] if isinstance(checkpoint, str | os.PathLike) else list(checkpoint)
    clf = load_ensemble(sources)
    config = clf.info.get("config") or {}
    members = getattr(clf, "members", [clf])
    if val_from is not None or (split == "val" and len(members) > 1):
        # an ensemble scores on its first member's carve, checked against every member's training images
        carve_from = val_from if val_from is not None else getattr(clf, "sources", [sources[0]])[0]
        carve_config = (load_ensemble([val_from]).info.get("config") or {}) if val_from is not None else config
        ds = load(data, image_size=clf.image_size, progress=progress)
        ds, train_hashes = foreign_validation(ds, carve_config, [m.info.get("config") or {} for m in members],
                                              carve_name=str(carve_from))
        report = evaluate(clf, even_subset(ds.split("val"), limit), tta=tta, train_hashes=train_hashes,
                          batch_size=batch_size, split_name="val", progress=progress)
    else:
        manifest = config.get("manifest") if split == "val" else None  # training excluded these before carving
        ds = load(data, image_size=clf.image_size, progress=progress, manifest=manifest)  # missing: one-line error
        if split == "val":
            ds = with_training_validation(ds, config)
            _check_own_carve(ds, clf.info.get("val_digest"), data)
        report = evaluate_dataset(clf, ds, split=split, tta=tta, batch_size=batch_size, limit=limit,
                                  progress=progress)
    if out is not None:
        from ferlab.evaluate.writers import write_report

        write_report(report, Path(out))
    return report
