"""Synthetic face-like images whose class is learnable (brow angle, mouth curve/opening), plus writers.

Used by `ferlab demo` and by tests: `write_image_folder` and `write_fer_csv` turn a FaceDataset back into
the on-disk formats the loader reads (PNG, so pixels round-trip exactly).
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ferlab.data.dataset import FaceDataset
from ferlab.data.loader import content_hashes
from ferlab.data.splits import stratified_carve
from ferlab.errors import DataError
from ferlab.io import atomic_open, atomic_path
from ferlab.labels import EMOTIONS, FER2013_CSV_IDS

__all__ = ["synthetic_faces", "write_image_folder", "write_fer_csv", "LAYOUTS"]


@dataclass(frozen=True)
class _Expression:
    brow_tilt: float  # inner brow end up (+) or down (-), in face units
    brow_raise: float  # whole brow up (+)
    mouth_curve: float  # corners up (+) / down (-)
    mouth_open: float  # opening height
    mouth_width: float


_EXPRESSIONS: dict[str, _Expression] = {
    "angry": _Expression(-0.10, -0.03, -0.02, 0.00, 0.30),
    "disgust": _Expression(-0.05, -0.05, -0.08, 0.03, 0.22),
    "fear": _Expression(0.08, 0.06, -0.03, 0.10, 0.38),
    "happy": _Expression(0.00, 0.00, 0.12, 0.04, 0.46),
    "neutral": _Expression(0.00, 0.00, 0.00, 0.00, 0.34),
    "sad": _Expression(0.10, 0.00, -0.10, 0.00, 0.30),
    "surprise": _Expression(0.00, 0.10, 0.00, 0.18, 0.22),
}
_CANVAS = 96


def _expression(name: str, index: int) -> _Expression:
    if name in _EXPRESSIONS:
        return _EXPRESSIONS[name]
    rng = np.random.default_rng(index + 1000)  # extra classes: a fixed random expression each
    return _Expression(*rng.uniform([-0.1, -0.05, -0.1, 0.0, 0.2], [0.1, 0.1, 0.12, 0.15, 0.45]).tolist())


def _draw_face(expr: _Expression, rng: np.random.Generator, size: int) -> np.ndarray:
    c = _CANVAS
    im = Image.new("L", (c, c), int(rng.integers(20, 90)))
    d = ImageDraw.Draw(im)
    cx, cy = c / 2 + rng.normal(0, 2.5), c / 2 + rng.normal(0, 2.5)
    rx, ry = c * rng.uniform(0.34, 0.40), c * rng.uniform(0.42, 0.48)
    skin = int(rng.integers(140, 210))
    d.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=skin)
    u = c  # face unit in pixels
    dark = max(skin - 110, 10)
    eye_y = cy - 0.10 * u
    for side in (-1, 1):
        ex = cx + side * 0.15 * u
        d.ellipse((ex - 0.05 * u, eye_y - 0.03 * u, ex + 0.05 * u, eye_y + 0.03 * u), fill=dark)
        by = eye_y - (0.10 + expr.brow_raise) * u
        inner = (cx + side * 0.05 * u, by - expr.brow_tilt * u)
        outer = (cx + side * 0.25 * u, by + expr.brow_tilt * 0.3 * u)
        d.line((inner, outer), fill=dark, width=max(2, int(0.03 * u)))
    d.line(((cx, cy - 0.05 * u), (cx, cy + 0.08 * u)), fill=skin - 30, width=2)  # nose
    my, half = cy + 0.22 * u, expr.mouth_width * u / 2
    xs = np.linspace(-half, half, 24)
    upper = my - expr.mouth_curve * u * (xs / half) ** 2
    lower = upper + expr.mouth_open * u * (1 - (xs / half) ** 2)
    pts = [(cx + x, y) for x, y in zip(xs, upper, strict=True)] + \
          [(cx + x, y) for x, y in zip(xs[::-1], lower[::-1], strict=True)]
    d.polygon(pts, fill=dark, outline=dark)
    d.line([(cx + x, y) for x, y in zip(xs, upper, strict=True)], fill=dark, width=max(2, int(0.02 * u)))
    out = np.asarray(im.resize((size, size), Image.Resampling.BOX), dtype=np.float32)
    out += rng.normal(0, 6, out.shape)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def synthetic_faces(n_per_class: int = 40, classes: tuple[str, ...] = EMOTIONS, image_size: int = 48,
                    seed: int = 0, test_fraction: float = 0.2) -> FaceDataset:
    """`n_per_class` drawn faces per class (deterministic for `seed`); a stratified `test_fraction` is `test`."""
    if n_per_class < 1 or len(classes) < 1:
        raise DataError("synthetic_faces needs n_per_class >= 1 and at least one class")
    rng = np.random.default_rng(seed)
    images = np.stack([_draw_face(_expression(name, k), rng, image_size)
                       for k, name in enumerate(classes) for _ in range(n_per_class)])
    labels = np.repeat(np.arange(len(classes), dtype=np.int64), n_per_class)
    splits = np.full(len(labels), "train", dtype="<U12")
    if test_fraction > 0:
        splits = stratified_carve(splits, labels, source="train", target="test", fraction=test_fraction, seed=seed)
    ids = np.array([f"synthetic/{classes[lab]}/{i:05d}" for i, lab in enumerate(labels)], dtype=str)
    return FaceDataset(images=images, labels=labels, splits=splits, classes=tuple(classes), ids=ids,
                       hashes=content_hashes(images), source=f"synthetic(seed={seed})", fingerprint=f"synthetic-{seed}",
                       meta={"layout": "synthetic", "corrupt_files": [], "refused_entries": [], "original_sizes": {}})


_PREFIX = {"train": "Training", "val": "Training", "test": "PublicTest", "private_test": "PrivateTest"}
_FOLDER = {"train": "train", "val": "train", "test": "test", "private_test": "test"}


def _fer2013_name(ds: FaceDataset, i: int) -> str:
    split = str(ds.splits[i])
    return f"{_FOLDER.get(split, split)}/{ds.classes[ds.labels[i]]}/{_PREFIX.get(split, split)}_{i:05d}.png"


def _classfolder_name(ds: FaceDataset, i: int) -> str:
    return f"{ds.classes[ds.labels[i]]}/{i:05d}.png"


def _splitfolder_name(ds: FaceDataset, i: int) -> str:
    return f"{ds.splits[i]}/{ds.classes[ds.labels[i]]}/{i:05d}.png"


#: File layouts `write_image_folder` can produce: FER2013 Kaggle names, `class/x.png`, `split/class/x.png`.
LAYOUTS = {"fer2013": _fer2013_name, "classfolder": _classfolder_name, "splitfolder": _splitfolder_name}


def _png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def write_image_folder(ds: FaceDataset, root: str | os.PathLike, layout: str = "fer2013") -> Path:
    """Write `ds` as PNG files in `layout` under folder `root`, or into a zip when `root` ends in `.zip`."""
    if layout not in LAYOUTS:
        raise DataError(f"unknown layout '{layout}' (choose {', '.join(LAYOUTS)})")
    if (ds.labels < 0).any():
        raise DataError("write_image_folder needs labelled samples")
    name_of = LAYOUTS[layout]
    root = Path(root)
    files = ((name_of(ds, i), _png(ds.images[i])) for i in range(len(ds)))
    if root.suffix.lower() == ".zip":
        with atomic_path(root) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            for name, data in files:
                zf.writestr(name, data)
        return root
    for name, data in files:
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root


_USAGE = {"train": "Training", "val": "Training", "test": "PublicTest", "private_test": "PrivateTest"}


def write_fer_csv(ds: FaceDataset, path: str | os.PathLike,
                  columns: tuple[str, ...] = ("emotion", "pixels", "Usage")) -> Path:
    """Write `ds` as a FER2013-style CSV (CSV label ids, not alphabetical); `columns` sets the column order."""
    ids_by_name = {name: k for k, name in FER2013_CSV_IDS.items()}
    unknown = set(ds.classes) - set(ids_by_name)
    if unknown:
        raise DataError(f"the FER2013 CSV has no id for class(es) {', '.join(sorted(unknown))}")
    with atomic_open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for i in range(len(ds)):
            values = {
                "emotion": str(ids_by_name[ds.classes[ds.labels[i]]]),
                "pixels": " ".join(map(str, ds.images[i].ravel().tolist())),
                "usage": _USAGE.get(str(ds.splits[i]), "Training"),
            }
            writer.writerow([values[c.lower()] for c in columns])
    return Path(path)
