"""`load(source)`: pick the source reader, decode once into the cache, re-use it while the source is unchanged.

The cache key holds the reader, the resolved path, the source fingerprint (zip/CSV: size and mtime;
folder: the hashed listing of paths, sizes and mtimes), the image size and the resize policy.
Sources without splits get a deterministic stratified test split (`test_fraction`, `split_seed`) after
the cache, so changing those never re-decodes.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ferlab.data.cache import DatasetCache, cache_key
from ferlab.data.dataset import FaceDataset
from ferlab.data.decode import RESIZE_POLICY
from ferlab.data.sources import find_reader
from ferlab.data.splits import stratified_carve
from ferlab.errors import ConfigError

__all__ = ["load", "content_hashes"]


def content_hashes(images: np.ndarray) -> np.ndarray:
    """BLAKE2b-128 hex digest of each image's decoded pixels (exact-duplicate detection)."""
    return np.array([hashlib.blake2b(img.tobytes(), digest_size=16).hexdigest() for img in images], dtype="<U32")


def _decode(reader, path: Path, key: str, image_size: int, progress: bool) -> FaceDataset:  # noqa: ANN001
    start = time.perf_counter()
    decoded = reader.read(path, image_size=image_size, progress=progress)
    meta = {
        **decoded.meta,
        "reader": reader.name,
        "image_size": image_size,
        "resize_policy": RESIZE_POLICY,
        "split_origin": "source" if (decoded.splits != "").any() else "none",
        # With splits in the source, images outside any split folder count as train: said, not silent.
        "train_by_default": int(((decoded.splits == "") & (decoded.labels >= 0)).sum())
        if (decoded.splits != "").any() else 0,
        "decode_seconds": round(time.perf_counter() - start, 3),
    }
    splits = np.where(decoded.splits == "", "train", decoded.splits).astype("<U12")
    return FaceDataset(images=decoded.images, labels=decoded.labels, splits=splits, classes=decoded.classes,
                       ids=decoded.ids, hashes=content_hashes(decoded.images), source=str(path), fingerprint=key,
                       meta=meta)


def load(
    source: str | os.PathLike,
    *,
    image_size: int = 48,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    progress: bool = True,
    manifest: str | os.PathLike | None = None,
    test_fraction: float = 0.2,
    split_seed: int = 0,
) -> FaceDataset:
    """Load a FER2013 zip/folder/CSV or any class-per-folder dataset as a FaceDataset (decoded once, cached).

    `manifest` applies a cleaning manifest from `ferlab data audit --exclude`. Sources without splits get a
    stratified `test` split of `test_fraction` (seeded by `split_seed`).
    """
    if isinstance(image_size, bool) or not isinstance(image_size, int | np.integer) or not 8 <= image_size <= 1024:
        raise ConfigError(f"image_size must be a whole number between 8 and 1024, got {image_size!r}")
    if not 0 < test_fraction < 1:  # a negative fraction sliced a 50/50 split; 1 or more left ~no training images
        raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    path = Path(source).expanduser().resolve()
    reader = find_reader(path)
    key = cache_key({"reader": reader.name, "path": str(path), "source": reader.fingerprint(path),
                     "image_size": int(image_size), "policy": RESIZE_POLICY})
    ds = None
    if use_cache:
        store = DatasetCache(cache_dir)
        store.ensure_writable()
        ds = store.get(key)
    if ds is None:
        ds = _decode(reader, path, key, int(image_size), progress)
        if use_cache:
            store.put(key, ds)
    if progress and (ds.meta.get("corrupt_files") or ds.meta.get("refused_entries")):  # fresh or cached alike
        print(f"ferlab: {len(ds.meta.get('corrupt_files', []))} corrupt and "
              f"{len(ds.meta.get('refused_entries', []))} refused files skipped in {path} "
              "(listed by `ferlab data audit`)", file=sys.stderr)
    if ds.meta.get("split_origin") == "none":
        splits = stratified_carve(ds.splits, ds.labels, source="train", target="test", fraction=test_fraction,
                                  seed=split_seed)
        ds = replace(ds, splits=splits, meta={**ds.meta, "split_origin": f"stratified(test={test_fraction}, "
                                                                          f"seed={split_seed})"})
    if manifest is not None:
        from ferlab.data.manifest import apply_manifest

        ds = apply_manifest(ds, manifest)
    return ds
