"""Cleaning manifest (`clean.json`): the sample ids an audit policy excludes, with reasons; applied at load time.

Source files are never touched: training reads the manifest through `load(..., manifest=PATH)`.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import replace
from pathlib import Path

from ferlab.data.dataset import FaceDataset
from ferlab.errors import DataError
from ferlab.io import atomic_write_json

__all__ = ["MANIFEST_FORMAT", "write_manifest", "read_manifest", "apply_manifest"]

MANIFEST_FORMAT = "ferlab-clean-manifest"


def write_manifest(path: str | os.PathLike, ds: FaceDataset, excluded: dict[str, list[str]],
                   policy: list[str]) -> Path:
    """Write the manifest atomically: `{"format", "version", "source", "fingerprint", "policy", "excluded"}`."""
    by_reason: dict[str, int] = {}
    for reasons in excluded.values():
        for reason in reasons:
            by_reason[reason] = by_reason.get(reason, 0) + 1
    doc = {
        "format": MANIFEST_FORMAT,
        "version": 1,
        "source": ds.source,
        "fingerprint": ds.fingerprint,
        "policy": list(policy),
        "num_images": len(ds),
        "excluded_count": len(excluded),
        "excluded_by_reason": by_reason,
        "excluded": [{"id": i, "reasons": excluded[i]} for i in sorted(excluded)],
    }
    atomic_write_json(path, doc)
    return Path(path)


def read_manifest(path: str | os.PathLike) -> dict:
    """Parse and validate a manifest; a one-line DataError for anything else."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise DataError(f"manifest not found: {p}") from err
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"cannot read manifest {p}: {err}") from err
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT or not isinstance(doc.get("excluded"), list):
        raise DataError(f"{p} is not a ferlab cleaning manifest (expected format '{MANIFEST_FORMAT}')")
    return doc


def apply_manifest(ds: FaceDataset, path: str | os.PathLike) -> FaceDataset:
    """`ds` without the manifest's excluded ids; warns when the manifest was made from another source version."""
    doc = read_manifest(path)
    ids = {str(e["id"]) for e in doc["excluded"] if isinstance(e, dict) and "id" in e}
    if doc.get("fingerprint") and ds.fingerprint and doc["fingerprint"] != ds.fingerprint:
        warnings.warn(f"manifest {path} was made for another version of the source; applying its ids anyway",
                      stacklevel=2)
    cleaned = ds.exclude(ids)
    meta = {**ds.meta, "manifest": str(path), "excluded_by_manifest": len(ds) - len(cleaned)}
    return replace(cleaned, meta=meta)
