"""Source readers: one per on-disk format; `find_reader(path)` asks each in turn whether it claims the path."""

from __future__ import annotations

from pathlib import Path

from ferlab.data.sources.base import DecodedSource, SourceReader, order_classes
from ferlab.data.sources.fer_csv import FerCsvReader
from ferlab.data.sources.image_tree import ImageFolderReader, ImageZipReader
from ferlab.errors import DataError, SourceNotFoundError

__all__ = ["READERS", "DecodedSource", "SourceReader", "find_reader", "order_classes"]

#: Registry of source readers, most specific first. Add a format by appending a reader here.
READERS: list[SourceReader] = [FerCsvReader(), ImageZipReader(), ImageFolderReader()]


def find_reader(path: Path) -> SourceReader:
    """The first registered reader that claims `path`; a one-line DataError when none does."""
    if not path.exists():
        raise SourceNotFoundError(f"data source not found: {path}")
    for reader in READERS:
        if reader.claims(path):
            return reader
    raise DataError(f"{path} is not a supported data source: expected a zip or folder of image folders, "
                    f"or a FER2013 CSV (emotion,pixels,Usage)")
