"""Losses: CE matches torch (smoothing, class weights), focal at gamma 0 is CE, balanced sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ferlab.train.losses import balanced_indices, build_loss, class_weights, cross_entropy, focal_loss


def _data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(16, 5, generator=g), torch.randint(0, 5, (16,), generator=g)


def test_cross_entropy_matches_torch():
    logits, y = _data()
    w = torch.tensor([1.0, 2.0, 0.5, 1.0, 3.0])
    assert cross_entropy(logits, y) == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-5)
    assert cross_entropy(logits, y, smoothing=0.1) == pytest.approx(
        float(F.cross_entropy(logits, y, label_smoothing=0.1)), rel=1e-5)
    assert cross_entropy(logits, y, weight=w) == pytest.approx(float(F.cross_entropy(logits, y, weight=w)), rel=1e-5)


def test_focal_reduces_to_ce_and_down_weights_easy_examples():
    logits, y = _data()
    assert focal_loss(logits, y, gamma=0.0) == pytest.approx(float(cross_entropy(logits, y)), rel=1e-6)
    assert float(focal_loss(logits, y, gamma=2.0)) < float(cross_entropy(logits, y))
    loss = build_loss("focal", gamma=0.0)
    assert float(loss(logits, y)) == pytest.approx(float(cross_entropy(logits, y)), rel=1e-6)


def test_soft_targets_accepted():
    logits, y = _data()
    soft = F.one_hot(y, 5).float()
    w = torch.tensor([1.0, 2.0, 0.5, 1.0, 3.0])
    # the soft-target path (mixup) agrees with torch's hard-label kernel, also with smoothing and class weights
    for kw in ({}, {"smoothing": 0.1}, {"weight": w}):
        assert float(cross_entropy(logits, soft, **kw)) == pytest.approx(float(cross_entropy(logits, y, **kw)),
                                                                        rel=1e-5)


def test_class_weights_balanced():
    w = class_weights(np.array([0, 0, 0, 1]), 3)
    assert w.tolist() == pytest.approx([4 / 9, 4 / 3, 0.0])


def test_balanced_sampler_evens_classes_and_is_deterministic():
    labels = torch.tensor([0] * 90 + [1] * 10)
    a = balanced_indices(labels, 4000, torch.Generator().manual_seed(0))
    b = balanced_indices(labels, 4000, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    share = float((labels[a] == 1).float().mean())
    assert 0.45 < share < 0.55
