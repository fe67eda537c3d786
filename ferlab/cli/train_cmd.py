"""`ferlab train --model NAME --data SOURCE --epochs N --out RUN_DIR` and `ferlab train --resume RUN_DIR`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]

#: CLI flag destination -> TrainConfig field.
_FLAG_FIELDS = {
    "model": "model", "data": "data", "epochs": "epochs", "out": "out", "classes": "classes", "limit": "limit",
    "seed": "seed", "batch_size": "batch_size", "lr": "lr", "optimizer": "optimizer", "schedule": "schedule",
    "augment": "augment", "time_budget": "time_budget_minutes", "pretrained": "pretrained", "device": "device",
    "threads": "threads",
}
#: Fields a resumed run may change; anything else would make it a different experiment.
_RESUMABLE = {"epochs", "time_budget_minutes", "early_stopping_patience", "progress", "device", "threads", "data",
              "manifest", "out"}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train a model into a run directory (or resume one)",
        description="Train a registry model on a face dataset. The run directory receives best.pt, last.pt, "
                    "metrics.csv, config.yaml, curves.png and summary.json. Options come from --config (YAML), "
                    "then the flags, then --set key=value. "
                    "Distributed: torchrun --nproc_per_node N -m ferlab train ...")
    p.add_argument("--model", help="registry model name (see `ferlab models`)")
    p.add_argument("--data", help="data source: FER2013 zip/folder/CSV or a class-per-folder dataset")
    p.add_argument("--epochs", type=int, help="epochs in total (with --resume: continue up to this many)")
    p.add_argument("--out", help="run directory to create")
    p.add_argument("--classes", help="class scheme: all (default: the data's classes), 7, 4, 2, valence or a custom "
                                        "spec (pos=happy,surprise;neg=sad)")
    p.add_argument("--limit", type=int, help="train on at most N images (stratified; for quick runs)")
    p.add_argument("--config", help="YAML file of TrainConfig fields")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last.pt")
    p.add_argument("--seed", type=int, help="random seed (runs are deterministic for a given seed)")
    p.add_argument("--batch-size", type=int, help="training batch size")
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--optimizer", help="sgd (Nesterov) | adam | adamw")
    p.add_argument("--schedule", help="cosine | onecycle | plateau | none")
    p.add_argument("--augment", help="augmentation preset: none | light | standard | strong")
    p.add_argument("--time-budget", type=float, metavar="MIN", help="stop cleanly after this many minutes")
    p.add_argument("--pretrained", help="weights file to start from (a ferlab checkpoint or the backbone's file)")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--threads", type=int, help="torch CPU threads (0: torch's default)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any TrainConfig field, e.g. --set label_smoothing=0.1 --set augment_options.rotate=20")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print summary.json on stdout when done")
    p.set_defaults(func=run)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    from ferlab.train.config import parse_overrides

    values = {field: getattr(args, dest) for dest, field in _FLAG_FIELDS.items() if getattr(args, dest) is not None}
    values.update(parse_overrides(args.set))
    if args.no_progress:
        values["progress"] = False
    return values


def _resume_config(run_dir: Path, overrides: dict[str, Any]):  # noqa: ANN202 - TrainConfig
    from ferlab.errors import CheckpointError, ConfigError
    from ferlab.train.checkpoint import load_checkpoint
    from ferlab.train.config import TrainConfig

    if (run_dir / "config.yaml").is_file() and not (run_dir / "last.pt").exists():
        raise CheckpointError(f"{run_dir} has no checkpoint yet: the run stopped before its first epoch ended, so "
                              "there is nothing to resume; start it again with the command that created it")
    ckpt = load_checkpoint(run_dir / "last.pt")
    if not isinstance(ckpt.get("config"), dict):
        raise CheckpointError(f"{run_dir / 'last.pt'} holds no training config to resume from")
    saved = ckpt["config"]
    changed = sorted(k for k in overrides if k.split(".")[0] not in _RESUMABLE and saved.get(k) != overrides[k])
    if changed:
        raise ConfigError(f"--resume continues a run as it was configured; cannot change {', '.join(changed)} "
                          f"(may change: {', '.join(sorted(_RESUMABLE - {'out'}))})")
    done = int(ckpt.get("epoch") or 0)
    if "epochs" in overrides and int(overrides["epochs"]) < done:  # it would rewrite config and summary, train nothing
        raise ConfigError(f"{run_dir} has already trained {done} epochs; --epochs must be at least {done}")
    return TrainConfig.from_dict({**ckpt["config"], "out": str(run_dir)}).with_overrides(overrides)


def _yaml_has(path: str | None, key: str) -> bool:
    """Whether the config file (or a `base:` file under it) sets `key`."""
    from ferlab.train.config import read_config_mapping

    return bool(path) and key in read_config_mapping(path)


def run(args: argparse.Namespace) -> int:
    from ferlab.errors import ConfigError
    from ferlab.train.config import TrainConfig, default_model_note
    from ferlab.train.fit import fit

    overrides = _overrides(args)
    if args.resume:
        if args.config or (args.out and Path(args.out) != Path(args.resume)):
            raise ConfigError("--resume takes its configuration from the run directory; drop --config/--out")
        overrides.pop("out", None)
        cfg = _resume_config(Path(args.resume), overrides)
        run_dir = fit(cfg, resume=True)
    else:
        cfg = TrainConfig.from_yaml(args.config, overrides)
        note = default_model_note(args.config, overrides)
        if note:
            print(note, file=sys.stderr)
        if not cfg.data:
            raise ConfigError("no training data: give --data SOURCE (or `data:` in --config)")
        if "out" not in overrides and not _yaml_has(args.config, "out"):
            raise ConfigError("no run directory: give --out RUN_DIR (or `out:` in --config)")
        run_dir = fit(cfg)
    summary_path = run_dir / "summary.json"
    if os.environ.get("RANK", "0") == "0" and summary_path.is_file():
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        if args.json:
            print(json.dumps(summary))
        print(f"{summary['model']}: best val accuracy {summary['best_val_accuracy']:.4f} at epoch "
              f"{summary['best_epoch']} of {summary['epochs_done']} ({summary['stop_reason']}); run in {run_dir}",
              file=sys.stderr)
    return 0
