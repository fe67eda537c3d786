"""`ferlab compare`: train (or re-use / resume) every experiment of a suite, evaluate each, and rank them.

Suite mode trains into RUNS/<name> (default OUT/runs) with `ferlab.train.fit`: a run whose summary says
`finished` and whose config.yaml matches the experiment's resolved config is re-used; an unfinished one is
resumed; a finished one with another config is moved aside to `<name>.stale-N` and retrained. Runs mode
builds the same rows from existing run directories. Every row is evaluated on the test split and timed on this machine.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from ferlab.errors import ConfigError, FerlabError
from ferlab.evaluate.suite import Experiment, SpeedConfig, Suite

__all__ = ["LeaderboardRow", "PlannedRun", "plan_suite", "preflight", "run_suite", "rows_from_runs", "is_run_dir",
           "earlier_stages"]

#: Config fields that do not change what a run learns; ignored when deciding whether to re-use a run.
_IGNORED_FIELDS = ("progress", "threads", "device", "out")


@dataclass(frozen=True)
class LeaderboardRow:
    """One experiment's results; `status` is ok, skipped or failed (with `note` saying why)."""

    experiment: str
    model: str
    classes: str
    status: str = "ok"
    note: str = ""
    accuracy: float | None = None
    macro_f1: float | None = None
    leakage_free_accuracy: float | None = None
    params: int | None = None
    mflops: float | None = None
    train_seconds: float | None = None
    epochs: int | None = None
    images_per_second: float | None = None
    latency_ms: float | None = None
    tta: str = "none"
    per_class_f1: dict[str, float] = field(default_factory=dict)
    run_dir: str = ""
    test_images: int | None = None  # images the accuracy was measured on (the leaderboard's interval)


@dataclass(frozen=True)
class PlannedRun:
    """What compare will do for one experiment: train, resume, reuse, retrain (stale config) or skip."""

    experiment: Experiment
    run_dir: Path
    action: str
    note: str = ""


def is_run_dir(path: str | Path) -> bool:
    return (Path(path) / "summary.json").is_file()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"cannot read {path}: {str(err).splitlines()[0]}") from None


def earlier_stages(config: dict[str, Any]) -> list[Path]:
    """The run directories a run builds on: its `pretrained` checkpoint's run and its distillation `teacher`'s run,
    then the ones those build on, each once.

    A training stage's cost is only honest with the runs it starts from or learns from, so the leaderboard and the
    model card add them up. ImageNet weights and checkpoints outside a run directory (no summary.json beside them)
    end a chain.
    """
    stages: list[Path] = []
    seen: set[Path] = set()
    pending = [config.get("pretrained"), config.get("teacher")]
    while pending:
        source = pending.pop(0)
        if not source or source == "imagenet":
            continue
        path = Path(str(source))
        run_dir = path if path.is_dir() else path.parent
        if not is_run_dir(run_dir) or run_dir.resolve() in seen:
            continue
        stages.append(run_dir)
        seen.add(run_dir.resolve())
        earlier = _run_config(run_dir) or {}
        pending += [earlier.get("pretrained"), earlier.get("teacher")]
    return stages


def _training_cost(summary: dict[str, Any], config: dict[str, Any]) -> tuple[float | None, int | None, str]:
    """Training seconds and epochs of a run plus its earlier stages, and a note naming those stages."""
    seconds, epochs = summary.get("train_seconds"), summary.get("epochs_done")
    stages = earlier_stages(config)
    for stage in stages:
        earlier = _read_json(stage / "summary.json")
        if seconds is not None and earlier.get("train_seconds") is not None:
            seconds += earlier["train_seconds"]
        if epochs is not None and earlier.get("epochs_done") is not None:
            epochs += earlier["epochs_done"]
    note = "includes earlier stage " + ", ".join(str(s) for s in stages) if stages else ""
    return seconds, epochs, note


def _comparable(values: dict[str, Any], default_size: int) -> dict[str, Any]:
    out = {k: v for k, v in values.items() if k not in _IGNORED_FIELDS}
    out["image_size"] = out.get("image_size") or default_size
    if out.get("data"):
        out["data"] = str(Path(out["data"]).expanduser().resolve())
    return out


