"""Pure metric functions on integer labels and probability matrices (no I/O, no torch).

Conventions shared by every function here:
- labels are ints in ``range(num_classes)``; classes absent from ``y_true`` keep their row/column;
- predictions from probabilities are ``argmax`` with ties going to the LOWEST class index (numpy's rule);
- a confusion matrix has true classes on rows and predicted classes on columns.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

__all__ = [
    "predict_labels",
    "accuracy",
    "accuracy_interval",
    "confusion_matrix",
    "normalize_rows",
    "per_class_metrics",
    "macro_f1",
    "log_loss",
    "reliability",
    "expected_calibration_error",
]

#: Probabilities are clipped to [LOG_LOSS_EPS, 1] before the log, so one confident mistake costs at most ~16.1.
LOG_LOSS_EPS = 1e-7


def _labels(y: np.ndarray) -> np.ndarray:
    return np.asarray(y, dtype=np.int64).reshape(-1)


def predict_labels(probs: np.ndarray) -> np.ndarray:
    """Arg-max class per row; ties go to the lowest class index (as ``numpy.argmax``)."""
    return np.asarray(probs).argmax(axis=1).astype(np.int64)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Share of exact matches; NaN for an empty input (no images, no score)."""
    y_true, y_pred = _labels(y_true), _labels(y_pred)
    return float((y_true == y_pred).mean()) if len(y_true) else float("nan")


def accuracy_interval(correct: int, total: int, level: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval of an accuracy of `correct` out of `total` (None for no images): how far the score
    of another draw of as many images could plausibly lie, so that small splits are not over-read."""
    if total <= 0:
        return None
    from scipy.stats import binomtest

    ci = binomtest(int(correct), int(total)).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts C x C (rows = true class, columns = predicted class), every class kept even when absent."""
    y_true, y_pred = _labels(y_true), _labels(y_pred)
    flat = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def normalize_rows(cm: np.ndarray) -> np.ndarray:
    """Row-normalised confusion matrix (recall on the diagonal); rows with zero support stay all zeros."""
    cm = np.asarray(cm, dtype=np.float64)
    support = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, support, out=np.zeros_like(cm), where=support > 0)


def per_class_metrics(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict[str, np.ndarray]:
    """Precision, recall, F1 (0 where undefined) and support per class index, as arrays of length C."""
    y_true, y_pred = _labels(y_true), _labels(y_pred)
    if not len(y_true):
        zeros = np.zeros(num_classes)
        return {"precision": zeros, "recall": zeros.copy(), "f1": zeros.copy(), "support": zeros.astype(np.int64)}
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=list(range(num_classes)), average=None, zero_division=0
    )
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(np.int64)}


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Unweighted mean F1 over the classes PRESENT in ``y_true`` (support > 0).

    Classes with no true sample have no recall; counting them as F1 = 0 would punish a test split
    (or a cross-dataset evaluation) for what it does not contain. NaN for an empty input.
    """
    stats = per_class_metrics(y_true, y_pred, num_classes)
    present = stats["support"] > 0
    return float(stats["f1"][present].mean()) if present.any() else float("nan")


def log_loss(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Mean negative log-probability of the true class, probabilities clipped to [1e-7, 1]."""
    y_true, probs = _labels(y_true), np.asarray(probs, dtype=np.float64)
    if not len(y_true):
        return float("nan")
    p_true = np.clip(probs[np.arange(len(y_true)), y_true], LOG_LOSS_EPS, 1.0)
    return float(-np.log(p_true).mean())


def reliability(y_true: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> dict[str, list[float] | list[int]]:
    """Reliability-diagram data from the top-class confidence, in ``n_bins`` equal-width bins over [0, 1].

    Bin ``i`` holds confidences in ``[i/n, (i+1)/n)``, the last bin also holds 1.0. Empty bins report
    count 0 and accuracy/confidence 0.
    """
    y_true, probs = _labels(y_true), np.asarray(probs, dtype=np.float64)
    confidence = probs.max(axis=1) if len(probs) else np.zeros(0)
    correct = (predict_labels(probs) == y_true) if len(probs) else np.zeros(0, dtype=bool)
    idx = np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)
    counts = np.bincount(idx, minlength=n_bins)
    conf_sum = np.bincount(idx, weights=confidence, minlength=n_bins)
    correct_sum = np.bincount(idx, weights=correct.astype(np.float64), minlength=n_bins)
    safe = np.maximum(counts, 1)
    return {
        "bin_edges": np.linspace(0.0, 1.0, n_bins + 1).tolist(),
        "counts": counts.astype(int).tolist(),
        "accuracy": np.where(counts > 0, correct_sum / safe, 0.0).tolist(),
        "confidence": np.where(counts > 0, conf_sum / safe, 0.0).tolist(),
    }


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> float:
    """ECE = sum over bins of (bin share) x |bin accuracy - bin mean confidence| (bins as in `reliability`)."""
    data = reliability(y_true, probs, n_bins)
    counts = np.asarray(data["counts"], dtype=np.float64)
    if counts.sum() == 0:
        return float("nan")
    gap = np.abs(np.asarray(data["accuracy"]) - np.asarray(data["confidence"]))
    return float((counts / counts.sum() * gap).sum())
