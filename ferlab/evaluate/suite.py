"""Benchmark suites: a YAML list of experiments (model x class scheme x training options, each with a budget).

```yaml
name: fer2013_zoo
defaults: {time_budget_minutes: 5, epochs: 200}   # TrainConfig fields (+ tta) applied to every experiment
speed: {batch_size: 256, latency_runs: 30}
experiments:
  - {name: simple_cnn-7, model: simple_cnn, classes: "7"}
  - {name: resnet18-pretrained, model: resnet18, pretrained: weights/resnet18.pt}  # skipped if the file is absent
```
Experiment keys are `name`, `tta`, `note` and any `ferlab.train.TrainConfig` field except `data` and `out`,
which `ferlab compare` sets (--data, DIR/runs/<name>). Unknown keys raise ConfigError naming close ones.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from ferlab.errors import ConfigError
from ferlab.io import read_yaml_file

__all__ = ["Suite", "Experiment", "SpeedConfig", "TTA_NAMES", "load_suite", "parse_suite"]

_SUITE_KEYS = ("name", "description", "defaults", "speed", "experiments")
_EXTRA_KEYS = ("name", "tta", "note")
_SET_BY_COMPARE = ("data", "out")
#: Test-time augmentation names (views in ferlab.train.checkpoint.TTA_MODES); kept torch-free for the CLI.
TTA_NAMES = ("none", "flip", "flipcrop", "tencrop")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass(frozen=True)
class SpeedConfig:
    """How inference speed is measured: throughput at `batch_size`, median latency of `latency_runs` single images."""

    batch_size: int = 256
    batches: int = 3
    latency_runs: int = 30
    latency_threads: int = 1  # torch threads while timing single images (see ferlab.evaluate.speed)


@dataclass(frozen=True)
class Experiment:
    """One row of the leaderboard: training overrides (TrainConfig fields) and the evaluation's TTA."""

    name: str
    train: tuple[tuple[str, Any], ...]  # sorted (field, value) pairs; dict/list values frozen as YAML text
    tta: str = "none"
    note: str = ""

    @property
    def options(self) -> dict[str, Any]:
        return {k: yaml.safe_load(v) if isinstance(v, _Frozen) else v for k, v in self.train}

    @property
    def pretrained(self) -> str | None:
        return self.options.get("pretrained")

    def train_config(self, data: str | Path, out: str | Path):  # noqa: ANN201 - ferlab.train.TrainConfig
        """The resolved TrainConfig of this experiment for a data source and run directory.

        The data path is made absolute, so the run's config.yaml names the same data whichever folder a later
        `ferlab compare` runs from (a relative path made it look changed, and the run was retrained).
        """
        from ferlab.train.config import TrainConfig

        return TrainConfig.from_dict({**self.options, "data": str(Path(data).expanduser().resolve()),
                                      "out": str(out)})


class _Frozen(str):
    """YAML text standing for a dict/list value, so Experiment stays hashable."""


@dataclass(frozen=True)
class Suite:
    name: str
    experiments: tuple[Experiment, ...]
    description: str = ""
    speed: SpeedConfig = SpeedConfig()
    path: str = ""

    def select(self, only: list[str] | None) -> Suite:
        """Keep the named experiments (suite order); unknown names raise ConfigError with close names."""
        if not only:
            return self
        known = [e.name for e in self.experiments]
        for name in only:
            if name not in known:
                raise ConfigError(f"suite '{self.name}' has no experiment '{name}'{_hint(name, known)}")
        return Suite(self.name, tuple(e for e in self.experiments if e.name in only), self.description,
                     self.speed, self.path)


