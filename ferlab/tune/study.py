"""`run_study`: an Optuna study (seeded TPE, median pruning on per-epoch val accuracy) stored in SQLite under `out`.

A second call with the same `out` continues the study until it holds `trials` finished trials. Each trial is a
normal training run in `out/trials/trial_NNNN`; validation is the split carved from training, never the test split.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferlab.errors import ConfigError, FerlabError
from ferlab.io import absolute_if_exists
from ferlab.train.config import TrainConfig
from ferlab.tune.space import SearchSpace

__all__ = ["TuneResult", "run_study", "open_study", "finished_trials", "trial_config", "STUDY_NAME"]

STUDY_NAME = "ferlab-tune"


@dataclass(frozen=True)
class TuneResult:
    """What a tuning call leaves behind: the study database, the best trial and the written files."""

    out: Path
    storage: str
    trials_total: int
    complete: int
    pruned: int
    ran_now: int
    best_trial: int | None
    best_val_accuracy: float | None
    best_params: dict[str, Any]
    files: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "storage": self.storage, "trials_total": self.trials_total,
                "complete": self.complete, "pruned": self.pruned, "ran_now": self.ran_now,
                "best_trial": self.best_trial, "best_val_accuracy": self.best_val_accuracy,
                "best_params": self.best_params, "files": self.files}


def open_study(out: Path, seed: int) -> Any:
    """Create or load the study in `out/study.db`; its TPE sampler is seeded with `seed` plus the trials already
    finished, so a resumed study draws new points (the same seed would replay the first trials' suggestions)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{(out / 'study.db').resolve()}"
    # A heartbeat lets the next call mark trials of a killed process as failed instead of leaving them "running".
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = optuna.storages.RDBStorage(url, heartbeat_interval=30, grace_period=90)
        study = optuna.create_study(
            storage=storage, study_name=STUDY_NAME, direction="maximize", load_if_exists=True,
            sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=5),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
        )
        if done := len(finished_trials(study)):
            study.sampler = optuna.samplers.TPESampler(seed=seed + done, n_startup_trials=5)
        return study
    except Exception as err:  # noqa: BLE001 - SQLAlchemy/sqlite raise their own types for a damaged file
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise ConfigError(f"{out / 'study.db'} is not a readable optuna study ({first}); use another --out") from None


def finished_trials(study: Any) -> list[Any]:
    """Trials that count towards the total: completed or pruned."""
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))


def trial_config(base: TrainConfig, params: dict[str, Any], out: str | Path) -> TrainConfig:
    """`base` with a trial's parameters applied (dotted keys reach into model_kwargs / augment_options)."""
    return base.with_overrides({**params, "out": str(out)})


def _study_settings(trial_base: TrainConfig) -> dict[str, Any]:
    """What makes trials comparable: the same data, classes and per-trial length."""
    return {"data": trial_base.data, "classes": trial_base.classes, "image_size": trial_base.image_size,
            "epochs": trial_base.epochs, "limit": trial_base.limit}


def _check_same_study(study: Any, model: str, settings: dict[str, Any], out: Path) -> None:
    """A study tunes one model on one task: continuing it with another model, other data, classes or trial length
    would mix incomparable trials (and the pruner would compare them)."""
    previous = study.user_attrs.get("model")
    if previous is None:
        study.set_user_attr("model", model)
    elif previous != model:
        raise ConfigError(f"the study in {out} tunes '{previous}', not '{model}'; use another --out")
    stored = study.user_attrs.get("settings")
    if stored is None:  # a new study, or one from before settings were recorded
        study.set_user_attr("settings", settings)
        return
    changed = [f"{k} {stored.get(k)!r} -> {v!r}" for k, v in settings.items() if stored.get(k) != v]
    if changed:
        raise ConfigError(f"the study in {out} ran under other settings ({'; '.join(changed)}); continue it with "
                          "the same ones or use another --out")


class _DropUserErrors(logging.Filter):
    """Hide optuna's traceback for a trial that failed on bad input (a FerlabError) or was stopped with Ctrl-C: the
    CLI prints that error, or `ferlab: interrupted`, as its one line; any other failure keeps optuna's full report."""

    def __init__(self) -> None:
        super().__init__()
        self.hid_one = False

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], FerlabError | KeyboardInterrupt):
            self.hid_one = True
            return False
        return not (self.hid_one and "failed with value None" in record.getMessage())  # its follow-up line


