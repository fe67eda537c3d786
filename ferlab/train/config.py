"""`TrainConfig`: every knob of a training run, as a frozen dataclass loaded from YAML plus overrides."""

from __future__ import annotations

import difflib
import math
import types
import typing
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from ferlab.errors import ConfigError
from ferlab.io import read_yaml_file

__all__ = ["BASE_KEY", "TrainConfig", "parse_overrides", "read_config_mapping"]


@dataclass(frozen=True)
class TrainConfig:
    """A training run. Field names are shared with suites and tuning (docs/architecture.md): never rename."""

    model: str = "simple_cnn"
    model_kwargs: dict = field(default_factory=dict)
    data: str = ""
    classes: str = "all"  # all (the data's own) | 7 | 4 | 2 | valence | custom spec (ferlab.data.resolve_scheme)
    image_size: int = 0  # 0: the model's own input size
    limit: int | None = None  # keep at most this many training images (stratified, deterministic)
    val_fraction: float = 0.1
    val_no_copies: bool = False  # keep exact copies of training images out of validation (FER2013 has many)
    val_seed: int | None = None  # seed of the validation carve; None: `seed` (set it to share one split across seeds)
    manifest: str | None = None  # cleaning manifest (clean.json) read by the loader
    epochs: int = 10
    time_budget_minutes: float | None = None
    batch_size: int = 64
    eval_batch_size: int = 256
    optimizer: str = "adam"  # sgd (Nesterov) | adam | adamw
    lr: float = 1e-3
    momentum: float = 0.9  # SGD momentum, beta1 for Adam(W)
    weight_decay: float = 1e-4  # never applied to biases and norm parameters
    schedule: str = "cosine"  # cosine | onecycle | plateau | none
    warmup_epochs: float = 0.0
    plateau_patience: int = 3
    label_smoothing: float = 0.0
    loss: str = "ce"  # ce | focal
    focal_gamma: float = 2.0
    class_weights: bool = False
    balanced_sampler: bool = False
    mixup: float = 0.0  # Beta(alpha, alpha) parameter; 0 disables
    cutmix: float = 0.0
    grad_clip: float | None = None  # max gradient L2 norm
    augment: str = "standard"  # none | light | standard | strong
    augment_options: dict = field(default_factory=dict)  # per-option overrides of the preset (AugmentConfig)
    early_stopping_patience: int | None = None  # epochs without val-accuracy gain before stopping
    swa_epochs: int = 0  # average the weights of the last N epochs (ferlab.train.swa); 0 disables
    pretrained: str | None = None  # weights file (ferlab checkpoint or the backbone's own file)
    teacher: str | None = None  # knowledge distillation from this ferlab checkpoint or run (ferlab.train.distill)
    distill_weight: float = 0.5  # share of the teacher's soft targets in the loss (the rest: the labels)
    distill_temperature: float = 4.0  # softens both predictions before they are compared
    freeze_backbone_epochs: int = 0
    finetune_lr_factor: float = 0.1  # learning-rate multiplier once the backbone is unfrozen
    seed: int = 0
    deterministic: bool = True
    channels_last: bool = True
    precision: str = "fp32"  # fp32 | bf16 (autocast forward pass; ferlab.train.engine.PRECISIONS)
    threads: int = 0  # 0: torch's default
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    progress: bool = True
    out: str = "runs/run"

    def __post_init__(self) -> None:
        _check_types(self)
        _check_values(self)

    # ---- construction ----
    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a mapping; unknown keys raise ConfigError naming the close field names."""
        _reject_unknown(values)
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | Path | None, overrides: dict[str, Any] | None = None) -> TrainConfig:
        """Load a YAML mapping (or nothing when `path` is None), over its `base:` file if it names one, and apply
        `overrides` on top."""
        values = read_config_mapping(path) if path is not None else {}
        for key, value in (overrides or {}).items():
            _merge_override(values, key, value)
        return cls.from_dict(values)

    def with_overrides(self, overrides: dict[str, Any]) -> TrainConfig:
        """A copy with `overrides` applied (dotted keys reach into dict fields, e.g. `augment_options.rotate`)."""
        values = self.to_dict()
        for key, value in overrides.items():
            _merge_override(values, key, value)
        return TrainConfig.from_dict(values)

    def replace(self, **changes: Any) -> TrainConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


#: The key a config file names another config with, whose values it then overrides (a candidate recipe states only
#: what it changes): a path relative to the file, resolved before the file is read as a TrainConfig.
BASE_KEY = "base"


def default_model_note(config_path: str | None, overrides: dict[str, Any]) -> str | None:
    """A note naming the default model when neither the flags nor the config file chose one, else None.

    Training the registry's default silently surprised users who forgot --model.
    """
    if "model" in overrides or (config_path and "model" in read_config_mapping(config_path)):
        return None
    return (f"ferlab: note: no --model given; using the default '{TrainConfig.model}' "
            "(`ferlab models` lists the others)")


def read_config_mapping(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file's values over those of its `base:` file (recursively); mappings (model_kwargs,
    augment_options) merge key by key, anything else is replaced. ConfigError for a missing, unreadable or
    non-mapping file and for a cycle of bases."""
    path = Path(path)
    if path.resolve() in _seen:
        raise ConfigError(f"config {path} is its own base (through {' -> '.join(str(p) for p in _seen)})")
    loaded = read_yaml_file(path, "config")
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config {path} must be a YAML mapping of field: value")
    base = loaded.pop(BASE_KEY, None)
    if base is None:
        return loaded
    if not isinstance(base, str) or not base:
        raise ConfigError(f"config {path}: {BASE_KEY!r} must be the path of another config file")
    values = read_config_mapping(path.parent / base, (*_seen, path.resolve()))
    return _merge_mappings(values, loaded)


