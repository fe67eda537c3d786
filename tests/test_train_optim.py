"""Optimisers and schedules: exact learning rates at given steps, no decay on BN/bias, plateau, state round-trip."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ferlab.train.optim import (
    OPTIMIZERS,
    Schedule,
    build_optimizer,
    build_schedule,
    cosine_factor,
    onecycle_factor,
    param_groups,
)


def test_cosine_values():
    assert cosine_factor(0, 100, 10) == pytest.approx(0.1)
    assert cosine_factor(9, 100, 10) == pytest.approx(1.0)
    assert cosine_factor(10, 100, 10) == pytest.approx(1.0)
    assert cosine_factor(55, 100, 10) == pytest.approx(0.5)
    assert cosine_factor(100, 100, 10) == pytest.approx(0.0)
    assert cosine_factor(50, 100, 0, floor=0.2) == pytest.approx(0.6)


def test_onecycle_values():
    assert onecycle_factor(0, 100) == pytest.approx(1 / 25)
    assert onecycle_factor(30, 100) == pytest.approx(1.0)
    assert onecycle_factor(15, 100) == pytest.approx((1 / 25 + 1) / 2)
    assert onecycle_factor(100, 100) == pytest.approx(1 / 25e4)


def _model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))


def test_no_weight_decay_on_bias_and_norm():
    groups = param_groups(_model().named_parameters(), 0.1)
    decayed = [p for g in groups if g["weight_decay"] > 0 for p in g["params"]]
    plain = [p for g in groups if g["weight_decay"] == 0 for p in g["params"]]
    assert all(p.ndim > 1 for p in decayed) and len(decayed) == 2
    assert all(p.ndim == 1 for p in plain) and len(plain) == 4


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizers_build(name):
    opt = build_optimizer(name, _model(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    assert all(g["base_lr"] == 0.1 for g in opt.param_groups)
    if name == "sgd":
        assert opt.param_groups[0]["nesterov"] is True


def test_schedule_sets_lr_and_round_trips():
    opt = build_optimizer("sgd", _model(), lr=1.0, momentum=0.9, weight_decay=0)
    sched = build_schedule("cosine", opt, epochs=2, steps_per_epoch=5, warmup_epochs=0)
    for _ in range(5):
        sched.step_batch()
    assert sched.lr == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    other = Schedule(opt, "cosine", total_steps=10)
    other.load_state_dict(sched.state_dict())
    assert other.lr == pytest.approx(sched.lr)


def test_plateau_decays_after_patience():
    opt = build_optimizer("adam", _model(), lr=1.0, momentum=0.9, weight_decay=0)
    sched = Schedule(opt, "plateau", total_steps=10, plateau_patience=1, plateau_decay=0.5)
    for loss in (1.0, 1.0, 1.0):
        sched.step_epoch(loss)
    assert sched.lr == pytest.approx(0.5)


def test_phase_factor_only_scales_backbone_groups():
    model = _model()
    backbone = {id(p) for p in model[0].parameters()}
    opt = build_optimizer("sgd", model, lr=1.0, momentum=0.0, weight_decay=0.0,
                          groups=param_groups(model.named_parameters(), 0.0, backbone))
    sched = Schedule(opt, "none", total_steps=10)
    sched.set_phase_factor(0.1)
    lrs = {g["backbone"]: g["lr"] for g in opt.param_groups}
    assert lrs == {True: pytest.approx(0.1), False: pytest.approx(1.0)}
    assert isinstance(opt, torch.optim.SGD)
