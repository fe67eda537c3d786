"""Data audit: corrupt files, odd sizes, blank images, exact and near duplicates, leakage, label conflicts, imbalance.

Rules (documented because they decide what cleaning removes):
- *blank*: pixel standard deviation below `BLANK_STD` (grey levels 0-255): constant or near-constant images.
- *exact duplicates*: identical decoded pixels (the dataset's content hash).
- *cross-split duplicates* (leakage): an exact-duplicate group with members in two or more splits.
- *label conflicts*: an exact-duplicate group whose members carry different labels.
- *near duplicates*: same 64-bit DCT perceptual hash (pHash of the 32x32 area-resized image) but different
  pixels, e.g. re-encoded or slightly brightened copies. Blank images are left out: a constant image has no
  structure to hash, so any two of them would match whatever their grey level (they are reported as blank).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import numpy as np

from ferlab.data.dataset import FaceDataset

__all__ = ["AuditReport", "audit", "perceptual_hashes", "clean_exclusions", "CLEAN_POLICIES", "BLANK_STD"]

BLANK_STD = 3.0
CLEAN_POLICIES = ("duplicates", "blank", "conflicts", "leakage")
_TEST_SPLITS = ("test", "private_test")


@dataclass
class AuditReport:
    """What `ferlab data audit` reports; `to_dict()` is the `--json` object."""

    source: str
    num_images: int
    classes: list[str]
    class_counts: dict[str, dict[str, int]]
    corrupt_files: list
    refused_entries: list
    original_sizes: dict
    blank_images: list[str]
    exact_duplicate_groups: list[list[str]]
    cross_split_duplicate_groups: list[list[str]]
    label_conflict_groups: list[list[str]]
    near_duplicate_groups: list[list[str]] | None  # None: not searched (`near_duplicates=False`), not "none found"
    imbalance: dict = field(default_factory=dict)
    skipped_files: int = 0  # files not images by their suffix (notes, Thumbs.db ...) and hidden files (.name, __MACOSX)
    unlabelled_files: list[str] = field(default_factory=list)  # images in no class folder: in no other count
    train_by_default: int = 0  # images outside any split folder of a source that has splits: counted as train

    def to_dict(self) -> dict:
        out = asdict(self)
        for key in ("corrupt_files", "blank_images", "exact_duplicate_groups", "cross_split_duplicate_groups",
                    "label_conflict_groups", "near_duplicate_groups", "unlabelled_files"):
            out[f"{key}_count"] = None if out[key] is None else len(out[key])
        out["exact_duplicate_images"] = sum(len(g) for g in self.exact_duplicate_groups)
        return out


def perceptual_hashes(images: np.ndarray, batch: int = 4096) -> np.ndarray:
    """64-bit DCT perceptual hash per image (uint64), computed in batches with torch and scipy."""
    import torch
    import torch.nn.functional as F
    from scipy.fft import dctn

    out = np.empty(len(images), dtype=np.uint64)
    weights = (1 << np.arange(64, dtype=np.uint64)).astype(np.uint64)
    for lo in range(0, len(images), batch):
        x = torch.from_numpy(np.ascontiguousarray(images[lo:lo + batch])).float().unsqueeze(1)
        small = F.interpolate(x, size=(32, 32), mode="area").squeeze(1).numpy()
        low = dctn(small, axes=(1, 2), norm="ortho")[:, :8, :8].reshape(len(small), 64)
        bits = low > np.median(low[:, 1:], axis=1, keepdims=True)
        out[lo:lo + batch] = (bits.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)
    return out


def _groups(keys: np.ndarray) -> list[np.ndarray]:
    """Indices of every key shared by 2+ samples, groups ordered by their first member."""
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(counts)[:-1]
    groups = [g for g in np.split(order, bounds) if len(g) > 1]
    return sorted(groups, key=lambda g: int(g[0]))


def audit(ds: FaceDataset, *, near_duplicates: bool = True) -> AuditReport:
    """Audit a loaded dataset; pure over its arrays and loader metadata.

    Images in no class folder (label -1) are only listed as unlabelled: they are in no other count, so a stray
    copy of a labelled image is neither its duplicate nor a label conflict, and cleaning never keeps it instead.
    """
    unlabelled = [str(i) for i in ds.meta.get("unlabelled_files", [])]
    ds = ds.subset(np.flatnonzero(ds.labels >= 0))
    ids = ds.ids
    blank = np.flatnonzero(ds.images.reshape(len(ds), -1).std(axis=1) < BLANK_STD) if len(ds) else np.array([])
    exact = _groups(ds.hashes)
    cross = [g for g in exact if len(set(ds.splits[g].tolist())) > 1]
    conflicts = [g for g in exact if len(set(ds.labels[g].tolist())) > 1]
    near: list[np.ndarray] = []
    structured = np.setdiff1d(np.arange(len(ds)), blank)
    if near_duplicates and len(structured):
        for g in _groups(perceptual_hashes(ds.images[structured])):
            members = structured[g]
            if len(set(ds.hashes[members].tolist())) > 1:  # not merely an exact-duplicate group
                near.append(members)
    totals = np.bincount(ds.labels[ds.labels >= 0], minlength=len(ds.classes)) if len(ds) else np.zeros(0)
    imbalance = {}
    if totals.size and totals.sum():
        nonzero = totals[totals > 0]
        imbalance = {
            "largest_to_smallest": round(float(nonzero.max() / nonzero.min()), 2),
            "smallest_class": ds.classes[int(np.argmin(np.where(totals > 0, totals, totals.max() + 1)))],
            "smallest_share": round(float(nonzero.min() / totals.sum()), 4),
            "shares": {c: round(float(t / totals.sum()), 4) for c, t in zip(ds.classes, totals, strict=True)},
        }

    def named(groups: Iterable[np.ndarray]) -> list[list[str]]:
        return [[str(ids[i]) for i in g] for g in groups]

    return AuditReport(
        source=ds.source,
        num_images=len(ds),
        classes=list(ds.classes),
        class_counts=ds.class_counts(),
        corrupt_files=list(ds.meta.get("corrupt_files", [])),
        refused_entries=list(ds.meta.get("refused_entries", [])),
        original_sizes=dict(ds.meta.get("original_sizes", {})),
        blank_images=[str(ids[i]) for i in blank],
        exact_duplicate_groups=named(exact),
        cross_split_duplicate_groups=named(cross),
        label_conflict_groups=named(conflicts),
        near_duplicate_groups=named(near) if near_duplicates else None,
        imbalance=imbalance,
        skipped_files=int(ds.meta.get("skipped_files", 0)),
        unlabelled_files=unlabelled,
        train_by_default=int(ds.meta.get("train_by_default", 0)),
    )


def clean_exclusions(ds: FaceDataset, report: AuditReport, policy: Iterable[str]) -> dict[str, list[str]]:
    """id -> reasons to exclude, for the chosen policies. Test splits are never altered.

    duplicates: keep the first member of each exact-duplicate group within a split, drop the others;
    blank: drop blank images; conflicts: drop every member of a label-conflict group;
    leakage: drop the training/validation copies of images that also appear in a test split.
    """
    split_of = dict(zip(ds.ids.tolist(), ds.splits.tolist(), strict=True))
    excluded: dict[str, list[str]] = {}

    def add(sample_id: str, reason: str) -> None:
        if split_of.get(sample_id) not in _TEST_SPLITS:
            excluded.setdefault(sample_id, []).append(reason)

    policy = list(policy)
    if "duplicates" in policy:
        for group in report.exact_duplicate_groups:
            seen_splits: set[str] = set()
            for sample_id in group:
                if split_of[sample_id] in seen_splits:
                    add(sample_id, "duplicate")
                seen_splits.add(split_of[sample_id])
    if "blank" in policy:
        for sample_id in report.blank_images:
            add(sample_id, "blank")
    if "conflicts" in policy:
        for group in report.label_conflict_groups:
            for sample_id in group:
                add(sample_id, "label_conflict")
    if "leakage" in policy:
        for group in report.cross_split_duplicate_groups:
            if any(split_of[s] in _TEST_SPLITS for s in group):
                for sample_id in group:
                    add(sample_id, "leakage")
    return excluded
