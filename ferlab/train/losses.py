"""Losses on soft targets (cross-entropy with label smoothing, focal; optional class weights) and a balanced sampler."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["LOSSES", "soft_targets", "cross_entropy", "focal_loss", "build_loss", "class_weights",
           "balanced_indices"]


def soft_targets(labels_or_probs: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """Int labels or soft targets -> probabilities N x C, smoothed towards uniform by `smoothing`."""
    t = F.one_hot(labels_or_probs, num_classes).float() if labels_or_probs.ndim == 1 else labels_or_probs.float()
    return t * (1 - smoothing) + smoothing / num_classes if smoothing else t


def _weighted_mean(per_class: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    # Same normalisation as torch's weighted cross-entropy: sum(w_y * l) / sum(w_y) (reduces to a plain mean).
    if weight is None:
        return per_class.sum(1).mean()
    w = weight.to(per_class)
    return (per_class * w).sum() / (targets * w).sum().clamp_min(1e-12)


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, *, gamma: float = 2.0, smoothing: float = 0.0,
               weight: torch.Tensor | None = None) -> torch.Tensor:
    """Focal loss (Lin et al. 2017) on int or soft targets: -sum t * (1 - p)^gamma * log p; gamma 0 is CE."""
    t = soft_targets(targets, logits.shape[1], smoothing)
    logp = F.log_softmax(logits.float(), dim=1)
    per_class = -t * logp
    if gamma:
        per_class = per_class * (1 - logp.exp()).pow(gamma)
    return _weighted_mean(per_class, t, weight)


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, *, smoothing: float = 0.0,
                  weight: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy with label smoothing and class weights, on int or soft (mixup) targets."""
    if targets.ndim == 1:  # hard labels: torch's fused kernel, same normalisation
        return F.cross_entropy(logits.float(), targets, weight=weight, label_smoothing=smoothing)
    return focal_loss(logits, targets, gamma=0.0, smoothing=smoothing, weight=weight)


#: name -> loss(logits, targets, *, smoothing, weight).
LOSSES: dict[str, Callable[..., torch.Tensor]] = {"ce": cross_entropy, "focal": focal_loss}


def build_loss(name: str, *, smoothing: float = 0.0, weight: torch.Tensor | None = None,
               gamma: float = 2.0) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A loss callable(logits, targets) by registry name with its options bound."""
    fn = LOSSES[name]
    extra = {"gamma": gamma} if fn is focal_loss else {}
    return lambda logits, targets: fn(logits, targets, smoothing=smoothing, weight=weight, **extra)


def class_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    """Inverse-frequency weights normalised to mean 1 over present classes (sklearn's 'balanced')."""
    counts = np.bincount(labels[labels >= 0], minlength=num_classes).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / (num_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


def balanced_indices(labels: torch.Tensor, num_samples: int, gen: torch.Generator) -> torch.Tensor:
    """`num_samples` indices drawn with replacement so every class is equally likely (one multinomial call)."""
    counts = torch.bincount(labels, minlength=int(labels.max()) + 1).double()
    probs = (1.0 / counts.clamp_min(1))[labels]
    return torch.multinomial(probs, num_samples, replacement=True, generator=gen)
