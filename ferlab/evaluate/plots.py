"""Pictures of evaluation results as PNG bytes (matplotlib, Agg canvas, no global pyplot state)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

__all__ = ["confusion_png", "reliability_png", "gallery_png", "scatter_png", "heatmap_png"]


def _figure(width: float, height: float):  # noqa: ANN202 - matplotlib Figure, imported lazily
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:  # noqa: ANN001
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def _matrix(ax, values: np.ndarray, rows: Sequence[str], cols: Sequence[str], fmt: str, cmap: str,  # noqa: ANN001
            vmax: float | None = None, dark_high: bool = True) -> None:
    shown = np.ma.masked_invalid(values.astype(np.float64))
    im = ax.imshow(shown, cmap=cmap, vmin=0, vmax=vmax, aspect="auto")
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(len(cols)), labels=list(cols), rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), labels=list(rows))
    top = vmax if vmax is not None else (np.nanmax(values) if np.isfinite(values).any() else 0.0)
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            dark = (v > 0.6 * top) if dark_high else (v < 0.6 * top)
            ax.text(j, i, format(v, fmt), ha="center", va="center", fontsize=8, color="white" if dark else "black")


def confusion_png(cm: np.ndarray, classes: Sequence[str], *, normalized: bool, title: str = "") -> bytes:
    """Confusion matrix (true rows, predicted columns) with the value written in every cell."""
    side = 1.2 + 0.6 * len(classes)
    fig = _figure(side + 1.5, side)
    ax = fig.add_subplot()
    _matrix(ax, np.asarray(cm), classes, classes, ".2f" if normalized else ".0f",
            "Blues", vmax=1.0 if normalized else None)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or ("confusion matrix (row-normalised)" if normalized else "confusion matrix (counts)"))
    return _png(fig)


def reliability_png(rel: dict, ece: float) -> bytes:
    """Reliability diagram: accuracy per confidence bin against the diagonal of perfect calibration."""
    edges = np.asarray(rel["bin_edges"])
    counts = np.asarray(rel["counts"])
    width = np.diff(edges)
    fig = _figure(5, 5)
    ax = fig.add_subplot()
    filled = counts > 0
    ax.bar(edges[:-1][filled], np.asarray(rel["accuracy"])[filled], width=width[filled], align="edge",
           edgecolor="black", color="tab:blue", label="accuracy")
    ax.bar(edges[:-1][filled], np.asarray(rel["confidence"])[filled], width=width[filled], align="edge",
           fill=False, edgecolor="tab:red", hatch="//", label="mean confidence")
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy", title=f"reliability (ECE {ece:.3f})")
    ax.legend(loc="upper left")
    return _png(fig)


def gallery_png(images: np.ndarray, captions: Sequence[str], *, ncols: int = 8, title: str = "") -> bytes:
    """A grid of grayscale faces, each with a small caption under it."""
    n = max(len(images), 1)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig = _figure(1.5 * ncols, 1.75 * nrows + 0.4)
    for k in range(len(images)):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        ax.imshow(images[k], cmap="gray", vmin=0, vmax=255)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(captions[k], fontsize=7)
    if not len(images):
        fig.text(0.5, 0.5, "no mistakes", ha="center")
    if title:
        fig.suptitle(title)
    return _png(fig)


def scatter_png(x: Sequence[float], y: Sequence[float], labels: Sequence[str], *, xlabel: str, ylabel: str,
                title: str, logx: bool = False) -> bytes:
    """Labelled scatter plot (one point per experiment), e.g. accuracy against cost."""
    fig = _figure(7, 5)
    ax = fig.add_subplot()
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(xs) & np.isfinite(ys) & ((xs > 0) if logx else True)
    ax.scatter(xs[ok], ys[ok], color="tab:blue")
    for xi, yi, name in zip(xs[ok], ys[ok], np.asarray(labels, dtype=object)[ok], strict=True):
        ax.annotate(str(name), (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7)
    if logx and ok.any():
        from matplotlib.ticker import FuncFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        # within one decade every minor tick gets a label; over several they would overlap, so only 2x and 5x do
        wide = xs[ok].max() / xs[ok].min() > 10
        ax.xaxis.set_minor_formatter(FuncFormatter(
            lambda v, _pos: f"{v:g}" if not wide or round(v / 10 ** np.floor(np.log10(v))) in (2, 5) else ""))
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(True, alpha=0.3)
    return _png(fig)


def heatmap_png(values: np.ndarray, rows: Sequence[str], cols: Sequence[str], *, title: str) -> bytes:
    """Rows x columns heat map with values in the cells; NaN cells (not applicable) are left blank."""
    fig = _figure(1.5 + 0.9 * len(cols), 1.0 + 0.4 * len(rows))
    ax = fig.add_subplot()
    if not len(rows) or not len(cols):
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no finished experiment", ha="center", va="center")
        return _png(fig)
    _matrix(ax, np.asarray(values, dtype=np.float64), rows, cols, ".2f", "viridis", vmax=1.0, dark_high=False)
    ax.set_title(title)
    return _png(fig)
