"""Pictures of a dataset: class distribution, a sample grid per class, a duplicate gallery (PNG, atomic)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ferlab.data.dataset import FaceDataset
from ferlab.io import atomic_path

__all__ = ["class_distribution_png", "sample_grid_png", "duplicate_gallery_png"]


def _save(fig, path: Path) -> Path:  # noqa: ANN001
    import matplotlib.pyplot as plt

    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def _figure(width: float, height: float):  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def class_distribution_png(counts: dict[str, dict[str, int]], path: str | Path) -> Path:
    """Grouped bar chart: images per class, one bar colour per split."""
    fig, ax = _figure(8, 3.6)
    splits = list(counts)
    classes = list(next(iter(counts.values()))) if counts else []
    width = 0.8 / max(len(splits), 1)
    for k, split in enumerate(splits):
        xs = np.arange(len(classes)) + k * width
        bars = ax.bar(xs, [counts[split][c] for c in classes], width, label=split)
        ax.bar_label(bars, fontsize=7)
    ax.set_xticks(np.arange(len(classes)) + width * (len(splits) - 1) / 2, classes)
    ax.set_ylabel("images")
    ax.set_title("Images per class and split")
    ax.legend()
    return _save(fig, Path(path))


def _tile(rows: list[list[np.ndarray]], size: int) -> np.ndarray:
    width = max((len(r) for r in rows), default=1)
    canvas = np.full((len(rows) * (size + 2), width * (size + 2)), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            canvas[r * (size + 2):r * (size + 2) + size, c * (size + 2):c * (size + 2) + size] = img
    return canvas


def sample_grid_png(ds: FaceDataset, path: str | Path, per_class: int = 10, seed: int = 0) -> Path:
    """One row of `per_class` random faces per class, labelled with the class name."""
    rng = np.random.default_rng(seed)
    rows, names = [], []
    for i, name in enumerate(ds.classes):
        members = np.flatnonzero(ds.labels == i)
        pick = rng.permutation(members)[:per_class]
        rows.append([ds.images[j] for j in pick])
        names.append(f"{name} ({len(members)})")
    fig, ax = _figure(per_class * 0.7 + 1.5, len(rows) * 0.75 + 0.5)
    ax.imshow(_tile(rows, ds.image_size), cmap="gray", vmin=0, vmax=255)
    ax.set_yticks([(ds.image_size + 2) * (r + 0.5) for r in range(len(rows))], names)
    ax.set_xticks([])
    ax.set_title("Random samples per class")
    return _save(fig, Path(path))


def duplicate_gallery_png(ds: FaceDataset, groups: list[list[str]], path: str | Path, max_groups: int = 12) -> Path:
    """One row per duplicate group (first `max_groups`), each face captioned `split/class`."""
    index = {sample_id: i for i, sample_id in enumerate(ds.ids.tolist())}
    shown = [[index[s] for s in g[:8]] for g in groups[:max_groups]]
    fig, ax = _figure(8, max(len(shown), 1) * 0.8 + 0.6)
    if shown:
        ax.imshow(_tile([[ds.images[i] for i in g] for g in shown], ds.image_size), cmap="gray", vmin=0, vmax=255)
        labels = [" | ".join(f"{ds.splits[i]}/{ds.classes[ds.labels[i]] if ds.labels[i] >= 0 else '?'}" for i in g)
                  for g in shown]
        ax.set_yticks([(ds.image_size + 2) * (r + 0.5) for r in range(len(shown))], labels, fontsize=6)
    else:
        ax.text(0.5, 0.5, "no duplicates", ha="center", va="center")
        ax.set_yticks([])
    ax.set_xticks([])
    ax.set_title(f"Duplicate groups (first {len(shown)} of {len(groups)})")
    return _save(fig, Path(path))
