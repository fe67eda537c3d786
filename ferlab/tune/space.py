"""Search spaces: a default per model family plus a YAML override, validated against TrainConfig.

A parameter name is a TrainConfig field (`lr`, `batch_size`, ...), a dotted key into a dict field
(`model_kwargs.dropout`, `augment_options.rotate`), or `dropout` (shorthand for `model_kwargs.dropout`).
YAML override (`--space FILE`)::

    extends: default        # default: start from the family's space; none: start empty
    params:
      lr: {low: 1.0e-4, high: 3.0e-3, log: true}
      batch_size: {choices: [32, 64]}
      mixup: null           # drop a default parameter
    fixed:                  # applied to every trial (any TrainConfig field)
      optimizer: adamw
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ferlab.errors import ConfigError
from ferlab.io import read_yaml_file

__all__ = ["Param", "SearchSpace", "FAMILY_SPACES", "model_family", "default_space", "load_space", "parse_space"]

_PARAM_KEYS = {"type", "low", "high", "log", "step", "choices"}
_TOP_KEYS = {"extends", "params", "fixed"}
_NOT_TUNABLE = {"model", "data", "out", "manifest", "pretrained", "device", "progress", "threads", "limit"}
_SHORTHANDS = {"dropout": "model_kwargs.dropout"}


@dataclass(frozen=True)
class Param:
    """One searched hyperparameter: float/int range (optionally log-scaled) or a categorical choice."""

    name: str
    kind: str  # float | int | categorical
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """Draw this parameter from an Optuna trial."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log, step=self.step)

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "categorical":
            return {"choices": list(self.choices)}
        out: dict[str, Any] = {"type": self.kind, "low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out


@dataclass(frozen=True)
class SearchSpace:
    """The parameters a study searches and the overrides every trial shares."""

    params: tuple[Param, ...]
    fixed: dict[str, Any] = field(default_factory=dict)

    def sample(self, trial: Any) -> dict[str, Any]:
        """TrainConfig overrides (dotted keys allowed) drawn for one trial."""
        return {p.name: p.suggest(trial) for p in self.params}

    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def to_dict(self) -> dict[str, Any]:
        return {"extends": "none", "params": {p.name: p.to_dict() for p in self.params}, "fixed": dict(self.fixed)}


#: family -> raw parameter specs (same schema as the YAML `params`); "default" serves families not listed.
FAMILY_SPACES: dict[str, dict[str, dict[str, Any]]] = {
    "default": {
        "lr": {"low": 1e-4, "high": 1e-2, "log": True},
        "weight_decay": {"low": 1e-6, "high": 1e-3, "log": True},
        "batch_size": {"choices": [32, 64, 128]},
        "model_kwargs.dropout": {"low": 0.0, "high": 0.6},
        "label_smoothing": {"low": 0.0, "high": 0.2},
        "augment": {"choices": ["light", "standard", "strong"]},
        "mixup": {"low": 0.0, "high": 0.4},
    },
    # Transformers and ConvNeXt train with AdamW, lower learning rates, stronger decay and stochastic depth.
    "vit": {
        "lr": {"low": 1e-4, "high": 3e-3, "log": True},
        "weight_decay": {"low": 1e-3, "high": 1e-1, "log": True},
        "batch_size": {"choices": [32, 64, 128]},
        "model_kwargs.dropout": {"low": 0.0, "high": 0.3},
        "model_kwargs.drop_path": {"low": 0.0, "high": 0.3},
        "label_smoothing": {"low": 0.0, "high": 0.2},
        "augment": {"choices": ["light", "standard", "strong"]},
        "mixup": {"low": 0.0, "high": 0.4},
    },
    "classical": {
        "model_kwargs.C": {"low": 1e-3, "high": 1.0, "log": True},
    },
}
FAMILY_SPACES["convnext"] = FAMILY_SPACES["vit"]
_FAMILY_FIXED: dict[str, dict[str, Any]] = {"vit": {"optimizer": "adamw"}, "convnext": {"optimizer": "adamw"}}


def model_family(model: str) -> str:
    """The family of a torch model or classical estimator (unknown names raise ModelError)."""
    from ferlab.models.classical import get_classical_spec, is_classical

    if is_classical(model):
        return get_classical_spec(model).family
    from ferlab.models import get_model_config

    return get_model_config(model).family


def _model_options(model: str) -> set[str] | None:
    """Options the model's builder accepts; None when it takes any keyword."""
    from ferlab.models.classical import get_classical_spec, is_classical

    if is_classical(model):
        return set(get_classical_spec(model).options())
    from ferlab.models import model_entrypoint

    params = inspect.signature(model_entrypoint(model)).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return set(params) - {"num_classes", "in_chans", "pretrained", "input_size"}


def _check_name(name: str, model: str) -> None:
    from ferlab.train.config import TrainConfig

    head, dot, rest = name.partition(".")
    field_names = {f.name for f in fields(TrainConfig)}
    if head not in field_names or head in _NOT_TUNABLE or (dot and head not in ("model_kwargs", "augment_options")):
        raise ConfigError(f"unknown search parameter '{name}': use a TrainConfig field, model_kwargs.NAME, "
                          f"augment_options.NAME or dropout")
    if head == "model_kwargs":
        options = _model_options(model)
        if options is not None and rest not in options:
            raise ConfigError(f"search parameter '{name}': model '{model}' has no option '{rest}'; "
                              f"options: {', '.join(sorted(options)) or 'none'}")


def _number(value: Any, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number, got {value!r}") from None


def _param(name: str, spec: Any) -> Param:
    if not isinstance(spec, dict):
        raise ConfigError(f"search parameter '{name}' must be a mapping like {{low: 0.0, high: 1.0}} or {{choices: "
                          f"[...]}}, got {spec!r}")
    unknown = sorted(set(spec) - _PARAM_KEYS)
    if unknown:
        raise ConfigError(f"search parameter '{name}' has unknown key(s) {', '.join(unknown)}; "
                          f"allowed: {', '.join(sorted(_PARAM_KEYS))}")
    if "choices" in spec:
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices or spec.get("type", "categorical") != "categorical":
            raise ConfigError(f"search parameter '{name}': choices must be a non-empty list")
        if any(isinstance(c, dict | list) for c in choices):
            raise ConfigError(f"search parameter '{name}': choices must be plain values")
        return Param(name, "categorical", choices=tuple(choices))
    if "low" not in spec or "high" not in spec:
        raise ConfigError(f"search parameter '{name}' needs low and high (or choices)")
    ints = all(isinstance(spec[k], int) and not isinstance(spec[k], bool) for k in ("low", "high"))
    kind = spec.get("type", "int" if ints else "float")
    if kind not in ("float", "int"):
        raise ConfigError(f"search parameter '{name}': type must be float, int or categorical, got {kind!r}")
    low, high = _number(spec["low"], f"{name}.low"), _number(spec["high"], f"{name}.high")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"search parameter '{name}': log must be true or false")
    if not low < high:
        raise ConfigError(f"search parameter '{name}': low ({low:g}) must be below high ({high:g})")
    if log and low <= 0:
        raise ConfigError(f"search parameter '{name}': a log range needs low > 0")
    step = None if spec.get("step") is None else _number(spec["step"], f"{name}.step")
    if step is not None and log:
        raise ConfigError(f"search parameter '{name}': step and log cannot be combined")
    return Param(name, kind, low, high, log, step)


def parse_space(raw: Any, model: str, *, source: str = "search space") -> SearchSpace:
    """Build a SearchSpace for `model` from a mapping in the YAML schema; any bad key raises ConfigError."""
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must be a YAML mapping with keys {', '.join(sorted(_TOP_KEYS))}")
    unknown = sorted(set(map(str, raw)) - _TOP_KEYS)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_TOP_KEYS))}")
    extends = raw.get("extends", "default")
    if extends not in ("default", "none"):
        raise ConfigError(f"{source}: extends must be 'default' or 'none', got {extends!r}")
    params, fixed = raw.get("params") or {}, raw.get("fixed") or {}
    if not isinstance(params, dict) or not isinstance(fixed, dict):
        raise ConfigError(f"{source}: params and fixed must be mappings")
    family = model_family(model)
    specs: dict[str, Any] = {}
    merged_fixed: dict[str, Any] = {}
    if extends == "default":
        options = _model_options(model)
        for name, spec in FAMILY_SPACES.get(family, FAMILY_SPACES["default"]).items():
            head, _, rest = name.partition(".")
            if head != "model_kwargs" or options is None or rest in options:
                specs[name] = spec
        merged_fixed.update(_FAMILY_FIXED.get(family, {}))
    for name, spec in params.items():
        name = _SHORTHANDS.get(str(name), str(name))
        _check_name(name, model)
        if spec is None:
            specs.pop(name, None)
        else:
            specs[name] = spec
    merged_fixed.update({str(k): v for k, v in fixed.items()})
    for name in merged_fixed:
        if name in specs:
            raise ConfigError(f"{source}: '{name}' is both searched and fixed")
    if not specs:
        raise ConfigError(f"{source}: the search space for '{model}' is empty")
    return SearchSpace(tuple(_param(name, spec) for name, spec in specs.items()), merged_fixed)


def default_space(model: str) -> SearchSpace:
    """The family default space for `model` (parameters its builder does not accept are left out)."""
    return parse_space({}, model)


def load_space(path: str | Path | None, model: str) -> SearchSpace:
    """The default space for `model`, overridden by the YAML file at `path` when given."""
    if path is None:
        return default_space(model)
    return parse_space(read_yaml_file(path, "search space"), model, source=str(path))