def _run_config(run_dir: Path) -> dict[str, Any] | None:
    """run_dir/config.yaml as a dict; None when it is missing or unreadable."""
    try:
        return yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return None


def _same_config(run_dir: Path, cfg: Any) -> bool:
    """True when run_dir/config.yaml holds `cfg` (up to fields that do not change the result)."""
    from ferlab.models import get_model_config

    stored = _run_config(run_dir)
    if stored is None:
        return False
    try:
        size = get_model_config(cfg.model).input_size[1]
    except FerlabError:
        size = 48
    stored = {**type(cfg)().to_dict(), **stored}  # a field newer than the run: its default reproduces the old run
    return _comparable(stored, size) == _comparable(cfg.to_dict(), size)


def plan_suite(suite: Suite, data: str | Path, runs_dir: str | Path) -> list[PlannedRun]:
    """Decide, without side effects, what happens to each experiment (trained into runs_dir/<name>)."""
    plans = []
    earlier: list[Path] = []  # run dirs of the experiments before this one: their weights exist by its turn
    for exp in suite.experiments:
        run_dir = Path(runs_dir) / exp.name
        written_by_an_earlier_run = exp.pretrained and any(
            Path(exp.pretrained).expanduser().resolve().is_relative_to(d.expanduser().resolve()) for d in earlier)
        earlier.append(run_dir)
        if exp.pretrained and exp.pretrained != "imagenet" and not Path(exp.pretrained).is_file() \
                and not written_by_an_earlier_run:
            plans.append(PlannedRun(exp, run_dir, "skip", f"pretrained weights file {exp.pretrained} not found "
                                                         "(offline: place the file there to run this experiment)"))
            continue
        cfg = exp.train_config(data, run_dir)
        summary = run_dir / "summary.json"
        if not summary.is_file() and not (run_dir / "last.pt").is_file():
            plans.append(PlannedRun(exp, run_dir, "train"))
        elif not _same_config(run_dir, cfg):
            plans.append(PlannedRun(exp, run_dir, "retrain", "config changed: old run moved aside"))
        elif summary.is_file() and _read_json(summary).get("finished"):
            plans.append(PlannedRun(exp, run_dir, "reuse"))
        else:
            plans.append(PlannedRun(exp, run_dir, "resume" if (run_dir / "last.pt").is_file() else "train"))
    return plans


def preflight(suite: Suite, data: str | Path, dataset: Any, runs_dir: str | Path) -> list[str]:
    """What would make an experiment fail, found before anything trains: one `name: reason` per bad experiment.

    Checks each experiment's class scheme, limit and validation carve on the loaded data, its cleaning manifest,
    its teacher (unless an earlier experiment of the suite writes it under `runs_dir`) and its model with its
    options. Without this, a typo in the last experiment surfaced only after the others had trained for hours.
    """
    runs = Path(runs_dir).expanduser().resolve()
    problems = []
    for exp in suite.experiments:
        try:
            _preflight_one(exp.train_config(data, runs / exp.name), dataset, runs)
        except FerlabError as err:
            problems.append(f"{exp.name}: {str(err).splitlines()[0]}")
    return problems


def _preflight_one(cfg: Any, dataset: Any, runs: Path) -> None:
    import warnings

    import torch

    from ferlab.data.manifest import apply_manifest
    from ferlab.models import create_model, get_model_config
    from ferlab.models.classical import create_estimator, is_classical
    from ferlab.train.data_prep import training_splits
    from ferlab.train.fit import model_kwargs

    if cfg.manifest:
        with warnings.catch_warnings():  # a fingerprint mismatch is the training run's warning to give
            warnings.simplefilter("ignore")
            dataset = apply_manifest(dataset, cfg.manifest)
    classes = training_splits(dataset, cfg.to_dict()).classes
    if cfg.teacher:
        teacher = Path(cfg.teacher).expanduser().resolve()
        if not teacher.exists() and not teacher.is_relative_to(runs):
            raise ConfigError(f"teacher not found: {cfg.teacher}")
    if is_classical(cfg.model):
        create_estimator(cfg.model, **cfg.model_kwargs)
        return
    default_size = get_model_config(cfg.model).input_size[1]
    kwargs = model_kwargs(cfg, cfg.image_size or default_size, default_size)  # as fit builds it
    with torch.random.fork_rng():  # building initialises weights: leave the caller's RNG alone
        create_model(cfg.model, num_classes=len(classes), **kwargs)


