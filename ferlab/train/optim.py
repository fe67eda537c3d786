"""Optimisers and learning-rate schedules by name; schedules are pure functions of the step.

`Schedule` sets each param group's lr to `base_lr * factor(step) * plateau_factor` (times `phase_factor` for
groups flagged `backbone`);
its whole state is a few numbers, so resuming reproduces the learning rates exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["OPTIMIZERS", "SCHEDULES", "param_groups", "build_optimizer", "cosine_factor", "onecycle_factor",
           "constant_factor", "Schedule", "build_schedule"]


def param_groups(named_params: Iterable[tuple[str, nn.Parameter]], weight_decay: float,
                 backbone: set[int] | None = None) -> list[dict[str, Any]]:
    """Weights with decay vs biases / norm parameters (ndim <= 1) without; split again into backbone and head
    groups (flag `backbone`) when `backbone` (a set of parameter ids) is given, for two-phase fine-tuning."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for _, p in named_params:
        key = (p.ndim > 1, backbone is not None and id(p) in backbone)
        groups.setdefault(key, []).append(p)
    return [{"params": ps, "weight_decay": weight_decay if decay else 0.0, "backbone": is_backbone}
            for (decay, is_backbone), ps in sorted(groups.items())]


def _sgd(groups: list[dict], lr: float, momentum: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=momentum > 0)


def _adam(groups: list[dict], lr: float, momentum: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(groups, lr=lr, betas=(momentum, 0.999))


def _adamw(groups: list[dict], lr: float, momentum: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, lr=lr, betas=(momentum, 0.999))


#: name -> builder(param_groups, lr, momentum). `momentum` is beta1 for Adam(W).
OPTIMIZERS: dict[str, Callable[[list[dict], float, float], torch.optim.Optimizer]] = {
    "sgd": _sgd,
    "adam": _adam,
    "adamw": _adamw,
}


def build_optimizer(name: str, model: nn.Module, *, lr: float, momentum: float, weight_decay: float,
                    groups: list[dict] | None = None) -> torch.optim.Optimizer:
    """Optimiser by registry name; BN/bias parameters get no weight decay. Each group remembers `base_lr`."""
    groups = groups if groups is not None else param_groups(model.named_parameters(), weight_decay)
    opt = OPTIMIZERS[name](groups, lr, momentum)
    for g in opt.param_groups:
        g.setdefault("base_lr", lr * g.get("lr_scale", 1.0))
    return opt


# ---- pure schedule functions: step in [0, total) -> multiplier of the base learning rate ----

def constant_factor(step: int, total: int, warmup: int = 0) -> float:
    return min(1.0, (step + 1) / warmup) if warmup else 1.0


def cosine_factor(step: int, total: int, warmup: int = 0, floor: float = 0.0) -> float:
    """Linear warm-up over `warmup` steps, then half-cosine from 1 to `floor` at `total`."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    span = max(total - warmup, 1)
    progress = min(max(step - warmup, 0) / span, 1.0)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def onecycle_factor(step: int, total: int, warmup: int = 0, pct_start: float = 0.3, div: float = 25.0,
                    final_div: float = 1e4) -> float:
    """One-cycle (Smith 2018): cosine up from 1/div to 1 over pct_start of training, then down to 1/(div*final_div)."""
    up = max(int(round(total * pct_start)), 1)
    start, end = 1.0 / div, 1.0 / (div * final_div)
    if step < up:
        return start + (1 - start) * 0.5 * (1 - math.cos(math.pi * step / up))
    progress = min((step - up) / max(total - up, 1), 1.0)
    return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * progress))


#: name -> per-step factor function(step, total, warmup). `plateau` is constant per step and reacts per epoch.
SCHEDULES: dict[str, Callable[[int, int, int], float]] = {
    "none": constant_factor,
    "cosine": cosine_factor,
    "onecycle": onecycle_factor,
    "plateau": constant_factor,
}


@dataclass
class _State:
    step: int = 0
    plateau_factor: float = 1.0
    best: float = math.inf
    bad_epochs: int = 0
    phase_factor: float = 1.0


class Schedule:
    """Sets group learning rates each step from a pure factor function, plus reduce-on-plateau and phase factors."""

    def __init__(self, optimizer: torch.optim.Optimizer, name: str, *, total_steps: int, warmup_steps: int = 0,
                 plateau_patience: int = 3, plateau_decay: float = 0.5, min_factor: float = 1e-3) -> None:
        self.optimizer, self.name = optimizer, name
        self.fn = SCHEDULES[name]
        self.total_steps, self.warmup_steps = total_steps, warmup_steps
        self.plateau_patience, self.plateau_decay, self.min_factor = plateau_patience, plateau_decay, min_factor
        self.state = _State()
        self._apply()

    def _apply(self) -> None:
        s = self.state
        f = self.fn(s.step, self.total_steps, self.warmup_steps) * s.plateau_factor
        for g in self.optimizer.param_groups:
            g["lr"] = g["base_lr"] * f * (s.phase_factor if g.get("backbone") else 1.0)

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def step_batch(self) -> None:
        """Advance one optimisation step."""
        self.state.step += 1
        self._apply()

    def step_epoch(self, val_loss: float) -> None:
        """Reduce-on-plateau: decay the factor after `plateau_patience` epochs without improvement."""
        if self.name != "plateau":
            return
        s = self.state
        if val_loss < s.best - 1e-4:
            s.best, s.bad_epochs = val_loss, 0
        else:
            s.bad_epochs += 1
            if s.bad_epochs > self.plateau_patience:
                s.plateau_factor = max(s.plateau_factor * self.plateau_decay, self.min_factor)
                s.bad_epochs = 0
        self._apply()

    def set_phase_factor(self, factor: float) -> None:
        """Scale the learning rate of groups flagged `backbone` (fine-tuning's second phase runs them slower)."""
        self.state.phase_factor = factor
        self._apply()

    def state_dict(self) -> dict[str, Any]:
        return asdict(self.state)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = _State(**state)
        self._apply()


def build_schedule(name: str, optimizer: torch.optim.Optimizer, *, epochs: int, steps_per_epoch: int,
                   warmup_epochs: float = 0.0) -> Schedule:
    """A Schedule over `epochs * steps_per_epoch` steps with `warmup_epochs` of linear warm-up."""
    total = max(epochs * steps_per_epoch, 1)
    return Schedule(optimizer, name, total_steps=total, warmup_steps=int(round(warmup_epochs * steps_per_epoch)))
