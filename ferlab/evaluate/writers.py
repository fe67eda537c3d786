"""Write an `EvalReport` as JSON, Markdown and a self-contained HTML page, with its PNG pictures (atomically)."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import numpy as np

from ferlab.evaluate import plots
from ferlab.evaluate.report import EvalReport
from ferlab.io import atomic_write_bytes, atomic_write_json, atomic_write_text

__all__ = ["write_report", "report_pictures", "report_markdown", "report_html", "fmt"]


def fmt(value: float | int | None, digits: int = 4) -> str:
    """A number for a table: '-' when missing."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def report_pictures(report: EvalReport) -> dict[str, bytes]:
    """file name -> PNG bytes: confusion matrices (counts, normalised), reliability diagram, confident mistakes."""
    captions = [f"{m['true']}->{m['pred']} {m['confidence']:.2f}" for m in report.mistakes]
    return {
        "confusion_counts.png": plots.confusion_png(np.asarray(report.confusion_matrix), report.classes,
                                                    normalized=False),
        "confusion_normalized.png": plots.confusion_png(np.asarray(report.confusion_matrix_normalized),
                                                        report.classes, normalized=True),
        "reliability.png": plots.reliability_png(report.reliability, report.ece),
        "mistakes.png": plots.gallery_png(report.mistake_images, captions,
                                          title="most confident mistakes (true->pred confidence)"),
    }


def _summary_rows(report: EvalReport) -> list[tuple[str, str]]:
    rows = [
        ("checkpoint", report.checkpoint), ("model", report.model), ("data", report.source),
        ("split", report.split), ("test-time augmentation", report.tta), ("images", str(report.num_images)),
        ("accuracy", fmt(report.accuracy) + (f" (95% Wilson interval {fmt(report.accuracy_ci95[0])}-"
                                              f"{fmt(report.accuracy_ci95[1])})" if report.accuracy_ci95 else "")),
        ("macro-F1", fmt(report.macro_f1)),
        ("leakage-free accuracy", f"{fmt(report.leakage_free_accuracy)} on {fmt(report.leakage_free_num_images)} "
                                  "images without an exact duplicate in train"),
        ("log loss", fmt(report.log_loss)), ("ECE (15 bins)", fmt(report.ece)),
    ]
    if report.dropped_classes:
        rows.append(("dropped data classes", ", ".join(f"{c} ({n})" for c, n in report.dropped_classes.items())))
    if report.model_only_classes:
        rows.append(("model-only classes", ", ".join(report.model_only_classes)))
    if report.unlabelled_skipped:
        rows.append(("unlabelled images skipped", str(report.unlabelled_skipped)))
    return rows


def _per_class_rows(report: EvalReport) -> list[list[str]]:
    return [[c, fmt(s["precision"]), fmt(s["recall"]), fmt(s["f1"]), str(s["support"])]
            for c, s in report.per_class.items()]


def report_markdown(report: EvalReport, pictures: list[str], extra: list[tuple[str, str]] | None = None) -> str:
    """Markdown report linking the pictures written beside it (`extra`: more summary rows)."""
    lines = [f"# Evaluation of {report.model} on {report.split}", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in [*_summary_rows(report), *(extra or [])]]
    lines += ["", "## Per class", "", "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in _per_class_rows(report)]
    lines += [""] + [f"![{Path(p).stem}]({p})" for p in pictures] + [""]
    return "\n".join(lines)


def report_html(report: EvalReport, pictures: dict[str, bytes], extra: list[tuple[str, str]] | None = None) -> str:
    """One self-contained HTML page: tables plus every picture embedded as base64 (`extra`: more summary rows)."""
    esc = html.escape
    summary = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>"
                      for k, v in [*_summary_rows(report), *(extra or [])])
    per_class = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in _per_class_rows(report))
    images = "".join(
        f'<figure><img alt="{esc(name)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'
        f"<figcaption>{esc(Path(name).stem.replace('_', ' '))}</figcaption></figure>"
        for name, data in pictures.items()
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>ferlab eval: {esc(report.model)}</title><style>"
        "body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}"
        "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}figure{display:inline-block;margin:1em}"
        "img{max-width:520px}</style></head><body>"
        f"<h1>Evaluation of {esc(report.model)} on {esc(report.split)}</h1><table>{summary}</table>"
        "<h2>Per class</h2><table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>"
        f"{per_class}</table><h2>Pictures</h2>{images}</body></html>\n"
    )


def write_pictures(out: Path, pictures: dict[str, bytes]) -> dict[str, Path]:
    """Write each named PNG atomically into `out`; returns name -> path."""
    for name, data in pictures.items():
        atomic_write_bytes(out / name, data)
    return {name: out / name for name in pictures}


def _paired_rows(paired: Any) -> list[tuple[str, str]]:
    """The paired comparison (`ferlab eval --against`) as summary rows."""
    lo, hi = (100 * v for v in paired.difference_ci95)
    return [("compared with", f"{paired.against} (accuracy {fmt(paired.against_accuracy)} on the same "
                              f"{paired.num_images} images)"),
            ("difference", f"{100 * paired.difference:+.2f} points (95% CI {lo:+.2f} to {hi:+.2f}); right only here "
                           f"{paired.only_model_correct}, only there {paired.only_against_correct}; McNemar exact "
                           f"p = {paired.mcnemar_p:.3g}")]


def write_report(report: EvalReport, out_dir: str | Path, *, paired: Any = None) -> dict[str, Path]:
    """Write report.json, report.md, report.html and the PNGs into `out_dir`; returns name -> path. `paired` (a
    `ferlab.evaluate.paired` comparison) adds the `paired` object to the JSON and its rows to the pages."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pictures = report_pictures(report)
    written = write_pictures(out, pictures)
    extra = _paired_rows(paired) if paired is not None else []
    atomic_write_json(out / "report.json", report.to_dict() | ({"paired": paired.to_dict()} if paired else {}))
    atomic_write_text(out / "report.md", report_markdown(report, list(pictures), extra))
    atomic_write_text(out / "report.html", report_html(report, pictures, extra))
    for name in ("report.json", "report.md", "report.html"):
        written[name] = out / name
    return written
