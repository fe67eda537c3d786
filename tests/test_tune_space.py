"""Search spaces: family defaults, YAML overrides, and every kind of bad key a user can write."""

from __future__ import annotations

import pytest
from optuna.trial import FixedTrial

from ferlab.errors import ConfigError
from ferlab.train import TrainConfig
from ferlab.tune.space import default_space, load_space, parse_space


def test_family_defaults() -> None:
    cnn = default_space("simple_cnn")
    assert {"lr", "weight_decay", "batch_size", "model_kwargs.dropout", "label_smoothing", "augment",
            "mixup"} == set(cnn.names())
    assert cnn.fixed == {}
    vit = default_space("vit_tiny_fer")
    assert "model_kwargs.drop_path" in vit.names() and vit.fixed == {"optimizer": "adamw"}
    assert default_space("hog_svm").names() == ("model_kwargs.C",)
    lr = next(p for p in cnn.params if p.name == "lr")
    assert lr.kind == "float" and lr.log and lr.low == pytest.approx(1e-4)


def test_yaml_override_replaces_removes_and_fixes(tmp_path) -> None:
    path = tmp_path / "space.yaml"
    path.write_text("params:\n  lr: {low: 1.0e-3, high: 1.0e-2, log: true}\n  mixup: null\n  dropout: {low: 0.1, "
                    "high: 0.2}\n  epochs: {low: 1, high: 3}\nfixed:\n  optimizer: sgd\n")
    space = load_space(path, "simple_cnn")
    by_name = {p.name: p for p in space.params}
    assert "mixup" not in by_name and by_name["lr"].low == pytest.approx(1e-3)
    assert by_name["model_kwargs.dropout"].high == pytest.approx(0.2)  # `dropout` is shorthand
    assert by_name["epochs"].kind == "int"
    assert space.fixed == {"optimizer": "sgd"}


def test_extends_none_starts_empty_and_strings_like_1e_4_are_numbers() -> None:
    space = parse_space({"extends": "none", "params": {"lr": {"low": "1e-4", "high": "1e-2", "log": True}}},
                        "simple_cnn")
    assert space.names() == ("lr",) and space.params[0].low == pytest.approx(1e-4)


def test_sampled_overrides_make_a_valid_train_config() -> None:
    space = default_space("vit_tiny_fer")
    params = {"lr": 1e-3, "weight_decay": 0.05, "batch_size": 64, "model_kwargs.dropout": 0.1,
              "model_kwargs.drop_path": 0.2, "label_smoothing": 0.1, "augment": "strong", "mixup": 0.2}
    overrides = space.sample(FixedTrial(params))
    cfg = TrainConfig(model="vit_tiny_fer", data="x").with_overrides({**space.fixed, **overrides})
    assert cfg.optimizer == "adamw" and cfg.model_kwargs == {"dropout": 0.1, "drop_path": 0.2}
    assert cfg.augment == "strong" and cfg.batch_size == 64


@pytest.mark.parametrize(("raw", "message"), [
    ({"parms": {}}, "unknown key"),
    ({"extends": "zoo"}, "extends must be"),
    ({"params": {"learning_rate": {"low": 0.1, "high": 1.0}}}, "unknown search parameter 'learning_rate'"),
    ({"params": {"data": {"choices": ["a", "b"]}}}, "unknown search parameter 'data'"),
    ({"params": {"model_kwargs.width": {"low": 1, "high": 4}}}, "has no option 'width'"),
    ({"params": {"lr": {"low": 0.1, "high": 1.0, "scale": "log"}}}, "unknown key"),
    ({"params": {"lr": {"low": 1.0, "high": 0.1}}}, "must be below high"),
    ({"params": {"lr": {"low": 0.0, "high": 0.1, "log": True}}}, "needs low > 0"),
    ({"params": {"lr": {"low": "fast", "high": 0.1}}}, "must be a number"),
    ({"params": {"lr": 0.01}}, "must be a mapping"),
    ({"params": {"batch_size": {"choices": []}}}, "non-empty list"),
    ({"params": {"lr": {"high": 0.1}}}, "needs low and high"),
    ({"fixed": {"lr": 0.01}}, "both searched and fixed"),
    ({"extends": "none"}, "is empty"),
    (["lr"], "must be a YAML mapping"),
])
def test_bad_space_is_a_config_error(raw, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_space(raw, "simple_cnn")


def test_missing_or_broken_space_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_space(tmp_path / "nope.yaml", "simple_cnn")
    bad = tmp_path / "bad.yaml"
    bad.write_text("params: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_space(bad, "simple_cnn")


def test_printed_space_round_trips_as_a_space_file(tmp_path) -> None:
    import yaml

    space = default_space("convnext_fer")
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space.to_dict()))
    loaded = load_space(path, "convnext_fer")
    assert set(loaded.params) == set(space.params) and loaded.fixed == space.fixed
