"""`ferlab tune --model NAME --data SOURCE --trials N --out DIR`: an Optuna hyperparameter search, resumable."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "tune", help="search hyperparameters with Optuna (resumable study in --out)",
        description="Seeded TPE search with median pruning on per-epoch validation accuracy (a split carved from "
                    "training; the test split is never read). Calling again with the same --out continues the study "
                    "up to --trials finished trials. Writes best_config.yaml, trials.csv/.md, PNG pictures and "
                    "tune_report.html.")
    p.add_argument("--model", help="registry model name (torch model or classical baseline such as hog_svm)")
    p.add_argument("--data", help="data source: FER2013 zip/folder/CSV or a class-per-folder dataset")
    p.add_argument("--trials", type=int, help="finished trials the study should hold in total")
    p.add_argument("--out", help="study folder (study.db, trials/, reports)")
    p.add_argument("--time-budget", type=float, metavar="MIN", help="start no new trial after this many minutes")
    p.add_argument("--space", metavar="FILE", help="YAML search space overriding the model family's default")
    p.add_argument("--epochs-per-trial", type=int, metavar="E",
                   help="epochs per trial (default: --config's, else 5); not in best_config.yaml")
    p.add_argument("--limit", type=int, help="train each trial on at most N images (stratified); not in best_config")
    p.add_argument("--config", help="base training YAML (TrainConfig fields) the trials start from")
    p.add_argument("--classes", help="class scheme: 7, 4, 2, valence or a custom spec")
    p.add_argument("--seed", type=int, default=0, help="sampler and training seed (default: 0)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra base config override (repeatable)")
    p.add_argument("--show-space", action="store_true", help="print the resolved search space as YAML and exit")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars, per-epoch or per-trial lines (the reports keep every epoch)")
    p.add_argument("--json", action="store_true", help="print the study summary as JSON on stdout")
    p.set_defaults(func=run)


def _base_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Overrides of the base config: they end up in best_config.yaml too."""
    from ferlab.train.config import parse_overrides

    values: dict[str, Any] = {"seed": args.seed}
    for flag, field in (("model", "model"), ("data", "data"), ("classes", "classes")):
        if getattr(args, flag) is not None:
            values[field] = getattr(args, flag)
    values.update(parse_overrides(args.set))
    if args.no_progress:
        values["progress"] = False
    return values


def _trial_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Settings that only shorten trials (--epochs-per-trial, --limit); best_config.yaml keeps the base's."""
    values = {"epochs": args.epochs_per_trial, "limit": args.limit}
    if args.epochs_per_trial is None and not args.config:
        values["epochs"] = 5
    return {k: v for k, v in values.items() if v is not None}


def run(args: argparse.Namespace) -> int:
    import yaml

    from ferlab.errors import ConfigError
    from ferlab.train.config import TrainConfig, default_model_note
    from ferlab.tune.space import load_space
    from ferlab.tune.study import run_study

    overrides = _base_overrides(args)
    base = TrainConfig.from_yaml(args.config, overrides)
    space = load_space(args.space, base.model)
    note = default_model_note(args.config, overrides)
    if note:
        print(note, file=sys.stderr)
    if args.show_space:
        print(yaml.safe_dump(space.to_dict(), sort_keys=False), end="")
        return 0
    if not base.data:
        raise ConfigError("no training data: give --data SOURCE (or `data:` in --config)")
    if args.trials is None or not args.out:
        raise ConfigError("ferlab tune needs --trials N and --out DIR")
    result = run_study(base, space, trials=args.trials, out=args.out, time_budget_minutes=args.time_budget,
                       seed=args.seed, trial_overrides=_trial_overrides(args), progress=base.progress)
    if args.json:
        print(json.dumps(result.to_dict()))
    best = "none completed" if result.best_trial is None else (
        f"trial {result.best_trial}, val accuracy {result.best_val_accuracy:.4f}")
    print(f"tune {base.model}: {result.trials_total} trials ({result.complete} complete, {result.pruned} pruned, "
          f"{result.ran_now} run now); best {best}; reports in {result.out}", file=sys.stderr)
    return 0
