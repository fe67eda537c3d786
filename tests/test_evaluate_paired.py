"""Paired comparison of two models on the same images: discordant counts, McNemar's exact test, the interval."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ferlab.data.dataset import FaceDataset
from ferlab.errors import DataError
from ferlab.evaluate import metrics
from ferlab.evaluate.paired import compare_paired
from ferlab.evaluate.report import evaluate

CLASSES = ("angry", "happy", "sad")
RIGHT, WRONG = [0.9, 0.05, 0.05], [0.05, 0.9, 0.05]  # every label below is class 0


class StubClassifier:
    """Returns the probability row of each image's index (stored in its first pixel)."""

    model_name = "stub"

    def __init__(self, classes, probs):
        self.classes, self.probs, self.info = tuple(classes), np.asarray(probs, np.float64), {"path": "stub.pt"}

    def predict_proba(self, images, batch_size=256, tta="none"):
        return self.probs[images[:, 0, 0].astype(int)]


def _dataset(labels, classes) -> FaceDataset:
    n = len(labels)
    images = np.zeros((n, 8, 8), np.uint8)
    images[:, 0, 0] = np.arange(n)
    return FaceDataset(images=images, labels=np.asarray(labels, np.int64), splits=np.asarray(["test"] * n),
                       classes=tuple(classes), ids=np.asarray([f"img{i}" for i in range(n)]),
                       hashes=np.asarray([f"h{i}" for i in range(n)]), source="mem")


def _report(outcomes: list[bool], order: np.ndarray | None = None):
    """evaluate() of a stub that is right exactly where `outcomes` says, images optionally shuffled."""
    ds = _dataset([0] * len(outcomes), CLASSES)
    if order is not None:
        ds = ds.subset(order)
    return evaluate(StubClassifier(CLASSES, [RIGHT if ok else WRONG for ok in outcomes]), ds)


def test_discordant_counts_and_exact_mcnemar_p():
    # A right on 10 images B gets wrong, B right on 2 A gets wrong, both right on 5, both wrong on 3
    a = [True] * 10 + [False] * 2 + [True] * 5 + [False] * 3
    b = [False] * 10 + [True] * 2 + [True] * 5 + [False] * 3
    paired = compare_paired(_report(a), _report(b))
    assert (paired.only_model_correct, paired.only_against_correct, paired.num_images) == (10, 2, 20)
    assert paired.accuracy == pytest.approx(0.75) and paired.against_accuracy == pytest.approx(0.35)
    assert paired.difference == pytest.approx(0.4)
    # exact two-sided binomial test of 10 successes in 12 at p = 1/2, from its definition
    p = 2 * sum(math.comb(12, k) for k in range(10, 13)) / 2 ** 12
    assert paired.mcnemar_p == pytest.approx(p)
    lo, hi = paired.difference_ci95
    se = math.sqrt(12 - 8 ** 2 / 20) / 20
    assert lo == pytest.approx(0.4 - 1.959964 * se) and hi == pytest.approx(0.4 + 1.959964 * se)
    assert set(paired.to_dict()) >= {"difference", "difference_ci95", "mcnemar_p", "only_model_correct"}


def test_pairs_images_by_id_not_by_position():
    a = [True, True, False, False, True]
    order = np.array([4, 3, 2, 1, 0])
    paired = compare_paired(_report(a), _report(a, order))  # the same outcomes, listed in reverse
    assert paired.only_model_correct == paired.only_against_correct == 0
    assert paired.difference == 0 and paired.mcnemar_p == 1.0


def test_different_images_are_refused():
    with pytest.raises(DataError, match="same images"):
        compare_paired(_report([True, False, True]), _report([True, False]))


def test_accuracy_interval_is_the_wilson_interval():
    correct, n, z = 60, 98, 1.959964
    phat = correct / n
    centre = (phat + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo, hi = metrics.accuracy_interval(correct, n)
    assert lo == pytest.approx(centre - half, abs=1e-6) and hi == pytest.approx(centre + half, abs=1e-6)
    assert metrics.accuracy_interval(0, 0) is None
    assert evaluate(StubClassifier(CLASSES, [RIGHT] * 4), _dataset([0, 0, 0, 0], CLASSES)).accuracy_ci95[1] == 1.0