def _merge_mappings(below: dict[str, Any], above: dict[str, Any]) -> dict[str, Any]:
    out = dict(below)
    for key, value in above.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge_mappings(out[key], value)
        else:
            out[key] = value
    return out


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """`["lr=0.01", "augment_options.rotate=20"]` -> {"lr": 0.01, ...}; values are parsed as YAML scalars."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got '{item}'")
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            out[key.strip()] = raw
    return out


def _merge_override(values: dict[str, Any], key: str, value: Any) -> None:
    head, dot, rest = key.partition(".")
    if dot:
        _reject_unknown({head: None})
        nested = dict(values.get(head) or {})
        nested[rest] = value
        values[head] = nested
    else:
        values[key] = value


#: Names people bring from other tools -> our field.
_ALIASES = {"learning_rate": "lr", "bs": "batch_size", "num_epochs": "epochs", "wd": "weight_decay",
            "arch": "model", "architecture": "model", "scheduler": "schedule", "optim": "optimizer"}


def _close_names(key: str, names: list[str]) -> list[str]:
    """Aliases, fields that are a word of `key` (lr_rate -> lr), then difflib's close matches."""
    tokens = key.lower().split("_")
    found = [_ALIASES[key.lower()]] if key.lower() in _ALIASES else []
    found += [n for n in names if n in tokens or n.startswith(key.lower())]
    found += difflib.get_close_matches(key, names, n=3, cutoff=0.5)
    return list(dict.fromkeys(found))[:3]


def _reject_unknown(values: dict[str, Any]) -> None:
    names = [f.name for f in fields(TrainConfig)]
    for key in values:
        if key not in names:
            close = _close_names(str(key), names)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(f"unknown training option '{key}'{hint}")


def _allowed(tp: Any) -> tuple[type, ...]:
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return tuple(t for a in typing.get_args(tp) for t in _allowed(a))
    return (type(None),) if tp is type(None) else (tp,)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_types(cfg: TrainConfig) -> None:
    hints = typing.get_type_hints(TrainConfig)
    for f in fields(cfg):
        value, allowed = getattr(cfg, f.name), _allowed(hints[f.name])
        if isinstance(value, bool) and bool not in allowed:
            ok = False
        elif isinstance(value, int) and not isinstance(value, bool) and float in allowed and int not in allowed:
            object.__setattr__(cfg, f.name, float(value))
            ok = True
        elif isinstance(value, str) and float in allowed and str not in allowed and _is_float(value):
            object.__setattr__(cfg, f.name, float(value))  # YAML 1.1 reads `1e-3` (no dot) as a string
            ok = True
        elif isinstance(value, int | float) and str in allowed:  # YAML reads `classes: 4` as a number
            object.__setattr__(cfg, f.name, str(value))
            ok = True
        else:
            ok = isinstance(value, allowed)
        if not ok:
            names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
            raise ConfigError(f"training option {f.name} must be {names}, got {value!r}")


