"""YAML files read by ferlab (train configs, suites, search spaces): a missing or malformed file is one line."""

from __future__ import annotations

import pytest

from ferlab.errors import ConfigError
from ferlab.evaluate.suite import load_suite
from ferlab.train.config import TrainConfig
from ferlab.tune.space import load_space

READERS = {"config": TrainConfig.from_yaml, "suite": load_suite,
           "search space": lambda path: load_space(path, "mini_xception")}


@pytest.mark.parametrize("kind", sorted(READERS))
def test_missing_and_malformed_files_are_one_line_config_errors(tmp_path, kind):
    read = READERS[kind]
    with pytest.raises(ConfigError, match=f"^{kind} file not found: .*nope.yaml$"):
        read(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match=f"^cannot read {kind} .*bad.yaml: [^\n]+$"):
        read(bad)
