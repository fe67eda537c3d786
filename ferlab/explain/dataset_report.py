"""Explain a classifier over a labelled split: mean heat maps per emotion (right / wrong), region x emotion table,
and the trust checks (faithfulness vs random, sanity) of each method on a sample.

Each face is explained for the class the model predicts (closed-set on the classes model and data share, as
`ferlab eval` scores), or for a fixed `target`. Faces are grouped by their TRUE class: "correct" cells show
what the model looked at when it got that emotion right, "mistakes" cells what it looked at when it called a
face of that emotion something else. Regions use the calibrated template (dataset faces are aligned crops).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ferlab.data.dataset import FaceDataset
from ferlab.errors import ConfigError, DataError
from ferlab.explain.aggregate import GROUPS, SHARE_NAMES, GroupAccumulator, area_fractions, stratified_indices

__all__ = ["DatasetExplanation", "explain_dataset", "explain_source", "resolve_methods"]


@dataclass(frozen=True, eq=False)
class DatasetExplanation:
    """Everything the dataset report shows; arrays are indexed [class, group] with GROUPS = (correct, mistakes)."""

    model: str
    checkpoint: str
    source: str
    split: str
    method: str
    target: str | None
    classes: tuple[str, ...]
    n_images: int
    accuracy: float
    counts: np.ndarray  # classes x GROUPS int
    mean_heatmaps: np.ndarray = field(repr=False)  # classes x GROUPS x H x W (NaN for empty cells)
    mean_faces: np.ndarray = field(repr=False)  # classes x GROUPS x H x W
    shares: np.ndarray = field(repr=False)  # classes x GROUPS x len(SHARE_NAMES): mean region share
    share_counts: np.ndarray = field(repr=False)  # classes x GROUPS: maps with positive mass
    areas: np.ndarray = field(repr=False)  # len(SHARE_NAMES): area fraction of each region in the template
    trust: list = field(default_factory=list)  # list[ferlab.explain.trust.MethodTrust]
    trust_faces: int = 0
    dropped_classes: dict[str, int] = field(default_factory=dict)
    limit: int | None = None
    tta: str = "none"  # how the explained class was predicted (the maps explain the face as given)

    def region_table(self, group: str = "correct", *, per_area: bool = False) -> dict[str, dict[str, float] | None]:
        """emotion -> region -> mean share (or share / area fraction); None for an emotion without such faces."""
        g = GROUPS.index(group)
        table: dict[str, dict[str, float] | None] = {}
        for c, name in enumerate(self.classes):
            row = self.shares[c, g]
            if not np.isfinite(row).all():
                table[name] = None
                continue
            values = row / self.areas if per_area else row
            table[name] = {r: float(v) for r, v in zip(SHARE_NAMES, values, strict=True)}
        return table

    def summary(self) -> dict[str, Any]:
        """The `summary.json` object (strict JSON: no NaN)."""
        return {
            "model": self.model, "checkpoint": self.checkpoint, "source": self.source, "split": self.split,
            "method": self.method, "target": self.target, "classes": list(self.classes), "limit": self.limit,
            "tta": self.tta, "n_images": self.n_images, "accuracy": self.accuracy,
            "counts": {c: {g: int(self.counts[i, j]) for j, g in enumerate(GROUPS)}
                       for i, c in enumerate(self.classes)},
            "regions": self.region_table("correct"),
            "regions_per_area": self.region_table("correct", per_area=True),
            "regions_mistakes": self.region_table("mistakes"),
            "regions_mistakes_per_area": self.region_table("mistakes", per_area=True),
            "region_areas": {r: float(a) for r, a in zip(SHARE_NAMES, self.areas, strict=True)},
            "trust_faces": self.trust_faces,
            "faithfulness": {t.method: t.faithfulness for t in self.trust},
            "sanity": {t.method: t.sanity for t in self.trust},
            "dropped_classes": dict(self.dropped_classes),
        }


def resolve_methods(method: str, methods: str | Sequence[str] | None) -> list[str]:
    """The trust-check methods: `method` first, then `methods` (comma list or sequence), deduplicated."""
    from ferlab.explain.methods import get_method

    extra = [m.strip() for m in methods.split(",")] if isinstance(methods, str) else list(methods or [])
    names = list(dict.fromkeys([method, *[m for m in extra if m]]))
    for name in names:
        get_method(name)
    return names


def _check_cam_layers(model: Any, methods: Sequence[str]) -> None:
    """A CAM method on a model without a usable CAM layer fails before any work (one-line ModelError)."""
    from ferlab.explain.methods import cam_layer, get_method

    for name in methods:
        if get_method(name).needs_cam_layer:
            cam_layer(model)


def explain_dataset(clf: Any, data: FaceDataset, *, method: str = "gradcam", methods: str | Sequence[str] | None = None,
                    target: str | int | None = None, limit: int | None = None, faithfulness_samples: int = 200,
                    batch_size: int = 64, split_name: str = "test", progress: bool = False,
                    seed: int = 0, tta: str = "none") -> DatasetExplanation:
    """Explain `clf` (a torch Classifier) on every labelled face of `data` (or a stratified `limit` of them).

    With a `tta` other than "none" the predicted (and so explained) class is the TTA-averaged one, as `ferlab
    predict`, `ferlab eval` and `ferlab explain IMAGE` name it with that TTA."""
    import torch
    from tqdm import tqdm

    from ferlab.evaluate.classmap import align_classes
    from ferlab.evaluate.report import checkpoint_scheme
    from ferlab.explain.aggregate import batch_region_shares
    from ferlab.explain.api import _as_faces, predicted_probs, require_torch_model, resolve_target
    from ferlab.explain.methods import attribute, normalise
    from ferlab.explain.regions import region_label_map
    from ferlab.explain.trust import trust_checks
    from ferlab.models.preprocess import preprocess

    if batch_size < 1 or faithfulness_samples < 0 or (limit is not None and limit < 1):
        raise ConfigError("--batch-size and --limit must be >= 1 and --faithfulness-samples >= 0")
    trust_methods = resolve_methods(method, methods)
    model = require_torch_model(clf)
    _check_cam_layers(model, trust_methods)
    classes = tuple(clf.classes)
    fixed = resolve_target(classes, target)
    if len(data) == 0 or not (data.labels >= 0).any():
        raise DataError(f"split '{split_name}' of {data.source or 'the dataset'} has no labelled face to explain")
    align = align_classes(classes, tuple(data.classes), data.labels, checkpoint_scheme(clf))
    y_all = align.map_labels(data.labels)
    usable = np.flatnonzero(y_all >= 0)
    if not len(usable):
        raise DataError(f"no labelled face of split '{split_name}' belongs to a class the model knows "
                        f"({', '.join(classes)})")
    chosen = usable[stratified_indices(y_all[usable], limit)]
    size = int(clf.image_size or model.ferlab_cfg.input_size[1])
    faces = _as_faces(data.images[chosen], size)
    y = y_all[chosen]
    columns = np.asarray(align.model_columns, dtype=np.int64)
    labels = region_label_map(size)
    acc = GroupAccumulator(len(align.classes), size)
    targets = np.empty(len(faces), dtype=np.int64)
    cfg = model.ferlab_cfg
    with tqdm(total=len(faces), desc=f"explain ({method})", unit="img", file=sys.stderr, disable=not progress,
              leave=False) as bar:
        for s in range(0, len(faces), batch_size):
            chunk = faces[s:s + batch_size]
            x = preprocess(torch.from_numpy(chunk), cfg).contiguous()
            probs = predicted_probs(clf, model, x, chunk, tta)
            pred = probs[:, columns].argmax(axis=1)  # closed set, ties -> lowest index
            t = columns[pred] if fixed is None else np.full(len(chunk), fixed, dtype=np.int64)
            targets[s:s + len(chunk)] = t
            raw = attribute(model, x, torch.from_numpy(t), method)
            acc.add(normalise(raw), chunk, y[s:s + len(chunk)], pred == y[s:s + len(chunk)],
                    batch_region_shares(raw, labels))
            bar.update(len(chunk))
    trust, n_trust = [], 0
    if faithfulness_samples > 0:
        sub = stratified_indices(y, faithfulness_samples)
        n_trust = len(sub)
        x_sub = preprocess(torch.from_numpy(faces[sub]), cfg).contiguous()
        trust = trust_checks(model, x_sub, torch.from_numpy(targets[sub]), trust_methods, batch_size=batch_size,
                             seed=seed, progress=progress)
    return DatasetExplanation(
        model=str(getattr(clf, "model_name", cfg.name)),
        checkpoint=str((getattr(clf, "info", None) or {}).get("path", "")),
        source=data.source, split=split_name, method=method, target=None if fixed is None else classes[fixed],
        classes=align.classes, n_images=acc.n_images, accuracy=acc.n_correct / max(acc.n_images, 1),
        counts=acc.count.copy(), mean_heatmaps=acc.mean_heatmaps(), mean_faces=acc.mean_faces(),
        shares=acc.mean_shares(), share_counts=acc.share_count.copy(), areas=area_fractions(labels), trust=trust,
        trust_faces=n_trust, dropped_classes=dict(align.dropped_classes), limit=limit, tta=tta,
    )


def explain_source(model: str | os.PathLike | None, data: str | os.PathLike, *, split: str = "test",
                   out: str | os.PathLike | None = None, progress: bool = False, **kwargs: Any) -> DatasetExplanation:
    """Load the checkpoint (None: the bundled model) and the data at its image size, explain a split, write the
    report into `out`."""
    from ferlab.data import load
    from ferlab.explain.api import require_torch_model, resolve_target
    from ferlab.predict.predictor import Predictor

    methods = resolve_methods(kwargs.get("method", "gradcam"), kwargs.get("methods"))  # before anything loads
    predictor = Predictor.from_checkpoint(model) if model else Predictor.from_pretrained(backend="torch")
    clf = predictor.classifier
    _check_cam_layers(require_torch_model(clf), methods)
    resolve_target(tuple(clf.classes), kwargs.get("target"))
    ds = load(data, image_size=clf.image_size, progress=progress)
    if split == "val":  # the validation carve the model was selected on, as `ferlab eval --split val` makes it
        from ferlab.evaluate.run import with_training_validation

        ds = with_training_validation(ds, dict(clf.info.get("config") or {}))
    kwargs.setdefault("tta", predictor.tta)  # the bundled model's shipped TTA, as `ferlab explain IMAGE` uses it
    result = explain_dataset(clf, ds.split(split), split_name=split, progress=progress, **kwargs)
    if out is not None:
        from ferlab.explain.report_files import write_dataset_report

        write_dataset_report(result, Path(out))
    return result
