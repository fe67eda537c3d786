"""Deterministic stratified carving of one split out of another (validation from train, test when none)."""

from __future__ import annotations

import numpy as np

__all__ = ["stratified_carve", "keep_copies_in_source"]


def stratified_carve(splits: np.ndarray, labels: np.ndarray, *, source: str, target: str, fraction: float,
                     seed: int) -> np.ndarray:
    """New splits array where `round(fraction * n_c)` samples of each label c of `source` become `target`.

    Deterministic for a given seed and input order; classes with a single sample stay in `source`.
    """
    rng = np.random.default_rng(seed)
    out = splits.astype(f"<U{max(12, len(target))}", copy=True)
    members_all = np.flatnonzero(splits == source)
    for label in np.unique(labels[members_all]):
        members = members_all[labels[members_all] == label]
        n_take = int(round(len(members) * fraction))
        if n_take and len(members) > 1:
            out[rng.permutation(members)[: min(n_take, len(members) - 1)]] = target
    return out


def keep_copies_in_source(splits: np.ndarray, hashes: np.ndarray, *, source: str, target: str) -> np.ndarray:
    """New splits array where every `target` sample whose content hash also occurs in `source` goes back to
    `source`: exact copies of training images then never sit in validation, where they reward memorising."""
    out = splits.copy()
    in_source = np.isin(hashes, hashes[splits == source])
    out[(splits == target) & in_source] = source
    return out