def _objective(base: TrainConfig, space: SearchSpace, out: Path, trainer: Callable[..., Path], dataset: Any,
               progress: bool) -> Callable[[Any], float]:
    import optuna

    def objective(trial: Any) -> float:
        params = space.sample(trial)
        run_dir = out / "trials" / f"trial_{trial.number:04d}"
        cfg = trial_config(base, params, run_dir)
        trial.set_user_attr("run_dir", str(run_dir))

        def on_epoch_end(row: dict[str, Any]) -> None:
            trial.report(float(row["val_accuracy"]), step=int(row["epoch"]))
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {row['epoch']} (val acc {row['val_accuracy']:.4f})")

        started = time.perf_counter()
        trainer(cfg, dataset=dataset, on_epoch_end=on_epoch_end, quiet=not progress)
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        trial.set_user_attr("train_seconds", float(summary.get("train_seconds", time.perf_counter() - started)))
        trial.set_user_attr("epochs_done", int(summary.get("epochs_done", 0)))
        value = float(summary["best_val_accuracy"])
        if progress:
            print(f"trial {trial.number}: val acc {value:.4f}  {params}", file=sys.stderr, flush=True)
        return value

    return objective


def run_study(base: TrainConfig, space: SearchSpace, *, trials: int, out: str | Path,
              time_budget_minutes: float | None = None, seed: int = 0, trial_overrides: dict[str, Any] | None = None,
              trainer: Callable[..., Path] | None = None, dataset: Any = None, progress: bool = True) -> TuneResult:
    """Run trials until the study in `out` holds `trials` finished ones (or the time budget ends); write reports.

    `trial_overrides` (e.g. fewer epochs, a --limit) shorten every trial but stay out of `best_config.yaml`,
    which is `base` + the space's fixed values + the best parameters.
    `trainer(cfg, dataset=..., on_epoch_end=..., quiet=...)` defaults to `ferlab.train.fit`; `dataset` is loaded
    once when not given, so trials share one decoded copy.
    """
    import optuna

    from ferlab.tune.report import write_outputs

    if trials < 1:
        raise ConfigError(f"--trials must be >= 1, got {trials}")
    if time_budget_minutes is not None and time_budget_minutes <= 0:
        raise ConfigError(f"--time-budget must be > 0 minutes, got {time_budget_minutes}")
    out = Path(out)
    base = base.with_overrides(dict(space.fixed))
    base = base.replace(data=absolute_if_exists(base.data))  # best_config.yaml trains from any directory
    trial_base = base.with_overrides(dict(trial_overrides or {}))
    if trainer is None:
        from ferlab.train import fit as trainer
    if dataset is None:
        from ferlab.train.data_prep import load_dataset

        dataset = load_dataset(trial_base, trial_base.image_size or 48)
    study = open_study(out, seed)
    _check_same_study(study, base.model, _study_settings(trial_base), out)
    done_before = len(finished_trials(study))
    remaining = trials - done_before
    if remaining > 0:
        trial_log = logging.getLogger("optuna.study._optimize")  # where optuna reports a failed trial
        quiet = _DropUserErrors()
        trial_log.addFilter(quiet)
        try:
            study.optimize(_objective(trial_base, space, out, trainer, dataset, progress), n_trials=remaining,
                           timeout=None if time_budget_minutes is None else time_budget_minutes * 60,
                           show_progress_bar=False)
        except ValueError as err:
            if "dynamic value space" not in str(err):
                raise
            raise ConfigError(f"the search space differs from the one the study in {out} was run with "
                              "(a parameter's choices changed); use its space or another --out") from None
        finally:
            trial_log.removeFilter(quiet)
    elif progress:
        print(f"study in {out} already holds {done_before} finished trials (>= {trials}); writing reports only",
              file=sys.stderr)
    files = write_outputs(study, base, space, out)
    finished = finished_trials(study)
    complete = [t for t in finished if t.state == optuna.trial.TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value) if complete else None
    return TuneResult(
        out=out, storage=f"sqlite:///{out / 'study.db'}", trials_total=len(finished), complete=len(complete),
        pruned=len(finished) - len(complete), ran_now=len(finished) - done_before,
        best_trial=None if best is None else best.number, best_val_accuracy=None if best is None else best.value,
        best_params={} if best is None else dict(best.params), files={k: str(v) for k, v in files.items()},
    )
