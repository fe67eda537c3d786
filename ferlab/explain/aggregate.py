"""Dataset-level aggregation of attribution maps: exact running means per (class, correct/mistake) group.

Pure numpy (no torch, no model): the dataset report feeds it batch by batch, tests feed it synthetic maps.
Heat maps are averaged after per-map scaling to [0, 1] (`ferlab.explain.methods.normalise`), so every face
counts the same; region shares are averaged over the maps that have positive mass (a map without any
evidence has no shares to contribute).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ferlab.errors import ConfigError
from ferlab.explain.regions import LABELS, OTHER, REGIONS, region_areas

__all__ = ["GROUPS", "SHARE_NAMES", "GroupAccumulator", "batch_region_shares", "area_fractions", "stratified_indices"]

#: Column groups of the report: faces the model got right, and the ones it got wrong (both by true class).
GROUPS: tuple[str, ...] = ("correct", "mistakes")
#: Order of the share columns: the five facial regions, then everything else.
SHARE_NAMES: tuple[str, ...] = (*REGIONS, OTHER)
_SHARE_LABEL_IDS = np.asarray([LABELS.index(name) for name in SHARE_NAMES])


def batch_region_shares(raw: np.ndarray, label_map: np.ndarray) -> np.ndarray:
    """Region shares of N maps at once (N x len(SHARE_NAMES)), as `regions.region_shares` per map; 0 rows = no mass."""
    raw = np.clip(np.nan_to_num(np.asarray(raw, dtype=np.float64)), 0.0, None)
    labels = np.asarray(label_map, dtype=np.int64)
    if raw.ndim != 3 or raw.shape[1:] != labels.shape:
        raise ConfigError(f"attribution maps {raw.shape} do not match the label map {labels.shape}")
    onehot = (labels.ravel()[None, :] == np.arange(len(LABELS))[:, None]).astype(np.float64)  # L x HW
    mass = raw.reshape(len(raw), -1) @ onehot.T  # N x L
    total = mass.sum(axis=1, keepdims=True)
    shares = np.divide(mass, total, out=np.zeros_like(mass), where=total > 0)
    return shares[:, _SHARE_LABEL_IDS]


@dataclass
class GroupAccumulator:
    """Running sums of heat maps, faces and region shares per true class x GROUPS; means are exact at any point."""

    n_classes: int
    size: int
    heat_sum: np.ndarray = field(init=False, repr=False)
    face_sum: np.ndarray = field(init=False, repr=False)
    count: np.ndarray = field(init=False)
    share_sum: np.ndarray = field(init=False, repr=False)
    share_count: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        cells = (self.n_classes, len(GROUPS))
        self.heat_sum = np.zeros((*cells, self.size, self.size))
        self.face_sum = np.zeros((*cells, self.size, self.size))
        self.count = np.zeros(cells, dtype=np.int64)
        self.share_sum = np.zeros((*cells, len(SHARE_NAMES)))
        self.share_count = np.zeros(cells, dtype=np.int64)

    def add(self, heat: np.ndarray, faces: np.ndarray, true: np.ndarray, correct: np.ndarray,
            shares: np.ndarray) -> None:
        """Add a batch: heat N x H x W in [0, 1], faces N x H x W, true class N, correct N bool, shares N x S."""
        heat = np.asarray(heat, dtype=np.float64)
        true = np.asarray(true, dtype=np.int64)
        group = np.where(np.asarray(correct, dtype=bool), 0, 1)
        shares = np.asarray(shares, dtype=np.float64)
        if heat.shape[1:] != (self.size, self.size) or not (len(heat) == len(faces) == len(true) == len(shares)):
            raise ConfigError(f"batch shapes disagree: heat {heat.shape}, faces {np.shape(faces)}, "
                              f"labels {true.shape}, shares {shares.shape}")
        if len(true) and (true.min() < 0 or true.max() >= self.n_classes):
            raise ConfigError(f"true class indices must lie in [0, {self.n_classes})")
        has_mass = shares.sum(axis=1) > 0
        np.add.at(self.heat_sum, (true, group), heat)
        np.add.at(self.face_sum, (true, group), np.asarray(faces, dtype=np.float64))
        np.add.at(self.count, (true, group), 1)
        np.add.at(self.share_sum, (true[has_mass], group[has_mass]), shares[has_mass])
        np.add.at(self.share_count, (true[has_mass], group[has_mass]), 1)

    @staticmethod
    def _mean(total: np.ndarray, count: np.ndarray) -> np.ndarray:
        shape = count.shape + (1,) * (total.ndim - count.ndim)
        n = count.reshape(shape).astype(np.float64)
        return np.divide(total, n, out=np.full_like(total, np.nan), where=n > 0)

    def mean_heatmaps(self) -> np.ndarray:
        """classes x GROUPS x H x W mean heat maps (NaN where a cell has no face)."""
        return self._mean(self.heat_sum, self.count)

    def mean_faces(self) -> np.ndarray:
        """classes x GROUPS x H x W mean faces (NaN where a cell has no face)."""
        return self._mean(self.face_sum, self.count)

    def mean_shares(self) -> np.ndarray:
        """classes x GROUPS x len(SHARE_NAMES) mean region shares (rows sum to 1; NaN where no map had mass)."""
        return self._mean(self.share_sum, self.share_count)

    @property
    def n_correct(self) -> int:
        return int(self.count[:, 0].sum())

    @property
    def n_images(self) -> int:
        return int(self.count.sum())


def area_fractions(label_map: np.ndarray) -> np.ndarray:
    """Area fraction of each SHARE_NAMES region in the label map (what per-area shares divide by)."""
    areas = region_areas(label_map)
    return np.asarray([areas[name] for name in SHARE_NAMES])



def stratified_indices(labels: np.ndarray, limit: int | None) -> np.ndarray:
    """Sorted indices of at most `limit` samples: each class gets its proportional quota (largest remainders,
    at least one per class while the limit allows), evenly spaced within the class. Deterministic."""
    labels = np.asarray(labels)
    n = len(labels)
    if limit is None or limit >= n:
        return np.arange(n)
    if limit < 1:
        raise ConfigError(f"the limit must be >= 1, got {limit}")
    classes, counts = np.unique(labels, return_counts=True)
    quota = np.zeros(len(classes), dtype=np.int64)
    if limit >= len(classes):
        quota += 1  # every class present gets a face
    exact = (limit - quota.sum()) * (counts - quota) / max((counts - quota).sum(), 1)
    quota += np.floor(exact).astype(np.int64)
    left = limit - int(quota.sum())
    order = np.lexsort((np.arange(len(classes)), -(exact - np.floor(exact))))  # largest remainder, then class order
    for k in order:
        if left <= 0:
            break
        if quota[k] < counts[k]:
            quota[k] += 1
            left -= 1
    picked = []
    for cls, q in zip(classes, np.minimum(quota, counts), strict=True):
        members = np.flatnonzero(labels == cls)
        if q > 0:
            picked.append(members[np.linspace(0, len(members) - 1, num=int(q)).round().astype(np.int64)])
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)
