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


#: Python's csv module refuses fields over 128 KiB; a 200 x 200 image's pixel field is ~140 KiB.
_MAX_FIELD_BYTES = 64 * 1024 * 1024


def _parse_pixels(text: str) -> np.ndarray:
    """A square uint8 image from space-separated 0..255 values; DataError naming what is wrong."""
    try:
        values = np.fromiter(map(int, text.split()), dtype=np.int64)
    except ValueError as err:
        raise DataError(f"pixels are not integers ({err})") from err
    n = values.size
    root = math.isqrt(n)
    if n == 0 or root * root != n:
        raise DataError(f"pixel string has {n} values, expected a square number (48x48 = 2304)")
    if values.min() < 0 or values.max() > 255:
        raise DataError("pixel values must be 0..255")
    return values.astype(np.uint8).reshape(root, root)


def _parse_row(row: list[str], width: int, i_emo: int, i_pix: int, i_use: int | None) -> tuple[int, np.ndarray, str]:
    """(FER2013 emotion id, square pixels, canonical split or "") of one CSV row; DataError if it is malformed."""
    if len(row) < width:
        raise DataError(f"{len(row)} fields, header has {width}")
    try:
        label_id = int(row[i_emo])
    except ValueError:
        raise DataError(f"emotion '{row[i_emo]}' is not an integer id") from None
    if label_id not in FER2013_CSV_IDS:
        raise DataError(f"unknown emotion id {label_id} (expected 0..6: "
                        + " ".join(f"{k}={v}" for k, v in FER2013_CSV_IDS.items()) + ")")
    pixels = _parse_pixels(row[i_pix])
    usage = row[i_use].strip() if i_use is not None else ""
    if i_use is not None and not usage:  # with a Usage column, an empty one is a missing field, not "train"
        raise DataError("empty Usage (Training, PublicTest, PrivateTest)")
    split = USAGE_SPLITS.get(usage.lower()) if usage else ""
    if split is None:
        raise DataError(f"unknown Usage '{usage}' (Training, PublicTest, PrivateTest)")
    return label_id, pixels, split


class FerCsvReader:
    """FER2013 `fer2013.csv` (or any CSV with `emotion` and `pixels` columns, `Usage` optional). Malformed rows
    are skipped and listed with their line number, as corrupt image files are."""

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
        previous_limit = csv.field_size_limit(max(csv.field_size_limit(), _MAX_FIELD_BYTES))
        try:
            with fh:
                return self._read_rows(path, fh, image_size=image_size, progress=progress)
        except UnicodeDecodeError as err:
            raise DataError(f"{path} is not a UTF-8 text CSV (it holds byte {err.object[err.start]:#04x})") from None
        except csv.Error as err:
            raise DataError(f"{path}: not a readable CSV ({err})") from None
        finally:
            csv.field_size_limit(previous_limit)

    def _read_rows(self, path: Path, fh, *, image_size: int, progress: bool) -> DecodedSource:  # noqa: ANN001
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header:
            raise DataError(f"{path} is empty")
        columns = {name.strip().lower(): i for i, name in enumerate(header)}
        missing = [c for c in _REQUIRED if c not in columns]
        if missing:
            found = ",".join(h.strip() for h in header)
            if len(found) > 80:  # a file without a header row: its first row holds thousands of pixel values
                found = found[:77] + "..."
            raise DataError(f"{path}: CSV needs columns emotion,pixels[,Usage]; missing {','.join(missing)} "
                            f"(found {found}; is the header row missing?)")
        i_emo, i_pix, i_use = columns["emotion"], columns["pixels"], columns.get("usage")
        name_to_index = {c: i for i, c in enumerate(EMOTIONS)}
        images, labels, splits, ids, bad = [], [], [], [], []
        sides: dict[str, list[int]] = {}
        rows = (row for row in reader if row)  # blank lines are no records
        for k, row in enumerate(tqdm(rows, desc=f"parsing {path.name}", unit="row", disable=not progress,
                                     leave=False)):
            try:
                label_id, pixels, split = _parse_row(row, len(header), i_emo, i_pix, i_use)
            except DataError as err:
                bad.append({"id": f"{path.name}:line {reader.line_num}", "error": str(err)})
                continue
            if pixels.shape[0] != image_size:
                sides[f"csv:{k}"] = [pixels.shape[0]] * 2
                pixels = to_square_gray(Image.fromarray(pixels), image_size)
            images.append(pixels)
            labels.append(name_to_index[FER2013_CSV_IDS[label_id]])
            splits.append(split)
            ids.append(f"csv:{k}")
        if not images:
            if not bad:
                raise DataError(f"{path} has a header but no rows")
            shown = "; ".join(f"{b['id']}: {b['error']}" for b in bad[:3])
            raise DataError(f"no valid row in {path} ({len(bad)} malformed: {shown})")
        uniform = {tuple(v) for v in sides.values()}
        if len(sides) == len(images) and len(uniform) == 1:  # every row one other size: say it once
            sides = {"*": list(next(iter(uniform)))}
        return DecodedSource(
            images=np.stack(images),
            labels=np.asarray(labels, dtype=np.int64),
            splits=np.asarray(splits, dtype="<U12"),
            ids=np.array(ids, dtype=str),
            classes=EMOTIONS,
            meta={
                "layout": "fer2013-csv",
                "corrupt_files": bad,
                "refused_entries": [],
                "skipped_files": 0,
                "original_sizes": sides,
            },
        )
