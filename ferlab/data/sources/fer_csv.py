"""The original FER2013 CSV: `emotion,pixels,Usage` in any column order, label ids in the CSV's own order.

The `emotion` ids follow `ferlab.labels.FER2013_CSV_IDS` (0=angry 1=disgust 2=fear 3=happy 4=sad 5=surprise
6=neutral), NOT the alphabetical folder order; they are mapped by name into `EMOTIONS`. `Usage` is optional
(Training -> train, PublicTest -> test, PrivateTest -> private_test). Pixels are a square number of
space-separated 0..255 values; a side other than `image_size` is resized by the shared policy.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from ferlab.data.decode import to_square_gray
from ferlab.data.sources.base import DecodedSource
from ferlab.errors import DataError
from ferlab.labels import EMOTIONS, FER2013_CSV_IDS

__all__ = ["FerCsvReader", "USAGE_SPLITS"]

USAGE_SPLITS: dict[str, str] = {"training": "train", "publictest": "test", "privatetest": "private_test"}
_REQUIRED = ("emotion", "pixels")


def _parse_pixels(text: str, row: int, side: int | None) -> np.ndarray:
    try:
        values = np.fromiter(map(int, text.split()), dtype=np.int64)
    except ValueError as err:
        raise DataError(f"CSV row {row}: pixels are not integers ({err})") from err
    n = values.size
    root = math.isqrt(n)
    if n == 0 or root * root != n or (side is not None and root != side):
        expected = f"{side * side} ({side}x{side})" if side else "a square number"
        raise DataError(f"CSV row {row}: pixel string has {n} values, expected {expected}")
    if values.min() < 0 or values.max() > 255:
        raise DataError(f"CSV row {row}: pixel values must be 0..255")
    return values.astype(np.uint8).reshape(root, root)


class FerCsvReader:
    """FER2013 `fer2013.csv` (or any CSV with `emotion` and `pixels` columns, `Usage` optional)."""

    name = "fer2013-csv"

    def claims(self, path: Path) -> bool:
        return path.is_file() and path.suffix.lower() == ".csv"

    def fingerprint(self, path: Path) -> dict:
        st = path.stat()
        return {"kind": "csv", "size": st.st_size, "mtime_ns": st.st_mtime_ns}

    def read(self, path: Path, *, image_size: int, progress: bool) -> DecodedSource:
        try:
            fh = open(path, newline="", encoding="utf-8-sig")
        except OSError as err:
            raise DataError(f"cannot read {path}: {err.strerror or err}") from err
        with fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header:
                raise DataError(f"{path} is empty")
            columns = {name.strip().lower(): i for i, name in enumerate(header)}
            missing = [c for c in _REQUIRED if c not in columns]
            if missing:
                raise DataError(f"{path}: CSV needs columns emotion,pixels[,Usage]; missing {','.join(missing)} "
                                f"(found {','.join(h.strip() for h in header)})")
            i_emo, i_pix, i_use = columns["emotion"], columns["pixels"], columns.get("usage")
            name_to_index = {c: i for i, c in enumerate(EMOTIONS)}
            images, labels, splits = [], [], []
            side: int | None = None
            for row_no, row in enumerate(tqdm(reader, desc=f"parsing {path.name}", unit="row", disable=not progress,
                                               leave=False)):
                if not row:
                    continue
                if len(row) < len(header):
                    raise DataError(f"CSV row {row_no}: {len(row)} fields, header has {len(header)}")
                try:
                    label_id = int(row[i_emo])
                except ValueError as err:
                    raise DataError(f"CSV row {row_no}: emotion '{row[i_emo]}' is not an integer id") from err
                if label_id not in FER2013_CSV_IDS:
                    raise DataError(f"CSV row {row_no}: unknown emotion id {label_id} (expected 0..6: "
                                    + " ".join(f"{k}={v}" for k, v in FER2013_CSV_IDS.items()) + ")")
                pixels = _parse_pixels(row[i_pix], row_no, side)
                side = pixels.shape[0]
                usage = row[i_use].strip() if i_use is not None else ""
                split = USAGE_SPLITS.get(usage.lower(), None) if usage else ""
                if split is None:
                    raise DataError(f"CSV row {row_no}: unknown Usage '{usage}' (Training, PublicTest, PrivateTest)")
                if side != image_size:
                    pixels = to_square_gray(Image.fromarray(pixels), image_size)
                images.append(pixels)
                labels.append(name_to_index[FER2013_CSV_IDS[label_id]])
                splits.append(split)
        if not images:
            raise DataError(f"{path} has a header but no rows")
        n = len(images)
        return DecodedSource(
            images=np.stack(images),
            labels=np.asarray(labels, dtype=np.int64),
            splits=np.asarray(splits, dtype="<U12"),
            ids=np.array([f"csv:{i}" for i in range(n)], dtype=str),
            classes=EMOTIONS,
            meta={
                "layout": "fer2013-csv",
                "corrupt_files": [],
                "refused_entries": [],
                "skipped_files": 0,
                "original_sizes": {} if side == image_size else {"*": [side, side]},
            },
        )