def _move_aside(run_dir: Path) -> Path:
    n = 1
    while (target := run_dir.with_name(f"{run_dir.name}.stale-{n}")).exists():
        n += 1
    run_dir.rename(target)
    return target


def _fit_child(values: dict[str, Any], resume: bool, conn: Any) -> None:
    """Child-process entry: train, then report ("ok", "") or ("error", one-line message) through the pipe."""
    from ferlab.train.config import TrainConfig
    from ferlab.train.fit import fit

    try:
        fit(TrainConfig.from_dict(values), resume=resume)
        conn.send(("ok", ""))
    except FerlabError as err:
        conn.send(("error", str(err)))
    except Exception as err:  # noqa: BLE001 - a bug in one experiment is its failed row, not a traceback
        conn.send(("error", f"{type(err).__name__}: {err}"))
    finally:
        conn.close()


def _child_outcome(receive: Any) -> tuple[str, str]:
    """What the training child reported, or ("crash", "") when it died first: poll() is also true at end of file,
    and recv() then raised EOFError, which took the whole suite down instead of one row."""
    try:
        return receive.recv() if receive.poll() else ("crash", "")
    except (EOFError, OSError):
        return "crash", ""


def _train(plan: PlannedRun, data: str | Path, progress: bool) -> None:
    """Train one experiment in a fresh process, so a crash (e.g. a segfault in a kernel) or leaked memory of
    one experiment cannot take the whole suite down: it becomes a `failed` row instead."""
    import multiprocessing

    cfg = plan.experiment.train_config(data, plan.run_dir).replace(progress=progress)
    if plan.action == "retrain":
        _move_aside(plan.run_dir)
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_fit_child, args=(cfg.to_dict(), plan.action == "resume", send), daemon=True)
    child.start()
    send.close()
    try:
        child.join()
    except KeyboardInterrupt:
        child.terminate()
        child.join()
        raise
    status, message = _child_outcome(receive)
    if status == "error":
        raise TrainingFailedError(message)
    if status != "ok" or child.exitcode != 0:
        raise TrainingFailedError(f"training process died (exit code {child.exitcode}); its run directory keeps "
                                  "the last finished epoch and the next compare resumes it")


class TrainingFailedError(FerlabError):
    """Training an experiment failed; the suite carries on with the next one."""


class _DataCache:
    """Loads the evaluation data once per (source, image size)."""

    def __init__(self, progress: bool) -> None:
        self._loaded: dict[tuple[str, int], Any] = {}
        self.progress = progress

    def get(self, source: str | Path, image_size: int):  # noqa: ANN201 - FaceDataset
        from ferlab.data import load

        key = (str(source), int(image_size))
        if key not in self._loaded:
            self._loaded[key] = load(source, image_size=image_size, progress=self.progress)
        return self._loaded[key]


def _classes_cell(scheme: Any, classes: list[str]) -> str:
    """The leaderboard's `classes` cell: the run's class scheme, or its number of classes when it trained on all of
    the data's own ("all" said nothing a reader could compare)."""
    return str(len(classes)) if scheme in (None, "all") else str(scheme)


