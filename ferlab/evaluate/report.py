"""`evaluate(clf, split)` -> `EvalReport`: every metric of one checkpoint on one labelled split, and its writers."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ferlab.data.dataset import FaceDataset
from ferlab.data.schemes import ClassScheme, resolve_scheme
from ferlab.errors import ConfigError, DataError
from ferlab.evaluate import metrics
from ferlab.evaluate.classmap import align_classes, restrict_probs

__all__ = ["EvalReport", "evaluate", "checkpoint_scheme", "json_safe"]


class ProbabilisticClassifier(Protocol):
    """What `evaluate` needs (ferlab.train.checkpoint.Classifier satisfies it)."""

    classes: tuple[str, ...]
    model_name: str
    info: dict

    def predict_proba(self, images: np.ndarray, batch_size: int = 256, tta: str = "none") -> np.ndarray: ...


@dataclass(frozen=True, eq=False)
class EvalReport:
    """Metrics of one model on one split; `to_dict()` is the JSON contract of `ferlab eval --json`."""

    checkpoint: str
    model: str
    source: str
    split: str
    tta: str
    classes: tuple[str, ...]
    num_images: int
    accuracy: float
    accuracy_ci95: tuple[float, float] | None  # Wilson interval (metrics.accuracy_interval)
    macro_f1: float
    per_class: dict[str, dict[str, float]]
    confusion_matrix: list[list[int]]
    confusion_matrix_normalized: list[list[float]]
    log_loss: float
    ece: float
    reliability: dict[str, list]
    leakage_free_accuracy: float | None
    leakage_free_num_images: int | None
    dropped_classes: dict[str, int]
    model_only_classes: tuple[str, ...]
    unlabelled_skipped: int
    mistakes: list[dict[str, Any]]
    mistake_images: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 1, 1), np.uint8))
    #: Per-image outcome (image id, prediction right) in evaluation order, for ferlab.evaluate.paired.
    image_ids: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, dtype=str))
    correct: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, dtype=bool))

    #: Fields kept in memory only: face crops and per-image arrays are not part of the JSON report.
    _IN_MEMORY = ("mistake_images", "image_ids", "correct")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (NaN -> null); the face crops and per-image arrays are left out."""
        keys = [k for k in self.__dataclass_fields__ if k not in self._IN_MEMORY]
        return json_safe({k: getattr(self, k) for k in keys})


def json_safe(obj: Any) -> Any:
    """Tuples -> lists, numpy scalars -> Python, NaN/inf -> None: strict JSON."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | np.ndarray):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def checkpoint_scheme(clf: ProbabilisticClassifier) -> ClassScheme | None:
    """The class scheme the checkpoint was trained with (its config's `classes` spec), if it resolves."""
    spec = ((getattr(clf, "info", None) or {}).get("config") or {}).get("classes")
    if not spec:
        return None
    try:
        return resolve_scheme(str(spec))
    except ConfigError:
        return None


def _predict(clf: ProbabilisticClassifier, images: np.ndarray, tta: str, batch_size: int, progress: bool) -> np.ndarray:
    """Probabilities in chunks so that a progress bar (stderr) can follow long evaluations."""
    from tqdm import tqdm

    chunk = max(batch_size * 4, 1)
    parts = []
    with tqdm(total=len(images), desc=f"eval ({tta})", unit="img", file=sys.stderr, disable=not progress,
              leave=False) as bar:
        for start in range(0, len(images), chunk):
            parts.append(np.asarray(clf.predict_proba(images[start:start + chunk], batch_size=batch_size, tta=tta)))
            bar.update(len(parts[-1]))
    return np.concatenate(parts) if parts else np.zeros((0, len(clf.classes)))


def evaluate(
    clf: ProbabilisticClassifier,
    ds_split: FaceDataset,
    *,
    tta: str = "none",
    train_hashes: np.ndarray | set[str] | None = None,
    scheme: ClassScheme | None = None,
    batch_size: int = 256,
    num_mistakes: int = 24,
    split_name: str = "test",
    progress: bool = False,
) -> EvalReport:
    """Evaluate `clf` on a labelled split, closed-set on the classes model and data share (see classmap).

    `train_hashes`: content hashes of the training split; test images with an exact duplicate there are
    left out of `leakage_free_accuracy`. `scheme`: how the model's classes merge data classes (defaults to
    the scheme in the checkpoint's config).
    """
    labelled = ds_split.labels >= 0
    if not labelled.any():
        raise DataError(f"split '{split_name}' of {ds_split.source or 'the dataset'} has no labels: "
                        "evaluation needs labelled faces")
    align = align_classes(tuple(clf.classes), tuple(ds_split.classes), ds_split.labels,
                          scheme if scheme is not None else checkpoint_scheme(clf))
    y_all = align.map_labels(ds_split.labels)
    keep = y_all >= 0
    if not keep.any():
        raise DataError(f"no labelled image of split '{split_name}' belongs to a class the model knows "
                        f"({', '.join(clf.classes)})")
    data = ds_split.subset(keep)
    y = y_all[keep]
    probs = restrict_probs(_predict(clf, data.images, tta, batch_size, progress), align)
    pred = metrics.predict_labels(probs)
    n_cls = len(align.classes)
    cm = metrics.confusion_matrix(y, pred, n_cls)
    stats = metrics.per_class_metrics(y, pred, n_cls)
    per_class = {c: {"precision": float(stats["precision"][i]), "recall": float(stats["recall"][i]),
                     "f1": float(stats["f1"][i]), "support": int(stats["support"][i])}
                 for i, c in enumerate(align.classes)}
    lf_acc, lf_n = None, None
    if train_hashes is not None:
        hashes = np.asarray(sorted(set(np.asarray(list(train_hashes)).tolist())), dtype=str)
        clean = ~np.isin(data.hashes.astype(str), hashes)
        lf_n = int(clean.sum())
        lf_acc = metrics.accuracy(y[clean], pred[clean]) if lf_n else None
    confidence = probs[np.arange(len(probs)), pred]
    wrong = np.flatnonzero(pred != y)
    worst = wrong[np.argsort(-confidence[wrong], kind="stable")][:num_mistakes]
    mistakes = [{"id": str(data.ids[i]), "true": align.classes[y[i]], "pred": align.classes[pred[i]],
                 "confidence": float(confidence[i])} for i in worst]
    return EvalReport(
        checkpoint=str((clf.info or {}).get("path", "")),
        model=clf.model_name,
        source=ds_split.source,
        split=split_name,
        tta=tta,
        classes=align.classes,
        num_images=int(len(y)),
        accuracy=metrics.accuracy(y, pred),
        accuracy_ci95=metrics.accuracy_interval(int((pred == y).sum()), len(y)),
        macro_f1=metrics.macro_f1(y, pred, n_cls),
        per_class=per_class,
        confusion_matrix=cm.tolist(),
        confusion_matrix_normalized=metrics.normalize_rows(cm).round(6).tolist(),
        log_loss=metrics.log_loss(y, probs),
        ece=metrics.expected_calibration_error(y, probs),
        reliability=metrics.reliability(y, probs),
        leakage_free_accuracy=lf_acc,
        leakage_free_num_images=lf_n,
        dropped_classes=align.dropped_classes,
        model_only_classes=align.model_only_classes,
        unlabelled_skipped=int((~labelled).sum()),
        mistakes=mistakes,
        mistake_images=data.images[worst],
        image_ids=np.asarray(data.ids).astype(str),
        correct=pred == y,
    )

