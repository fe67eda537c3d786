"""`FaceDataset`: decoded faces as uint8 arrays with labels, splits, ids and content hashes."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from ferlab.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ferlab.data.schemes import ClassScheme

__all__ = ["FaceDataset", "SPLITS"]

#: Split names used everywhere. `test` is FER2013 PublicTest, `private_test` is PrivateTest.
SPLITS: tuple[str, ...] = ("train", "val", "test", "private_test")


@dataclass(frozen=True, eq=False)
class FaceDataset:
    """N grayscale faces (uint8 N x H x W) with int64 labels into `classes`, split names, ids and hashes."""

    images: np.ndarray
    labels: np.ndarray
    splits: np.ndarray
    classes: tuple[str, ...]
    ids: np.ndarray
    hashes: np.ndarray
    source: str = ""
    fingerprint: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.images)
        for name in ("labels", "splits", "ids", "hashes"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"FaceDataset.{name} has {len(getattr(self, name))} entries, images has {n}")
        if self.images.dtype != np.uint8 or self.images.ndim != 3:
            raise ValueError(f"FaceDataset.images must be uint8 N x H x W, got {self.images.dtype} {self.images.shape}")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_size(self) -> int:
        return int(self.images.shape[1]) if self.images.ndim == 3 else 0

    @property
    def split_names(self) -> tuple[str, ...]:
        """Splits present, in canonical order."""
        present = set(np.unique(self.splits).tolist())
        return tuple(s for s in SPLITS if s in present) + tuple(sorted(present - set(SPLITS)))

    def subset(self, index: np.ndarray | list[int] | slice) -> FaceDataset:
        """A dataset holding only the selected samples (boolean mask or integer indices)."""
        if not isinstance(index, slice):
            index = np.asarray(index)
            if index.size == 0:  # np.asarray([]) is float: an empty selection from a comprehension
                index = index.astype(np.int64)
        return replace(
            self,
            images=self.images[index],
            labels=self.labels[index],
            splits=self.splits[index],
            ids=self.ids[index],
            hashes=self.hashes[index],
        )

    def split(self, name: str) -> FaceDataset:
        """The samples of one split; `test` falls back to `private_test` when a source has no PublicTest."""
        if name == "all":
            return self
        mask = self.splits == name
        if not mask.any() and name == "test" and (self.splits == "private_test").any():
            warnings.warn("no PublicTest images in this source: using its PrivateTest images as 'test'", stacklevel=2)
            mask = self.splits == "private_test"
        if not mask.any():
            hint = (" (a validation carve of this source's train split is empty: too few images for its fraction)"
                    if name == "val" and "train" in self.split_names else "")
            raise DataError(f"split '{name}' is empty in {self.source or 'this dataset'}; splits present: "
                            f"{', '.join(self.split_names) or 'none'}{hint}")
        return self.subset(mask)

    def with_validation(self, fraction: float = 0.1, seed: int = 0, *, no_copies: bool = False) -> FaceDataset:
        """Carve a deterministic, stratified validation split out of `train` (no-op if `val` exists).
        `no_copies`: images with an exact copy left in `train` go back to `train` (validation shrinks a little)."""
        if (self.splits == "val").any():
            return self
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0.0 < fraction < 1.0:
            raise DataError(f"validation fraction must be a number in (0, 1), got {fraction!r}")
        from ferlab.data.splits import stratified_carve

        splits = stratified_carve(self.splits, self.labels, source="train", target="val", fraction=fraction, seed=seed)
        if no_copies:
            from ferlab.data.splits import keep_copies_in_source

            splits = keep_copies_in_source(splits, self.hashes, source="train", target="val")
        return replace(self, splits=splits)

    def with_scheme(self, scheme: ClassScheme | str) -> FaceDataset:
        """Relabel into `scheme`'s classes (merging as it says) and drop samples of dropped classes; a spec such as
        "4" or "pos=happy;neg=sad" is resolved first."""
        from ferlab.data.schemes import resolve_scheme

        scheme = resolve_scheme(scheme)  # a ClassScheme is returned as it is
        new_labels = scheme.map_labels(self.labels, self.classes)
        keep = new_labels >= 0
        kept = replace(self, labels=new_labels, classes=tuple(scheme.classes)).subset(keep)
        return kept

    def exclude(self, ids: str | set[str] | list[str]) -> FaceDataset:
        """Drop the samples whose id is in `ids` (e.g. a cleaning manifest); one id may be given as a string."""
        # a str is one id, not its characters; compared as Python strings (the ids' fixed width cut longer ones)
        wanted = {ids} if isinstance(ids, str) else {str(i) for i in ids}
        drop = np.fromiter((str(i) in wanted for i in self.ids), dtype=bool, count=len(self.ids))
        return self.subset(~drop)

    def class_counts(self) -> dict[str, dict[str, int]]:
        """split -> class -> count, every class listed (zero included)."""
        counts: dict[str, dict[str, int]] = {}
        for split in self.split_names:
            labels = self.labels[self.splits == split]
            counts[split] = {c: int((labels == i).sum()) for i, c in enumerate(self.classes)}
        return counts

    def torch_view(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(uint8 N x 1 x H x W tensor, int64 labels) sharing memory with the arrays."""
        import torch

        return torch.from_numpy(np.ascontiguousarray(self.images)).unsqueeze(1), torch.from_numpy(
            np.ascontiguousarray(self.labels).astype(np.int64, copy=False)
        )
