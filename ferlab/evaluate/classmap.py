"""Align a model's classes with a dataset's classes (cross-dataset and cross-scheme evaluation).

A data class counts for model class M when it has M's name (after `ferlab.labels.canonical_label`, so
CK+ `anger/` is `angry`) or when the model's class scheme merges it into M (e.g. `positive=happy,surprise`
maps data `happy` and `surprise` to `positive`). Evaluation then runs closed-set on the SHARED classes:
the model's probabilities are restricted to those columns and renormalised to sum to 1, so a model is
neither rewarded nor punished for classes the data cannot contain. Data classes the model lacks are
dropped and reported with their counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ferlab.data.schemes import ClassScheme
from ferlab.errors import CheckpointError
from ferlab.labels import canonical_label

__all__ = ["ClassAlignment", "align_classes", "restrict_probs"]


@dataclass(frozen=True)
class ClassAlignment:
    """How data labels and model probability columns map onto the shared classes (in model order)."""

    classes: tuple[str, ...]  # shared classes, model order
    model_columns: tuple[int, ...]  # column of each shared class in the model's probabilities
    data_to_shared: tuple[int, ...]  # per data class index: shared index or -1 (dropped)
    dropped_classes: dict[str, int]  # data class -> number of labelled samples dropped
    model_only_classes: tuple[str, ...]  # model classes no data class maps to

    def map_labels(self, labels: np.ndarray) -> np.ndarray:
        """Data label indices -> shared indices; -1 for unlabelled or dropped samples."""
        lookup = np.asarray((*self.data_to_shared, -1), dtype=np.int64)  # last slot: unlabelled
        labels = np.asarray(labels, dtype=np.int64)
        return lookup[np.where(labels < 0, len(self.data_to_shared), labels)]


def align_classes(
    model_classes: tuple[str, ...],
    data_classes: tuple[str, ...],
    data_labels: np.ndarray,
    scheme: ClassScheme | None = None,
) -> ClassAlignment:
    """Match data classes to model classes by name, then through `scheme`'s merges; CheckpointError if none match."""
    model_index = {c: i for i, c in enumerate(model_classes)}
    merged = {canonical_label(m): t for t, members in (scheme.groups if scheme else ()) for m in members}
    target_of: list[str | None] = []
    for name in data_classes:
        canon = canonical_label(name)
        target = name if name in model_index else canon if canon in model_index else merged.get(canon)
        target_of.append(target if target in model_index else None)
    shared = tuple(c for c in model_classes if c in target_of)
    if not shared:
        raise CheckpointError(
            f"the model's classes ({', '.join(model_classes)}) share no class with the data "
            f"({', '.join(data_classes)}): wrong checkpoint or dataset?"
        )
    shared_index = {c: i for i, c in enumerate(shared)}
    labels = np.asarray(data_labels, dtype=np.int64)
    counts = np.bincount(labels[labels >= 0], minlength=len(data_classes))
    return ClassAlignment(
        classes=shared,
        model_columns=tuple(model_index[c] for c in shared),
        data_to_shared=tuple(shared_index[t] if t is not None else -1 for t in target_of),
        dropped_classes={c: int(counts[i]) for i, c in enumerate(data_classes) if target_of[i] is None},
        model_only_classes=tuple(c for c in model_classes if c not in shared),
    )


def restrict_probs(probs: np.ndarray, alignment: ClassAlignment) -> np.ndarray:
    """Keep the shared classes' columns and renormalise each row to sum to 1 (uniform if all were 0)."""
    sub = np.asarray(probs, dtype=np.float64)[:, list(alignment.model_columns)]
    total = sub.sum(axis=1, keepdims=True)
    uniform = np.full_like(sub, 1.0 / sub.shape[1])
    return np.divide(sub, total, out=uniform, where=total > 0)