def evaluate_run(run_dir: Path, *, name: str, data: str | Path | None, tta: str, speed: SpeedConfig,
                 cache: _DataCache, report_dir: Path | None, progress: bool) -> LeaderboardRow:
    """Evaluate run_dir/best.pt on the test split, time it, and read training cost from summary.json."""
    from ferlab.evaluate.run import evaluate_dataset
    from ferlab.evaluate.speed import count_parameters, measure_speed, model_mflops
    from ferlab.evaluate.writers import write_report
    from ferlab.train.checkpoint import checkpoint_file, load_classifier

    summary = _read_json(run_dir / "summary.json")
    clf = load_classifier(checkpoint_file(run_dir))
    config = clf.info.get("config") or {}
    source = data or config.get("data")
    if not source:
        raise ConfigError(f"{run_dir}: the run does not record its data; pass --data SOURCE")
    report = evaluate_dataset(clf, cache.get(source, clf.image_size), split="test", tta=tta, progress=progress)
    if report_dir is not None:
        write_report(report, report_dir)
    timing = measure_speed(clf, batch_size=speed.batch_size, batches=speed.batches,
                           latency_runs=speed.latency_runs, latency_threads=speed.latency_threads, tta=tta)
    train_seconds, epochs, stages_note = _training_cost(summary, config)
    notes = [stages_note] if stages_note else []
    if not summary.get("finished"):
        notes.append("run not finished")
    return LeaderboardRow(
        experiment=name, model=clf.model_name, classes=_classes_cell(config.get("classes"), clf.classes),
        accuracy=report.accuracy, macro_f1=report.macro_f1, leakage_free_accuracy=report.leakage_free_accuracy,
        params=count_parameters(clf) or summary.get("params"), mflops=model_mflops(clf),
        train_seconds=train_seconds, epochs=epochs,
        images_per_second=timing["images_per_second"], latency_ms=timing["latency_ms"], tta=tta,
        per_class_f1={c: s["f1"] for c, s in report.per_class.items()}, run_dir=str(run_dir),
        note="; ".join(notes), test_images=report.num_images,
    )


def _log(message: str) -> None:
    print(f"ferlab compare: {message}", file=sys.stderr, flush=True)


def run_suite(suite: Suite, data: str | Path, runs_dir: str | Path, *, progress: bool = True) -> list[LeaderboardRow]:
    """Train/re-use/resume, evaluate and time every experiment; a failing experiment becomes a `failed` row.

    Each run gets its evaluation report (JSON/Markdown/HTML + pictures) in runs_dir/<name>/eval.
    """
    cache = _DataCache(progress)
    rows = []
    for plan in plan_suite(suite, data, runs_dir):
        exp = plan.experiment
        opts = exp.options
        base = {"experiment": exp.name, "model": str(opts["model"]), "classes": str(opts.get("classes", "all")),
                "tta": exp.tta, "run_dir": str(plan.run_dir)}
        if plan.action == "skip":
            _log(f"{exp.name}: skipped ({plan.note})")
            rows.append(LeaderboardRow(**base, status="skipped", note=plan.note))
            continue
        _log(f"{exp.name}: {plan.action}" + (f" ({plan.note})" if plan.note else ""))
        try:
            if plan.action != "reuse":
                _train(plan, data, progress)
            row = evaluate_run(plan.run_dir, name=exp.name, data=data, tta=exp.tta, speed=suite.speed, cache=cache,
                               report_dir=plan.run_dir / "eval", progress=progress)
        except FerlabError as err:
            _log(f"{exp.name}: failed: {err}")
            rows.append(LeaderboardRow(**base, status="failed", note=str(err).splitlines()[0][:300]))
            continue
        rows.append(replace(row, note=exp.note or row.note))
    return rows


def rows_from_runs(run_dirs: list[str | Path], out: str | Path, *, data: str | Path | None = None,
                   tta: str = "none", speed: SpeedConfig | None = None, progress: bool = True) -> list[LeaderboardRow]:
    """Leaderboard rows from existing run directories (each must hold summary.json and a checkpoint)."""
    cache = _DataCache(progress)
    rows = []
    first_mention: dict[Path, str | Path] = {}
    for r in run_dirs:
        first_mention.setdefault(Path(r).resolve(), r)
    if repeated := len(run_dirs) - len(first_mention):
        _log(f"{repeated} repeated run director{'y' if repeated == 1 else 'ies'} left out: each run is ranked once")
    run_dirs = list(first_mention.values())
    names = [Path(r).resolve().name for r in run_dirs]
    for run_dir, name in zip(run_dirs, names, strict=True):
        path = Path(run_dir)
        if not is_run_dir(path):
            raise ConfigError(f"{path} is not a run directory (no summary.json)")
        unique = name if names.count(name) == 1 else f"{path.resolve().parent.name}-{name}"
        rows.append(evaluate_run(path, name=unique, data=data, tta=tta, speed=speed or SpeedConfig(), cache=cache,
                                 report_dir=Path(out) / "evals" / unique, progress=progress))
    return rows
