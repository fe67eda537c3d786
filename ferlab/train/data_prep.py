"""From a TrainConfig to the train/val tensors of a run: load, class scheme, --limit, validation carve."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ferlab.data import PRESETS, FaceDataset, resolve_scheme
from ferlab.errors import ConfigError, DataError
from ferlab.train.config import TrainConfig

__all__ = ["RunData", "load_dataset", "stratified_limit", "validation_seed", "carve_validation", "training_splits",
           "prepare_data"]


@dataclass(frozen=True)
class RunData:
    """uint8 N x 1 x H x W images and int64 labels of the train and val splits, plus the class names."""

    classes: tuple[str, ...]
    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    source: str = ""
    fingerprint: str = ""
    val_digest: str = ""  # carve_digest of the validation split: `eval --split val` checks it found the same images
    train_digest: str = ""  # carve_digest of the training split: `--resume` checks it continues on the same images


def carve_digest(split: FaceDataset) -> str:
    """A short digest of a split's images and labels (content hashes), independent of order and paths: equal
    digests mean the same images, wherever and however the data was loaded."""
    import hashlib

    pairs = sorted(f"{h}:{label}" for h, label in zip(split.hashes.tolist(), split.labels.tolist(), strict=True))
    return hashlib.sha256("\n".join(pairs).encode()).hexdigest()[:16]


def validation_seed(config: Mapping[str, Any]) -> int:
    """The seed of a run's validation carve: `val_seed`, or the training `seed` when it is unset (older runs)."""
    seed = config.get("val_seed")
    return int(config.get("seed") or 0) if seed is None else int(seed)


def carve_validation(ds: FaceDataset, config: Mapping[str, Any]) -> FaceDataset:
    """Carve the validation split a run selects its model on, from its config (a TrainConfig dict, possibly from an
    older run without the newer fields): training and `ferlab eval --split val` both call this, so they agree."""
    return ds.with_validation(float(config.get("val_fraction") or 0.1), seed=validation_seed(config),
                              no_copies=bool(config.get("val_no_copies")))


def load_dataset(cfg: TrainConfig, image_size: int) -> FaceDataset:
    """Load `cfg.data` through the data layer (cached), with the cleaning manifest if one is given."""
    from ferlab.data import load

    if not cfg.data:
        raise ConfigError("no training data given (--data SOURCE or `data:` in the config)")
    kwargs = {"image_size": image_size, "progress": cfg.progress}
    if cfg.manifest:
        kwargs["manifest"] = cfg.manifest
    return load(cfg.data, **kwargs)


def stratified_limit(ds: FaceDataset, limit: int, seed: int) -> FaceDataset:
    """Keep about `limit` training samples, each class in proportion (at least 1 each); other splits untouched."""
    train = np.flatnonzero(ds.splits == "train")
    if limit >= len(train):
        return ds
    rng = np.random.default_rng(seed)
    labels = ds.labels[train]
    keep = [np.flatnonzero(ds.splits != "train")]
    for label in np.unique(labels):
        members = train[labels == label]
        n = max(1, int(limit * len(members) / len(train)))
        keep.append(np.sort(rng.permutation(members)[:n]))
    return ds.subset(np.sort(np.concatenate(keep)))


def training_splits(ds: FaceDataset, config: Mapping[str, Any]) -> FaceDataset:
    """The run's `train` and `val` splits from loaded data and its config (a TrainConfig dict, possibly from an
    older run): class scheme, the train/val pool only (test is never seen), labelled images, limit, validation
    carve. Training and `ferlab eval --split val` both call this, so they select and score on the same images."""
    classes = str(config.get("classes") or "all")
    if classes != "all":  # "all": the data's own classes, as the source lists them
        scheme = resolve_scheme(classes)
        if len(scheme.classes) < 2:
            raise ConfigError(f"class scheme '{classes}' leaves fewer than 2 classes")
        missing = [m for _, members in scheme.groups for m in members if m not in ds.classes]
        if missing and classes not in PRESETS:  # a typo (`sadd`) trained a class with no image, silently
            raise ConfigError(f"class scheme '{classes}' names {', '.join(missing)}, which "
                              f"{ds.source or 'the data'} does not have (its classes: {', '.join(ds.classes)})")
        ds = ds.with_scheme(scheme)
    ds = ds.subset(np.isin(ds.splits, ["train", "val"]))
    present = np.unique(ds.labels[(ds.splits == "train") & (ds.labels >= 0)])
    if len(present) < 2:
        raise ConfigError(f"class scheme '{classes}' leaves {len(present)} class(es) with training images in "
                          f"{ds.source or 'the data'}; a classifier needs at least 2")
    empty = [c for i, c in enumerate(ds.classes) if i not in set(present.tolist())]
    if empty:  # a preset such as "4" on data without neutral: the model gets an output it can never learn
        warnings.warn(f"class(es) {', '.join(empty)} of scheme '{classes}' have no training image in "
                      f"{ds.source or 'the data'}; the model will never predict them", stacklevel=2)
    ds = ds.subset(ds.labels >= 0)
    if config.get("limit"):
        ds = stratified_limit(ds, int(config["limit"]), int(config.get("seed") or 0))
    return carve_validation(ds, config)


def prepare_data(cfg: TrainConfig, image_size: int, dataset: FaceDataset | None = None) -> RunData:
    """The run's splits (`training_splits`) as uint8 tensors, checked against the model's input size."""
    ds = training_splits(dataset if dataset is not None else load_dataset(cfg, image_size), cfg.to_dict())
    if ds.image_size != image_size:
        raise DataError(f"images are {ds.image_size}x{ds.image_size} but the model takes {image_size}x{image_size}")
    train, val = ds.subset(ds.splits == "train"), ds.subset(ds.splits == "val")
    if len(val) == 0 or len(train) < 2:
        raise DataError(f"too few images to train ({len(train)}) and validate ({len(val)}); raise --limit or "
                        f"val_fraction")
    (ti, tl), (vi, vl) = train.torch_view(), val.torch_view()
    return RunData(tuple(ds.classes), ti, tl, vi, vl, ds.source, ds.fingerprint, carve_digest(val), carve_digest(train))
