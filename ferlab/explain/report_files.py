"""Write a `DatasetExplanation` as files: summary/regions/faithfulness JSON, regions.csv, PNG charts and a
self-contained report.html (pictures embedded), all atomically; same look as `ferlab eval`'s report."""

from __future__ import annotations

import base64
import csv
import html
import io
from pathlib import Path

import numpy as np

from ferlab.evaluate.plots import _figure, _matrix, _png
from ferlab.evaluate.report import json_safe
from ferlab.evaluate.writers import fmt, write_pictures
from ferlab.explain.aggregate import GROUPS, SHARE_NAMES
from ferlab.explain.dataset_report import DatasetExplanation
from ferlab.io import atomic_open, atomic_write_json, atomic_write_text

__all__ = ["mean_heatmaps_png", "regions_png", "faithfulness_png", "report_pictures", "report_html",
           "write_dataset_report"]


def _overlay(face: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """RGB array of `heat` (scaled to its own maximum) blended over a mean face."""
    from PIL import Image

    from ferlab.explain.api import overlay_png

    peak = float(np.nanmax(heat)) if np.isfinite(heat).any() else 0.0
    scaled = np.nan_to_num(heat / peak) if peak > 0 else np.zeros_like(heat)
    return np.asarray(Image.open(io.BytesIO(overlay_png(np.nan_to_num(face), scaled, size=144))))


def mean_heatmaps_png(result: DatasetExplanation) -> bytes:
    """Grid: one row per emotion, columns correct / mistakes; mean heat map over the mean face of that cell."""
    n = len(result.classes)
    fig = _figure(2.0 * len(GROUPS) + 1.2, 2.05 * n + 0.6)
    for i, name in enumerate(result.classes):
        for j, group in enumerate(GROUPS):
            ax = fig.add_subplot(n, len(GROUPS), i * len(GROUPS) + j + 1)
            ax.set_xticks([])
            ax.set_yticks([])
            count = int(result.counts[i, j])
            if count:
                ax.imshow(_overlay(result.mean_faces[i, j], result.mean_heatmaps[i, j]))
            else:
                ax.set_box_aspect(1)
                ax.text(0.5, 0.5, "no face", ha="center", va="center", color="grey", transform=ax.transAxes)
            ax.set_xlabel(f"{group} (n={count})", fontsize=8)
            if j == 0:
                ax.set_ylabel(name, fontsize=10)
    target = f"class '{result.target}'" if result.target else "predicted class"
    fig.suptitle(f"mean {result.method} heat map per true emotion ({target}; each cell scaled to its maximum)",
                 fontsize=9)
    return _png(fig)


def regions_png(result: DatasetExplanation, group: str = "correct") -> bytes:
    """Region x emotion heat-map chart: mean share of attribution (left) and share / area (right)."""
    g = GROUPS.index(group)
    shares = result.shares[:, g]
    per_area = shares / result.areas[None, :]
    fig = _figure(2 * (1.8 + 0.85 * len(SHARE_NAMES)), 1.4 + 0.45 * len(result.classes))
    for k, (values, title, fmt_, cmap) in enumerate((
        (shares, f"mean share of attribution ({group})", ".2f", "viridis"),
        (per_area, "share / region area (1 = as much as its size)", ".2f", "magma"),
    )):
        ax = fig.add_subplot(1, 2, k + 1)
        _matrix(ax, values, result.classes, SHARE_NAMES, fmt_, cmap, dark_high=False)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("region")
        if k == 0:
            ax.set_ylabel("true emotion")
    return _png(fig)


def faithfulness_png(result: DatasetExplanation) -> bytes:
    """Mean deletion and insertion curves of each method against those of random maps (dashed)."""
    fig = _figure(11, 4.2)
    colours = [f"C{k}" for k in range(10)]
    for k, kind in enumerate(("deletion", "insertion")):
        ax = fig.add_subplot(1, 2, k + 1)
        auc_key = f"{kind}_auc"
        for m, trust in enumerate(result.trust):
            ax.plot(trust.curves["fractions"], trust.curves[kind], color=colours[m % len(colours)],
                    label=f"{trust.method} (AUC {trust.faithfulness[auc_key]:.3f})")
        if result.trust:  # every method is compared with the same random maps on the same faces
            first = result.trust[0]
            ax.plot(first.curves["fractions"], first.curves[f"random_{kind}"], color="black", linestyle="--",
                    linewidth=1, label=f"random maps (AUC {first.faithfulness['random_' + auc_key]:.3f})")
        better = "lower" if kind == "deletion" else "higher"
        ax.set(xlabel=f"fraction of pixels {'deleted' if kind == 'deletion' else 'inserted'}",
               ylabel="score of the explained class", title=f"{kind} ({better} AUC is better)", xlim=(0, 1))
        ax.grid(True, alpha=0.3)
        if result.trust:
            ax.legend(fontsize=7)
    if not result.trust:
        fig.text(0.5, 0.5, "no faithfulness check run (--faithfulness-samples 0)", ha="center")
    return _png(fig)


def report_pictures(result: DatasetExplanation) -> dict[str, bytes]:
    """file name -> PNG bytes."""
    return {"mean_heatmaps.png": mean_heatmaps_png(result), "regions.png": regions_png(result),
            "regions_mistakes.png": regions_png(result, "mistakes"), "faithfulness.png": faithfulness_png(result)}


def _regions_json(result: DatasetExplanation) -> dict:
    groups = {}
    for j, group in enumerate(GROUPS):
        groups[group] = {
            "n_images": {c: int(result.counts[i, j]) for i, c in enumerate(result.classes)},
            "n_with_attribution": {c: int(result.share_counts[i, j]) for i, c in enumerate(result.classes)},
            "regions": result.region_table(group), "regions_per_area": result.region_table(group, per_area=True),
        }
    return {"method": result.method, "target": result.target, "regions": list(SHARE_NAMES),
            "region_areas": {r: float(a) for r, a in zip(SHARE_NAMES, result.areas, strict=True)}, "groups": groups}


def _write_regions_csv(result: DatasetExplanation, path: Path) -> None:
    header = ["group", "emotion", "n_images", "n_with_attribution", *SHARE_NAMES,
              *[f"{r}_per_area" for r in SHARE_NAMES]]
    with atomic_open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for j, group in enumerate(GROUPS):
            for i, name in enumerate(result.classes):
                row = result.shares[i, j]
                values = [""] * (2 * len(SHARE_NAMES)) if not np.isfinite(row).all() else \
                    [f"{v:.6f}" for v in (*row, *(row / result.areas))]
                writer.writerow([group, name, int(result.counts[i, j]), int(result.share_counts[i, j]), *values])


def _faithfulness_json(result: DatasetExplanation) -> dict:
    return {"n_faces": result.trust_faces,
            "methods": {t.method: {**t.faithfulness, "curves": t.curves} for t in result.trust}}


def _table(headers: list[str], rows: list[list[str]], flags: list[bool] | None = None) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        f"<tr{' class=flag' if flags and flags[k] else ''}>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>"
        for k, row in enumerate(rows)
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _region_rows(result: DatasetExplanation, group: str) -> list[list[str]]:
    g = GROUPS.index(group)
    rows = []
    for i, name in enumerate(result.classes):
        row = result.shares[i, g]
        cells = ["-"] * len(SHARE_NAMES) if not np.isfinite(row).all() else [
            f"{s:.0%} ({s / a:.2f})" for s, a in zip(row, result.areas, strict=True)]
        rows.append([name, str(int(result.counts[i, g])), *cells])
    return rows


def _figure_html(name: str, data: bytes, caption: str) -> str:
    esc = html.escape
    return (f'<figure><img alt="{esc(name)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def report_html(result: DatasetExplanation, pictures: dict[str, bytes]) -> str:
    """One self-contained HTML page: the at-a-glance answer first, then the trust checks."""
    esc = html.escape
    target = result.target or "the predicted class (closed-set on the shared classes)"
    summary = [("model", result.model), ("checkpoint", result.checkpoint), ("data", result.source),
               ("split", result.split), ("images explained", str(result.n_images)),
               ("accuracy on them", fmt(result.accuracy)), ("method (heat maps, regions)", result.method),
               ("explained class", target), ("test-time augmentation (prediction)", result.tta),
               ("faces in the trust checks", str(result.trust_faces))]
    if result.limit is not None:
        summary.append(("limit", f"{result.limit} (stratified subsample)"))
    if result.dropped_classes:
        summary.append(("dropped data classes", ", ".join(f"{c} ({n})" for c, n in result.dropped_classes.items())))
    summary_html = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in summary)
    region_headers = ["true emotion", "faces", *SHARE_NAMES]
    faith_rows, faith_flags, sanity_rows, sanity_flags = [], [], [], []
    for t in result.trust:
        f, s = t.faithfulness, t.sanity
        faith_rows.append([t.method, fmt(f["deletion_auc"]), fmt(f["random_deletion_auc"]), fmt(f["insertion_auc"]),
                           fmt(f["random_insertion_auc"]), fmt(f["score"]), fmt(f["random_score"]),
                           f"{f['p_value']:.3g}",
                           "better than random" if f["better_than_random"] else "FLAGGED: no better than random"])
        faith_flags.append(not f["better_than_random"])
        sanity_rows.append([t.method, fmt(s["rank_correlation"]), fmt(s["rank_correlation_std"]), fmt(s["threshold"]),
                            "passed" if s["passed"] else "FLAGGED: maps ignore the model's weights"])
        sanity_flags.append(not s["passed"])
    trust_html = (
        "<h2>Can these maps be trusted?</h2>"
        f"<p>On {result.trust_faces} faces (stratified sample). <b>Faithfulness</b>: pixels are deleted from the "
        "face (replaced by a blurred copy) or inserted into the blurred face in the order of the map; a faithful "
        "map makes the explained class's probability fall fast (low deletion AUC) and rise fast (high insertion "
        "AUC). Score = insertion - deletion AUC, compared face by face with uniformly random maps (one-sided "
        "paired Wilcoxon test, flagged unless p &lt; 0.05).</p>"
        + _table(["method", "deletion AUC", "random deletion", "insertion AUC", "random insertion", "score",
                  "random score", "p", "verdict"], faith_rows, faith_flags)
        + _figure_html("faithfulness.png", pictures["faithfulness.png"], "deletion / insertion curves (dashed: random)")
        + "<p><b>Sanity check</b> (model-parameter randomisation, Adebayo et al. 2018): maps of the trained model "
        "and of a copy with re-initialised weights are compared by Spearman rank correlation per face; a method "
        "whose maps stay similar explains the image (edges, contrast), not the model, and is flagged.</p>"
        + _table(["method", "rank correlation", "std", "flag at or above", "verdict"], sanity_rows, sanity_flags)
    ) if result.trust else "<h2>Trust checks</h2><p>Not run (--faithfulness-samples 0).</p>"
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>ferlab explain: {esc(result.model)} on {esc(result.split)}</title><style>"
        "body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}"
        "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}figure{display:inline-block;margin:1em}"
        "img{max-width:1000px}tr.flag td{background:#fdd}</style></head><body>"
        f"<h1>What drives {esc(result.model)}'s decisions on {esc(result.split)}</h1><table>{summary_html}</table>"
        "<h2>Which facial regions drive each emotion</h2>"
        "<p>Mean share of the positive attribution in each region, over the faces of that emotion the model got "
        "right; in brackets the share divided by the region's area (1 = as much as its size, above 1 = a hot "
        "spot). Regions: <code>docs/regions.md</code>.</p>"
        + _table(region_headers, _region_rows(result, "correct"))
        + _figure_html("regions.png", pictures["regions.png"], "region x emotion (correct predictions)")
        + "<h2>Mean heat maps</h2>"
        + _figure_html("mean_heatmaps.png", pictures["mean_heatmaps.png"],
                       "rows: true emotion; columns: correct predictions, mistakes")
        + "<h2>Regions in the mistakes</h2><p>Faces of each true emotion the model got wrong (map of the class it "
        "predicted instead, unless a target class was fixed).</p>"
        + _table(region_headers, _region_rows(result, "mistakes"))
        + _figure_html("regions_mistakes.png", pictures["regions_mistakes.png"], "region x emotion (mistakes)")
        + trust_html + "</body></html>\n"
    )


def write_dataset_report(result: DatasetExplanation, out_dir: str | Path) -> dict[str, Path]:
    """Write summary.json, regions.csv/.json, faithfulness.json, the PNGs and report.html into `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pictures = report_pictures(result)
    written = write_pictures(out, pictures)
    atomic_write_json(out / "regions.json", json_safe(_regions_json(result)))
    _write_regions_csv(result, out / "regions.csv")
    atomic_write_json(out / "faithfulness.json", json_safe(_faithfulness_json(result)))
    atomic_write_json(out / "summary.json", json_safe(result.summary()))
    atomic_write_text(out / "report.html", report_html(result, pictures))
    for name in ("regions.json", "regions.csv", "faithfulness.json", "summary.json", "report.html"):
        written[name] = out / name
    return written
