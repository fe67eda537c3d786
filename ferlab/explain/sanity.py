"""Model-parameter randomisation test (Adebayo et al. 2018): a faithful explanation must change with the weights.

Maps from the trained model and from a copy with re-initialised weights are compared by Spearman rank
correlation per face; a method whose mean correlation stays at or above `threshold` explains the input
(edges, contrast), not the model, and is flagged.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

__all__ = ["DEFAULT_THRESHOLD", "SanityResult", "randomised_copy", "rank_correlations", "parameter_randomisation_check"]

#: Mean Spearman correlation at or above which a method is flagged as ignoring the model.
DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class SanityResult:
    """Mean (and spread of) rank correlation between trained- and random-model maps; `passed` is the verdict."""

    method: str
    n_faces: int
    spearman_mean: float
    spearman_std: float
    threshold: float

    @property
    def passed(self) -> bool:
        return self.spearman_mean < self.threshold

    def as_dict(self) -> dict:
        return {"method": self.method, "n_faces": self.n_faces, "spearman_mean": self.spearman_mean,
                "spearman_std": self.spearman_std, "threshold": self.threshold, "passed": self.passed}


def randomised_copy(model: nn.Module, seed: int = 0) -> nn.Module:
    """A deep copy with every learnable weight re-initialised (reset_parameters, else Gaussian of the same std)."""
    clone = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        covered: set[int] = set()
        for module in clone.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
                covered.update(id(p) for p in module.parameters(recurse=False))
        with torch.no_grad():
            # Parameters no reset_parameters owns (custom nn.Parameters). Not "unchanged by the reset": a reset
            # BatchNorm weight is 1 again, as in a fresh model, and must not become randn * std(1, 1, ...) = 0.
            for p in clone.parameters():
                if id(p) not in covered:
                    std = float(p.std()) if p.numel() > 1 else 0.0
                    p.copy_(torch.randn_like(p) * (std if std > 0 else 1.0))
    return clone.eval()


def rank_correlations(maps_a: np.ndarray, maps_b: np.ndarray) -> np.ndarray:
    """Spearman correlation per pair of maps (N x H x W each); a constant map correlates 0 (its ranks carry nothing)."""
    from scipy.stats import spearmanr

    a = np.asarray(maps_a, dtype=np.float64).reshape(len(maps_a), -1)
    b = np.asarray(maps_b, dtype=np.float64).reshape(len(maps_b), -1)
    out = np.zeros(len(a))
    for i in range(len(a)):
        if np.ptp(a[i]) > 0 and np.ptp(b[i]) > 0:
            out[i] = spearmanr(a[i], b[i]).statistic
    return np.nan_to_num(out)


def parameter_randomisation_check(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, method: str, *,
                                  threshold: float = DEFAULT_THRESHOLD, seed: int = 0,
                                  trained_maps: np.ndarray | None = None) -> SanityResult:
    """Compare `method`'s maps on the trained model and on a weight-randomised copy (same inputs and targets)."""
    from ferlab.explain.methods import attribute

    trained = attribute(model, x, targets, method) if trained_maps is None else trained_maps
    randomised = attribute(randomised_copy(model, seed), x, targets, method)
    rho = rank_correlations(trained, randomised)
    return SanityResult(method, len(rho), float(rho.mean()), float(rho.std()), threshold)
