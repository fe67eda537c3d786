"""Tuning outputs: best config as a training YAML, trials table (CSV + Markdown), Optuna pictures, an HTML page."""

from __future__ import annotations

import base64
import csv
import html
import io
import warnings
from pathlib import Path
from typing import Any

from ferlab.io import atomic_path, atomic_write_text
from ferlab.train.config import TrainConfig
from ferlab.tune.space import SearchSpace

__all__ = ["write_outputs", "trials_rows", "best_config"]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def trials_rows(study: Any, space: SearchSpace) -> list[dict[str, Any]]:
    """One row per trial: number, state, val accuracy, epochs reported, seconds, parameters, run dir."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else None
        row = {"trial": t.number, "state": t.state.name.lower(), "val_accuracy": t.value,
               "epochs": len(t.intermediate_values) or t.user_attrs.get("epochs_done"), "seconds": seconds}
        row.update({name: t.params.get(name) for name in space.names()})
        row["run_dir"] = t.user_attrs.get("run_dir", "")
        rows.append(row)
    return rows


def best_config(study: Any, base: TrainConfig, out_dir: str) -> TrainConfig | None:
    """`base` with the best completed trial's parameters, writing to `out_dir`; None before any trial completed."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return None
    best = max(complete, key=lambda t: t.value)
    return base.with_overrides({**best.params, "out": out_dir})


def _write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: _fmt(v) for k, v in row.items()} for row in rows)
    atomic_write_text(path, buf.getvalue())


def _markdown(rows: list[dict[str, Any]], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _pictures(study: Any, out: Path) -> dict[str, Path]:
    """Optimisation history, intermediate values and parameter importances as PNG (skipped when undefined)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    plots = {"history": ovm.plot_optimization_history, "intermediate": ovm.plot_intermediate_values,
             "importances": ovm.plot_param_importances}
    if not any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
        del plots["intermediate"]  # single-fit models (classical) report no per-epoch values
    written: dict[str, Path] = {}
    for name, plot in plots.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # optuna marks its matplotlib backend experimental
            try:
                ax = plot(study)
            except (ValueError, RuntimeError, ZeroDivisionError):  # e.g. importances need 2+ completed trials
                continue
        fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
        fig.set_size_inches(8, 4.5)
        fig.tight_layout()
        path = out / f"{name}.png"
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=100)
        plt.close(fig)
        written[name] = path
    return written


def _html(rows: list[dict[str, Any]], columns: list[str], pictures: dict[str, Path], title: str) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(r[c]))}</td>" for c in columns) + "</tr>" for r in rows)
    imgs = "".join(f'<h2>{html.escape(n)}</h2><img alt="{html.escape(n)}" src="data:image/png;base64,'
                   f'{base64.b64encode(p.read_bytes()).decode()}">' for n, p in pictures.items())
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
            "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
            f"padding:2px 6px;font-size:13px}}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<table><tr>{head}</tr>{body}</table>{imgs}</body></html>\n")


def write_outputs(study: Any, base: TrainConfig, space: SearchSpace, out: Path) -> dict[str, Path]:
    """Write best_config.yaml, trials.csv, trials.md, PNG pictures and tune_report.html into `out`."""
    files: dict[str, Path] = {}
    cfg = best_config(study, base, out_dir=f"runs/tuned-{base.model}")
    if cfg is not None:
        header = (f"# Best of the ferlab tune study in {out} (trial parameters applied to the base config).\n"
                  f"# Train it: ferlab train --config {out / 'best_config.yaml'}\n")
        atomic_write_text(out / "best_config.yaml", header + cfg.to_yaml())
        files["best_config"] = out / "best_config.yaml"
    rows = trials_rows(study, space)
    columns = ["trial", "state", "val_accuracy", "epochs", "seconds", *space.names(), "run_dir"]
    _write_csv(out / "trials.csv", rows, columns)
    atomic_write_text(out / "trials.md", _markdown(rows, columns))
    files.update({"trials_csv": out / "trials.csv", "trials_md": out / "trials.md"})
    pictures = _pictures(study, out)
    files.update(pictures)
    atomic_write_text(out / "tune_report.html", _html(rows, columns, pictures, f"ferlab tune: {base.model}"))
    files["report"] = out / "tune_report.html"
    return files
