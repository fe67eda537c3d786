"""What a source reader returns, the reader interface, and class ordering shared by all readers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from ferlab.labels import EMOTIONS

__all__ = ["DecodedSource", "SourceReader", "order_classes"]


@dataclass(frozen=True)
class DecodedSource:
    """Decoded samples of one source: uint8 N x S x S images, int64 labels into `classes`, splits, ids, meta.

    `splits` entries are canonical names, or "" when the source says nothing (the loader then carves a
    deterministic stratified split). `meta` is JSON-serialisable (corrupt/refused files, original sizes, ...).
    """

    images: np.ndarray
    labels: np.ndarray
    splits: np.ndarray
    ids: np.ndarray
    classes: tuple[str, ...]
    meta: dict = field(default_factory=dict)


class SourceReader(Protocol):
    """One on-disk format. `claims` must be cheap (suffix, header bytes); `read` decodes everything."""

    name: str

    def claims(self, path: Path) -> bool: ...

    def fingerprint(self, path: Path) -> dict: ...

    def read(self, path: Path, *, image_size: int, progress: bool) -> DecodedSource: ...


def order_classes(names: set[str] | list[str]) -> tuple[str, ...]:
    """Known emotions present, in `EMOTIONS` order, followed by any other class names sorted."""
    present = set(names)
    return tuple(c for c in EMOTIONS if c in present) + tuple(sorted(present - set(EMOTIONS)))
