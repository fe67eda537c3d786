"""Decoded-dataset cache: one uncompressed `.npz` per (source fingerprint, decode settings), written atomically.

Location: `cache_dir=` argument, else `$FERLAB_CACHE_DIR`, else `platformdirs.user_cache_dir("ferlab")/datasets`.
Uncompressed storage keeps a warm load of FER2013 (32k x 48 x 48) to a plain read of ~75 MB.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np

from ferlab.data.dataset import FaceDataset
from ferlab.errors import DataError
from ferlab.io import atomic_open

__all__ = ["CACHE_VERSION", "DatasetCache", "cache_key", "default_cache_dir"]

CACHE_VERSION = 4  # 2: class from the nearest emotion-named folder; unlabelled files and duplicate zip names listed
#                   3: contempt is a known class folder; split-named folders inside a class folder are extra levels
#                   4: train_by_default counted; hidden files counted as skipped; a wrapping zip folder is no class
_ARRAYS = ("images", "labels", "splits", "ids", "hashes")


def default_cache_dir() -> Path:
    """`$FERLAB_CACHE_DIR` if set, else the per-user cache folder `.../ferlab/datasets`."""
    env = os.environ.get("FERLAB_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("ferlab")) / "datasets"


def cache_key(parts: dict) -> str:
    """A stable hex key for the JSON-serialisable `parts` (reader, path, fingerprint, decode settings)."""
    text = json.dumps({"cache_version": CACHE_VERSION, **parts}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class DatasetCache:
    """Stores FaceDatasets under `root` as `<key>.npz`; a damaged file counts as a miss and is rebuilt."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()

    def path(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def ensure_writable(self) -> None:
        """Fail early, before any decoding, when the cache folder cannot be created or written."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".probe-"):
                pass
        except OSError as err:
            raise DataError(f"cache directory {self.root} is not writable ({err.strerror or err}); "
                            f"set FERLAB_CACHE_DIR or pass cache_dir=") from err

    def get(self, key: str) -> FaceDataset | None:
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {name: z[name] for name in _ARRAYS}
                header = json.loads(str(z["header"]))
            return FaceDataset(**arrays, classes=tuple(header["classes"]), source=header["source"],
                               fingerprint=header["fingerprint"], meta=header["meta"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as err:
            warnings.warn(f"ignoring damaged cache file {path} ({err}); decoding again", stacklevel=2)
            return None

    def put(self, key: str, ds: FaceDataset) -> Path:
        """Write `ds` atomically: readers see the old file or the complete new one, never a partial one."""
        header = {"classes": list(ds.classes), "source": ds.source, "fingerprint": ds.fingerprint, "meta": ds.meta}
        path = self.path(key)
        try:
            with atomic_open(path, "wb") as fh:
                np.savez(fh, **{name: getattr(ds, name) for name in _ARRAYS}, header=np.array(json.dumps(header)))
        except OSError as err:
            raise DataError(f"cannot write the dataset cache {path} ({err.strerror or err})") from err
        return path
