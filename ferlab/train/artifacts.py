"""Run-directory files besides checkpoints: metrics.csv, curves.png, summary.json, config.yaml (all atomic)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from ferlab.io import atomic_path, atomic_write_json, atomic_write_text

__all__ = ["METRIC_COLUMNS", "write_metrics_csv", "plot_curves", "write_summary", "write_config"]

METRIC_COLUMNS = ("epoch", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds",
                  "images_per_second", "partial")


def write_metrics_csv(path: Path, history: list[dict[str, Any]]) -> None:
    """Rewrite the whole CSV atomically from the epoch history."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_text(path, buf.getvalue())


def plot_curves(path: Path, history: list[dict[str, Any]], title: str = "") -> None:
    """Loss and accuracy per epoch, train vs validation, as a PNG (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] for row in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        ax.plot(epochs, [r[f"train_{metric}"] for r in history], "o-", label="train")
        ax.plot(epochs, [r[f"val_{metric}"] for r in history], "s-", label="validation")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    atomic_write_json(path, summary)


def write_config(path: Path, yaml_text: str) -> None:
    atomic_write_text(path, yaml_text)