def _hint(key: str, names: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(str(key), list(names), n=3, cutoff=0.5)
    return f"; did you mean {', '.join(close)}?" if close else ""


def _check_keys(mapping: dict, allowed: tuple[str, ...], where: str) -> None:
    for key in mapping:
        if key in _SET_BY_COMPARE:
            raise ConfigError(f"{where}: '{key}' is set by `ferlab compare` (--data / --out), not by the suite")
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key '{key}'{_hint(key, allowed)}")


def _freeze(value: Any) -> Any:
    return _Frozen(yaml.safe_dump(value, sort_keys=True)) if isinstance(value, dict | list) else value


def _check_model(name: Any, where: str) -> None:
    from ferlab.errors import ModelError
    from ferlab.models import model_entrypoint

    try:
        model_entrypoint(str(name))
    except ModelError as err:
        try:
            from ferlab.models.classical import is_classical
        except ImportError:
            raise ConfigError(f"{where}: {err}") from None
        if not is_classical(str(name)):
            raise ConfigError(f"{where}: {err}") from None


def _experiment(raw: Any, defaults: dict, index: int, train_keys: tuple[str, ...]) -> Experiment:
    where = f"experiment #{index + 1}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of keys, got {type(raw).__name__}")
    if raw.get("name"):
        where = f"experiment '{raw['name']}'"
    _check_keys(raw, _EXTRA_KEYS + train_keys, where)
    merged = {**defaults, **raw}
    name = str(merged.get("name") or "")
    if not _NAME_RE.match(name):
        raise ConfigError(f"{where}: needs a 'name' made of letters, digits and _ . + - (got '{name}')")
    where = f"experiment '{name}'"
    tta = str(merged.get("tta", "none"))
    if tta not in TTA_NAMES:
        raise ConfigError(f"{where}: unknown tta '{tta}'; choose from {', '.join(TTA_NAMES)}")
    train = {k: v for k, v in merged.items() if k not in _EXTRA_KEYS}
    if "model" not in train:
        raise ConfigError(f"{where}: needs a 'model'")
    _check_model(train["model"], where)
    from ferlab.train.config import TrainConfig

    try:  # validate values now, not hours into the suite
        TrainConfig.from_dict({**train, "data": "-", "out": "-"})
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
    return Experiment(name, tuple(sorted((k, _freeze(v)) for k, v in train.items())), tta,
                      str(merged.get("note") or ""))


def parse_suite(raw: Any, path: str = "") -> Suite:
    """Validate a suite mapping (as loaded from YAML) into a frozen Suite."""
    from ferlab.train.config import TrainConfig

    if not isinstance(raw, dict):
        raise ConfigError(f"suite {path} must be a YAML mapping with 'experiments'")
    _check_keys(raw, _SUITE_KEYS, f"suite {path}".strip())
    train_keys = tuple(f.name for f in fields(TrainConfig) if f.name not in _SET_BY_COMPARE)
    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ConfigError("suite 'defaults' must be a mapping")
    _check_keys(defaults, ("tta", "note") + train_keys, "suite defaults")
    speed_raw = raw.get("speed") or {}
    speed_keys = tuple(f.name for f in fields(SpeedConfig))
    if not isinstance(speed_raw, dict):
        raise ConfigError("suite 'speed' must be a mapping")
    _check_keys(speed_raw, speed_keys, "suite speed")
    try:
        speed = SpeedConfig(**{k: int(v) for k, v in speed_raw.items()})
    except (TypeError, ValueError):
        raise ConfigError(f"suite speed values must be integers: {speed_raw}") from None
    if min(speed.batch_size, speed.batches, speed.latency_runs, speed.latency_threads) < 1:
        raise ConfigError("suite speed values must be >= 1")
    items = raw.get("experiments")
    if not isinstance(items, list) or not items:
        raise ConfigError(f"suite {path} lists no experiments")
    experiments = tuple(_experiment(e, defaults, i, train_keys) for i, e in enumerate(items))
    names = [e.name for e in experiments]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"suite {path}: experiment names must be unique, repeated: {', '.join(dupes)}")
    return Suite(str(raw.get("name") or Path(path).stem or "suite"), experiments, str(raw.get("description") or ""),
                 speed, str(path))


def load_suite(path: str | Path) -> Suite:
    """Read and validate a suite YAML file."""
    return parse_suite(read_yaml_file(path, "suite"), str(path))
