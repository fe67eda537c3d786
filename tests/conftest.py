"""Shared fixtures: tiny generated datasets and the shared FER2013 zip (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_ZIP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fer2013.zip"


@pytest.fixture(scope="session")
def fer2013_zip() -> Path:
    if not SHARED_ZIP.is_file():
        pytest.skip(f"shared FER2013 zip not found at {SHARED_ZIP}")
    return SHARED_ZIP


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own dataset cache so tests never share or pollute the user's cache."""
    monkeypatch.setenv("FERLAB_CACHE_DIR", str(tmp_path_factory.mktemp("ferlab-cache")))