def _check_values(cfg: TrainConfig) -> None:
    from ferlab.data.augment import AUGMENT_PRESETS, resolve_augment
    from ferlab.train.engine import PRECISIONS
    from ferlab.train.losses import LOSSES
    from ferlab.train.optim import OPTIMIZERS, SCHEDULES

    for f in fields(cfg):  # NaN passes every range check below (all comparisons are false); inf trains NaN weights
        value = getattr(cfg, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"training option {f.name} must be a finite number, got {value}")
    for name, registry in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("loss", LOSSES),
                           ("augment", AUGMENT_PRESETS), ("precision", PRECISIONS)):
        if getattr(cfg, name) not in registry:
            raise ConfigError(f"unknown {name} '{getattr(cfg, name)}'; choose from {', '.join(registry)}")
    positive = {"epochs": cfg.epochs, "batch_size": cfg.batch_size, "eval_batch_size": cfg.eval_batch_size,
                "lr": cfg.lr, "distill_temperature": cfg.distill_temperature}
    for name, value in positive.items():
        if value <= 0:
            raise ConfigError(f"training option {name} must be > 0, got {value}")
    non_negative = {"weight_decay": cfg.weight_decay, "warmup_epochs": cfg.warmup_epochs, "mixup": cfg.mixup,
                    "cutmix": cfg.cutmix, "freeze_backbone_epochs": cfg.freeze_backbone_epochs,
                    "threads": cfg.threads, "focal_gamma": cfg.focal_gamma, "image_size": cfg.image_size,
                    "plateau_patience": cfg.plateau_patience, "momentum": cfg.momentum, "seed": cfg.seed,
                    "val_seed": cfg.val_seed or 0}
    for name, value in non_negative.items():
        if value < 0:
            raise ConfigError(f"training option {name} must be >= 0, got {value}")
    for name in ("limit", "time_budget_minutes", "grad_clip", "early_stopping_patience"):
        value = getattr(cfg, name)
        if value is not None and value <= 0:
            raise ConfigError(f"training option {name} must be > 0 (or null to disable), got {value}")
    if cfg.batch_size % 2 and cfg.channels_last:
        raise ConfigError(f"batch_size {cfg.batch_size} is odd: torch's CPU backward of some channels_last "
                          "convolutions crashes the process on odd batches; use an even size (or channels_last=false)")
    if not 0 <= cfg.swa_epochs <= cfg.epochs:
        raise ConfigError(f"swa_epochs must be between 0 and epochs ({cfg.epochs}), got {cfg.swa_epochs}")
    if not 0.0 <= cfg.distill_weight <= 1.0:
        raise ConfigError(f"distill_weight must be in [0, 1], got {cfg.distill_weight}")
    if not 0.0 < cfg.val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in (0, 1), got {cfg.val_fraction}")
    if not 0.0 <= cfg.label_smoothing < 1.0:
        raise ConfigError(f"label_smoothing must be in [0, 1), got {cfg.label_smoothing}")
    if not 0.0 < cfg.finetune_lr_factor <= 1.0:
        raise ConfigError(f"finetune_lr_factor must be in (0, 1], got {cfg.finetune_lr_factor}")
    if cfg.momentum >= 1.0:
        raise ConfigError(f"momentum must be < 1, got {cfg.momentum}")
    if not (cfg.device in ("auto", "cpu", "cuda", "mps") or cfg.device.startswith("cuda:")):
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got '{cfg.device}'")
    resolve_augment(cfg.augment, cfg.augment_options)
