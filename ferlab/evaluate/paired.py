"""Two models scored on the same images: the accuracy difference, its interval and McNemar's exact test.

Two accuracies measured on one split share its images, so comparing their separate intervals overstates the doubt;
what decides is how often exactly one of the two models is right (the discordant pairs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ferlab.errors import DataError
from ferlab.evaluate.report import EvalReport, json_safe

__all__ = ["PairedComparison", "compare_paired"]

_Z95 = 1.959963984540054  # two-sided 95 % quantile of the standard normal


@dataclass(frozen=True)
class PairedComparison:
    """Model A against model B on the same images; `to_dict()` is the `paired` object of `ferlab eval --json`."""

    model: str
    against: str
    num_images: int
    accuracy: float
    against_accuracy: float
    difference: float  # accuracy - against_accuracy
    difference_ci95: tuple[float, float]  # normal approximation for paired proportions
    only_model_correct: int
    only_against_correct: int
    mcnemar_p: float  # exact (binomial) McNemar test of "both models are equally accurate"

    def to_dict(self) -> dict[str, Any]:
        return json_safe(dict(self.__dict__))

    def summary(self) -> str:
        """Two lines for the terminal."""
        lo, hi = (100 * v for v in self.difference_ci95)
        return (f"  against {self.against}: accuracy {self.against_accuracy:.4f} on the same {self.num_images} images\n"
                f"  difference {100 * self.difference:+.2f} points (95% CI {lo:+.2f} to {hi:+.2f}); right only here "
                f"{self.only_model_correct}, only there {self.only_against_correct}; McNemar exact p = "
                f"{self.mcnemar_p:.3g}")


def _aligned_outcomes(report: EvalReport, ids: np.ndarray) -> np.ndarray:
    where = {image_id: i for i, image_id in enumerate(report.image_ids.tolist())}
    return report.correct[[where[i] for i in ids.tolist()]]


def compare_paired(model: EvalReport, against: EvalReport) -> PairedComparison:
    """Compare two reports image by image; DataError unless both scored exactly the same images."""
    ids_a, ids_b = np.asarray(model.image_ids).astype(str), np.asarray(against.image_ids).astype(str)
    if len(ids_a) == 0 or len(ids_a) != len(np.unique(ids_a)) or set(ids_a.tolist()) != set(ids_b.tolist()):
        raise DataError(f"the two models were not scored on the same images ({len(ids_a)} vs {len(ids_b)}); a paired "
                        f"comparison needs one split and one class scheme")
    a = np.asarray(model.correct, dtype=bool)
    b = _aligned_outcomes(against, ids_a).astype(bool)
    n = len(a)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    diff = (only_a - only_b) / n
    se = math.sqrt(max(only_a + only_b - (only_a - only_b) ** 2 / n, 0.0)) / n
    discordant = only_a + only_b
    if discordant:
        from scipy.stats import binomtest

        p = float(binomtest(only_a, discordant, 0.5).pvalue)
    else:
        p = 1.0
    return PairedComparison(model=model.checkpoint, against=against.checkpoint, num_images=n,
                            accuracy=float(a.mean()), against_accuracy=float(b.mean()), difference=diff,
                            difference_ci95=(diff - _Z95 * se, diff + _Z95 * se), only_model_correct=only_a,
                            only_against_correct=only_b, mcnemar_p=p)
