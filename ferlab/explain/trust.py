"""Trust checks of attribution methods on a sample of faces: faithfulness vs random maps, and the sanity check.

Builds on `ferlab.explain.faithfulness` (deletion/insertion AUC, random baseline) and `ferlab.explain.sanity`
(model-parameter randomisation). A method is flagged when it is not *significantly* more faithful than random
maps (one-sided paired Wilcoxon test on the per-face insertion-minus-deletion AUC, so that noise alone never
earns a pass) or when its maps hardly change once the model's weights are randomised.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ferlab.explain.faithfulness import FaithfulnessResult, auc, faithfulness
from ferlab.explain.methods import attribute
from ferlab.explain.sanity import DEFAULT_THRESHOLD, SanityResult, randomised_copy, rank_correlations

__all__ = ["ALPHA", "MethodTrust", "faithfulness_p_value", "faithfulness_entry", "sanity_entry", "trust_checks",
           "batched_attribute"]

#: Significance level of "better than random" (one-sided paired Wilcoxon signed-rank test over faces).
ALPHA = 0.05


@dataclass(frozen=True)
class MethodTrust:
    """Faithfulness and sanity verdicts of one method (JSON-able dicts) plus its mean curves for the plot."""

    method: str
    faithfulness: dict
    sanity: dict
    curves: dict[str, list[float]]


def batched_attribute(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, method: str,
                      batch_size: int = 64) -> np.ndarray:
    """`attribute` in chunks (ScoreCAM, occlusion and IG multiply the batch internally)."""
    parts = [attribute(model, x[s:s + batch_size], targets[s:s + batch_size], method)
             for s in range(0, len(x), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0, *x.shape[-2:]), dtype=np.float32)


def faithfulness_p_value(result: FaithfulnessResult) -> float:
    """One-sided paired Wilcoxon p-value of "the method's per-face AUC score beats random maps' on the same face"."""
    from scipy.stats import wilcoxon

    f = result.curves.fractions
    ours = auc(f, result.curves.insertion) - auc(f, result.curves.deletion)
    rand = auc(f, result.random_curves.insertion) - auc(f, result.random_curves.deletion)
    diff = ours - rand
    if len(diff) < 2 or not np.any(diff != 0):
        return 1.0
    p = float(wilcoxon(diff, alternative="greater").pvalue)
    return p if np.isfinite(p) else 1.0


def faithfulness_entry(result: FaithfulnessResult) -> dict:
    """The report's faithfulness record: AUCs, random AUCs, p-value, and `better_than_random` (significant win)."""
    p = faithfulness_p_value(result)
    entry = {k: v for k, v in result.as_dict().items() if k != "better_than_random"}
    entry.update(p_value=p, alpha=ALPHA, better_than_random=bool(result.score > result.random_score and p < ALPHA))
    return entry


def sanity_entry(result: SanityResult) -> dict:
    """The report's sanity record: mean Spearman rank correlation trained vs randomised model, and the verdict."""
    return {"rank_correlation": result.spearman_mean, "rank_correlation_std": result.spearman_std,
            "threshold": result.threshold, "n_faces": result.n_faces, "passed": result.passed}


def _mean_curves(result: FaithfulnessResult) -> dict[str, list[float]]:
    c, r = result.curves, result.random_curves
    return {"fractions": c.fractions.tolist(), "deletion": c.deletion.mean(axis=0).tolist(),
            "insertion": c.insertion.mean(axis=0).tolist(), "random_deletion": r.deletion.mean(axis=0).tolist(),
            "random_insertion": r.insertion.mean(axis=0).tolist()}


def trust_checks(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, methods: Sequence[str], *,
                 batch_size: int = 64, steps: int = 16, baseline: str = "blur", seed: int = 0,
                 threshold: float = DEFAULT_THRESHOLD, progress: bool = False) -> list[MethodTrust]:
    """Faithfulness (vs random maps) and sanity (vs a weight-randomised copy) of each method on faces x."""
    from tqdm import tqdm

    targets = torch.as_tensor(targets).long()
    randomised = randomised_copy(model, seed)
    out = []
    bar = tqdm(methods, desc="trust checks", unit="method", file=sys.stderr, disable=not progress, leave=False)
    for method in bar:
        bar.set_postfix_str(method)
        trained = batched_attribute(model, x, targets, method, batch_size)
        faith = faithfulness(model, x, targets, trained, method=method, steps=steps, baseline=baseline, seed=seed)
        rho = rank_correlations(trained, batched_attribute(randomised, x, targets, method, batch_size))
        sanity = SanityResult(method, len(rho), float(rho.mean()) if len(rho) else 0.0,
                              float(rho.std()) if len(rho) else 0.0, threshold)
        out.append(MethodTrust(method, faithfulness_entry(faith), sanity_entry(sanity), _mean_curves(faith)))
    return out
