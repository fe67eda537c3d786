"""Mixup and CutMix on a batch: mixed images plus soft targets, drawn from a given generator."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["one_hot", "mixup", "cutmix", "mix_batch"]


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    return F.one_hot(labels, num_classes).float()


def _beta(alpha: float, gen: torch.Generator) -> float:
    """Beta(alpha, alpha), seeded from `gen` so the draw is reproducible."""
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def mixup(x: torch.Tensor, targets: torch.Tensor, alpha: float, gen: torch.Generator
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Blend each image with a partner of a random permutation: x' = l*x + (1-l)*x[p], same for soft targets."""
    lam = _beta(alpha, gen)
    perm = torch.randperm(x.shape[0], generator=gen).to(x.device)
    return x * lam + x[perm] * (1 - lam), targets * lam + targets[perm] * (1 - lam)


def cutmix(x: torch.Tensor, targets: torch.Tensor, alpha: float, gen: torch.Generator
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Paste a random box from a partner image; targets mix by the pasted area."""
    lam = _beta(alpha, gen)
    perm = torch.randperm(x.shape[0], generator=gen).to(x.device)
    h, w = x.shape[-2:]
    cut = (1 - lam) ** 0.5
    ch, cw = int(h * cut), int(w * cut)
    cy, cx = int(torch.randint(0, h, (1,), generator=gen)), int(torch.randint(0, w, (1,), generator=gen))
    y0, y1 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
    x0, x1 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
    mixed = x.clone()
    mixed[..., y0:y1, x0:x1] = x[perm][..., y0:y1, x0:x1]
    area = (y1 - y0) * (x1 - x0) / (h * w)
    return mixed, targets * (1 - area) + targets[perm] * area


def mix_batch(x: torch.Tensor, labels: torch.Tensor, num_classes: int, *, mixup_alpha: float, cutmix_alpha: float,
              gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft targets for a batch mixed by mixup or cutmix (one of the enabled, chosen at random per batch);
    without mixing, the int labels themselves (so the loss can use torch's fused kernel)."""
    choices = [fn for fn, a in ((mixup, mixup_alpha), (cutmix, cutmix_alpha)) if a > 0]
    if not choices:
        return x, labels
    targets = one_hot(labels, num_classes)
    pick = int(torch.randint(0, len(choices), (1,), generator=gen)) if len(choices) > 1 else 0
    alpha = mixup_alpha if choices[pick] is mixup else cutmix_alpha
    return choices[pick](x, targets, alpha, gen)
