"""Hyperparameter search: search spaces per model family and resumable Optuna studies over `ferlab.train.fit`."""

from ferlab.tune.space import SearchSpace, default_space, load_space, parse_space
from ferlab.tune.study import TuneResult, run_study

__all__ = ["SearchSpace", "default_space", "load_space", "parse_space", "TuneResult", "run_study"]
