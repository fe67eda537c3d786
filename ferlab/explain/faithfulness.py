"""Faithfulness of attribution maps: deletion and insertion curves (Petsiuk et al. 2018) and their AUC vs random.

Deletion: replace the most-attributed pixels first by a baseline (a blurred copy by default) and track the
target score; a faithful map makes it fall fast (low AUC). Insertion: start from the baseline and put the
pixels back in the same order; a faithful map makes it rise fast (high AUC). A method is flagged when its
insertion-minus-deletion AUC is no better than that of random attribution maps on the same faces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ferlab.errors import ConfigError

__all__ = [
    "BASELINES",
    "SCORES",
    "Curves",
    "FaithfulnessResult",
    "perturbation_curves",
    "auc",
    "random_attributions",
    "faithfulness",
]


def _blur(x: torch.Tensor) -> torch.Tensor:
    from torchvision.transforms.functional import gaussian_blur

    side = x.shape[-1]
    kernel = (side // 4) * 2 + 1
    return gaussian_blur(x, [kernel, kernel], [side / 8.0, side / 8.0])


#: What replaces a deleted pixel (computed on the preprocessed batch).
BASELINES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "blur": _blur,
    "mean": lambda x: x.mean(dim=(1, 2, 3), keepdim=True).expand_as(x),
    "zero": torch.zeros_like,
}

#: Which number the curves track: the target's softmax probability, or its logit (linear models: exact tests).
SCORES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "prob": lambda logits, t: torch.softmax(logits.float(), dim=1).gather(1, t[:, None])[:, 0],
    "logit": lambda logits, t: logits.float().gather(1, t[:, None])[:, 0],
}


@dataclass(frozen=True)
class Curves:
    """Per-face curves (N x steps+1) at `fractions` of pixels deleted / inserted."""

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray


@dataclass(frozen=True)
class FaithfulnessResult:
    """Mean AUCs of one method and of random maps on the same faces; `better_than_random` is the verdict."""

    method: str
    n_faces: int
    deletion_auc: float
    insertion_auc: float
    random_deletion_auc: float
    random_insertion_auc: float
    curves: Curves
    random_curves: Curves

    @property
    def score(self) -> float:
        """Insertion AUC minus deletion AUC (higher is better)."""
        return self.insertion_auc - self.deletion_auc

    @property
    def random_score(self) -> float:
        return self.random_insertion_auc - self.random_deletion_auc

    @property
    def better_than_random(self) -> bool:
        return self.score > self.random_score

    def as_dict(self) -> dict:
        return {"method": self.method, "n_faces": self.n_faces, "deletion_auc": self.deletion_auc,
                "insertion_auc": self.insertion_auc, "random_deletion_auc": self.random_deletion_auc,
                "random_insertion_auc": self.random_insertion_auc, "score": self.score,
                "random_score": self.random_score, "better_than_random": self.better_than_random}


def auc(fractions: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """Trapezoidal area under curve(s) over `fractions` (last axis)."""
    curve = np.asarray(curve, dtype=np.float64)
    widths = np.diff(np.asarray(fractions, dtype=np.float64))
    return ((curve[..., 1:] + curve[..., :-1]) / 2 * widths).sum(axis=-1)


def perturbation_curves(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, attributions: np.ndarray, *,
                        steps: int = 16, baseline: str = "blur", score: str = "prob", batch_size: int = 512) -> Curves:
    """Deletion and insertion curves for preprocessed faces x (N x C x H x W), ordering pixels by `attributions`.

    Pixels are taken in decreasing attribution (ties in raster order); step k changes round(k / steps * H * W).
    """
    if baseline not in BASELINES:
        raise ConfigError(f"unknown faithfulness baseline '{baseline}'; choose from {', '.join(BASELINES)}")
    if score not in SCORES:
        raise ConfigError(f"unknown faithfulness score '{score}'; choose from {', '.join(SCORES)}")
    n, _, h, w = x.shape
    attributions = np.asarray(attributions, dtype=np.float64).reshape(n, h * w)
    order = np.argsort(-attributions, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(h * w)[None].repeat(n, 0), axis=1)
    fractions = np.linspace(0.0, 1.0, steps + 1)
    counts = np.round(fractions * h * w).astype(np.int64)
    changed = torch.from_numpy(ranks[:, None, :] < counts[None, :, None]).view(n, steps + 1, 1, h, w)
    base = BASELINES[baseline](x)
    targets = targets.long()
    per_chunk = max(batch_size // (steps + 1), 1)
    deletion = np.empty((n, steps + 1))
    insertion = np.empty((n, steps + 1))
    model.eval()
    with torch.inference_mode():
        for s in range(0, n, per_chunk):
            xs, bs, m = x[s:s + per_chunk, None], base[s:s + per_chunk, None], changed[s:s + per_chunk].to(x.dtype)
            t = targets[s:s + per_chunk].repeat_interleave(steps + 1)
            for out, images in ((deletion, xs * (1 - m) + bs * m), (insertion, bs * (1 - m) + xs * m)):
                flat = images.reshape(-1, *x.shape[1:])
                out[s:s + per_chunk] = SCORES[score](model(flat), t).view(-1, steps + 1).cpu().numpy()
    return Curves(fractions, deletion, insertion)


def random_attributions(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Uniform random maps: the baseline a real method must beat."""
    return np.random.default_rng(seed).random(shape)


def faithfulness(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, attributions: np.ndarray, *,
                 method: str = "", steps: int = 16, baseline: str = "blur", seed: int = 0) -> FaithfulnessResult:
    """Deletion/insertion AUCs of `attributions` and of random maps on the same faces and targets."""
    curves = perturbation_curves(model, x, targets, attributions, steps=steps, baseline=baseline)
    rand = perturbation_curves(model, x, targets, random_attributions(np.shape(attributions), seed), steps=steps,
                               baseline=baseline)
    return FaithfulnessResult(
        method=method, n_faces=len(x),
        deletion_auc=float(auc(curves.fractions, curves.deletion).mean()),
        insertion_auc=float(auc(curves.fractions, curves.insertion).mean()),
        random_deletion_auc=float(auc(rand.fractions, rand.deletion).mean()),
        random_insertion_auc=float(auc(rand.fractions, rand.insertion).mean()),
        curves=curves, random_curves=rand,
    )
