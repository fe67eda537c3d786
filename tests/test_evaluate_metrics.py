"""Metrics against values computed by hand (small confusion matrices, ties, absent classes)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ferlab.evaluate import metrics as m

# 4 classes, class 3 never appears in y_true nor in y_pred; class 2 is never predicted.
Y_TRUE = np.array([0, 0, 1, 1, 2])
Y_PRED = np.array([0, 1, 1, 1, 0])


def test_confusion_matrix_counts_keep_absent_classes():
    cm = m.confusion_matrix(Y_TRUE, Y_PRED, 4)
    assert cm.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    assert cm.dtype == np.int64


def test_normalized_rows_zero_support_row_is_zero_not_nan():
    norm = m.normalize_rows(m.confusion_matrix(Y_TRUE, Y_PRED, 4))
    assert norm.tolist() == [[0.5, 0.5, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    assert not np.isnan(norm).any()


def test_accuracy_and_per_class_by_hand():
    assert m.accuracy(Y_TRUE, Y_PRED) == pytest.approx(0.6)
    stats = m.per_class_metrics(Y_TRUE, Y_PRED, 4)
    np.testing.assert_allclose(stats["precision"], [0.5, 2 / 3, 0, 0])
    np.testing.assert_allclose(stats["recall"], [0.5, 1.0, 0, 0])
    np.testing.assert_allclose(stats["f1"], [0.5, 0.8, 0, 0])
    assert stats["support"].tolist() == [2, 2, 1, 0]


def test_macro_f1_averages_only_classes_present_in_truth():
    assert m.macro_f1(Y_TRUE, Y_PRED, 4) == pytest.approx((0.5 + 0.8 + 0.0) / 3)


def test_argmax_ties_go_to_lowest_index():
    probs = np.array([[0.5, 0.5, 0.0], [0.2, 0.4, 0.4], [1 / 3, 1 / 3, 1 / 3]])
    assert m.predict_labels(probs).tolist() == [0, 1, 0]


def test_log_loss_is_clipped():
    probs = np.array([[0.5, 0.5], [1.0, 0.0]])
    expected = (-math.log(0.5) - math.log(1e-7)) / 2
    assert m.log_loss([0, 1], probs) == pytest.approx(expected)


def test_ece_and_reliability_two_bins_by_hand():
    probs = np.array([[0.9, 0.1, 0.0], [0.6, 0.4, 0.0], [0.4, 0.3, 0.3]])
    y = np.array([0, 1, 0])  # correct (conf .9), wrong (conf .6), correct (conf .4)
    rel = m.reliability(y, probs, n_bins=2)
    assert rel["counts"] == [1, 2]
    assert rel["accuracy"] == pytest.approx([1.0, 0.5])
    assert rel["confidence"] == pytest.approx([0.4, 0.75])
    assert m.expected_calibration_error(y, probs, n_bins=2) == pytest.approx(1 / 3 * 0.6 + 2 / 3 * 0.25)


def test_reliability_bin_edges_half_open_and_one_in_last_bin():
    probs = np.array([[0.5, 0.5], [1.0, 0.0]])
    rel = m.reliability([0, 0], probs, n_bins=2)
    assert rel["counts"] == [0, 2]  # 0.5 opens the upper bin; 1.0 is kept in the last bin
    assert rel["accuracy"][0] == 0.0 and rel["confidence"][0] == 0.0


def test_perfect_predictions_are_perfect_and_calibrated_at_one():
    probs = np.eye(3)[[0, 1, 2, 2]]
    y = np.array([0, 1, 2, 2])
    assert m.accuracy(y, m.predict_labels(probs)) == 1.0
    assert m.macro_f1(y, m.predict_labels(probs), 3) == 1.0
    assert m.expected_calibration_error(y, probs) == pytest.approx(0.0)
    assert m.log_loss(y, probs) == pytest.approx(0.0)


def test_empty_inputs_give_nan_not_errors():
    empty = np.zeros(0, dtype=np.int64)
    assert math.isnan(m.accuracy(empty, empty))
    assert math.isnan(m.macro_f1(empty, empty, 3))
    assert m.confusion_matrix(empty, empty, 3).sum() == 0


class _CountingClassifier:
    """predict_proba that records its batch sizes and TTA (stands in for a model in throughput measurements)."""

    image_size = 8

    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []

    def predict_proba(self, images, batch_size=256, tta="none"):  # noqa: ANN001, ANN201
        self.calls.append((len(images), tta))
        return np.zeros((len(images), 7), dtype=np.float32)


def test_batched_throughput_warms_up_then_times_whole_passes():
    from ferlab.evaluate.speed import batched_throughput, measure_speed

    clf = _CountingClassifier()
    rate = batched_throughput(clf, tta="flip", faces=40, batch_size=16)
    assert rate > 0 and clf.calls == [(16, "flip"), (40, "flip")]  # one warm-up batch, then one timed pass
    clf.calls.clear()
    batched_throughput(clf, faces=40, batch_size=16, seconds=0.05)
    assert len(clf.calls) >= 3 and all(n == 40 for n, _ in clf.calls[1:])  # repeated until 0.05 s have passed
    clf.calls.clear()
    timing = measure_speed(clf, batch_size=16, batches=2, latency_runs=4)
    assert timing["images_per_second"] > 0 and timing["latency_ms"] > 0
    assert clf.calls[:2] == [(16, "none"), (32, "none")] and clf.calls[2:] == [(1, "none")] * 7
