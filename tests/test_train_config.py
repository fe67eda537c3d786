"""TrainConfig: YAML + overrides, unknown keys with close names, bad values, --set parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferlab.errors import ConfigError
from ferlab.train.config import TrainConfig, parse_overrides


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: sequential_small\nepochs: 5\nlr: 0.01\naugment_options: {rotate: 20}\n")
    cfg = TrainConfig.from_yaml(path, {"epochs": 3, "augment_options.flip": 0.0})
    assert (cfg.model, cfg.epochs, cfg.lr) == ("sequential_small", 3, 0.01)
    assert cfg.augment_options == {"rotate": 20, "flip": 0.0}
    again = TrainConfig.from_dict(cfg.to_dict())
    assert again == cfg
    assert "model: sequential_small" in cfg.to_yaml()


def test_floats_in_exponent_notation_are_floats(tmp_path):
    """YAML 1.1 (PyYAML) reads `1e-3` without a dot as a string; float options take it as the number it is."""
    (tmp_path / "c.yaml").write_text("lr: 1e-3\nweight_decay: 5e-4\n")
    cfg = TrainConfig.from_yaml(tmp_path / "c.yaml", overrides=parse_overrides(["label_smoothing=1e-1"]))
    assert (cfg.lr, cfg.weight_decay, cfg.label_smoothing) == (0.001, 0.0005, 0.1)
    with pytest.raises(ConfigError, match="lr must be float, got '1e-3x'"):
        TrainConfig(lr="1e-3x")


def test_int_accepted_for_float_fields():
    cfg = TrainConfig(lr=1, time_budget_minutes=2)
    assert isinstance(cfg.lr, float) and cfg.time_budget_minutes == 2.0


def test_unknown_key_names_close_fields(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("learning_rate: 0.1\nbatchsize: 4\n")
    with pytest.raises(ConfigError, match="unknown training option 'learning_rate'"):
        TrainConfig.from_yaml(path)
    with pytest.raises(ConfigError, match="did you mean batch_size"):
        TrainConfig.from_dict({"batchsize": 4})


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"epochs": 0}, "epochs must be > 0"),
        ({"lr": "fast"}, "lr must be float"),
        ({"optimizer": "rmsprop"}, "unknown optimizer 'rmsprop'"),
        ({"schedule": "step"}, "unknown schedule"),
        ({"augment": "wild"}, "unknown augment"),
        ({"augment_options": {"spin": 3}}, "unknown augment option"),
        ({"val_fraction": 1.5}, "val_fraction"),
        ({"channels_last": "yes"}, "channels_last must be bool"),
        ({"val_no_copies": "maybe"}, "val_no_copies must be bool"),
        ({"val_seed": "one"}, "val_seed must be"),
        ({"limit": 0}, "limit must be > 0"),
        ({"device": "tpu"}, "device must be"),
        ({"seed": -1}, "seed must be >= 0"),
        ({"val_seed": -3}, "val_seed must be >= 0"),
        ({"lr": float("nan")}, "lr must be a finite number"),
        ({"momentum": float("nan")}, "momentum must be a finite number"),
        ({"warmup_epochs": float("nan")}, "warmup_epochs must be a finite number"),
        ({"weight_decay": float("inf")}, "weight_decay must be a finite number"),
        ({"grad_clip": float("nan")}, "grad_clip must be a finite number"),
        ({"mixup": "nan"}, "mixup must be a finite number"),
        ({"time_budget_minutes": float("nan")}, "time_budget_minutes must be a finite number"),
    ],
)
def test_bad_values(bad, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig(**bad)


def test_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        TrainConfig.from_yaml(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        TrainConfig.from_yaml(tmp_path / "list.yaml")


def test_base_config_is_overridden_key_by_key(tmp_path):
    """A candidate recipe names its parent with `base:` and states only what it changes; mappings merge."""
    (tmp_path / "parent").mkdir()
    (tmp_path / "parent" / "v1.yaml").write_text(
        "model: fer_resnet\nmodel_kwargs: {widths: [32, 64, 128, 256], dropout: 0.2}\nepochs: 110\nlr: 0.1\n"
        "augment_options: {rotate: 10, erase: 0.25}\nout: runs/v1\n")
    (tmp_path / "v2.yaml").write_text("base: parent/v1.yaml\nepochs: 58\nmodel_kwargs: {widths: [16, 32, 64, 128]}\n")
    (tmp_path / "v3.yaml").write_text("base: v2.yaml\naugment_options: {erase: 0.5}\n")
    cfg = TrainConfig.from_yaml(tmp_path / "v3.yaml", {"lr": 0.05})
    assert (cfg.model, cfg.epochs, cfg.lr, cfg.out) == ("fer_resnet", 58, 0.05, "runs/v1")
    assert cfg.model_kwargs == {"widths": [16, 32, 64, 128], "dropout": 0.2}
    assert cfg.augment_options == {"rotate": 10, "erase": 0.5}
    assert "base" not in cfg.to_yaml()  # a run records the resolved config, which stands alone


@pytest.mark.parametrize("text, match", [
    ("base: missing.yaml\n", "config file not found: .*missing.yaml"),
    ("base: 3\n", "'base' must be the path of another config file"),
    ("base: loop.yaml\n", "is its own base"),
])
def test_bad_base_is_a_config_error(tmp_path, text, match):
    (tmp_path / "loop.yaml").write_text(text)
    with pytest.raises(ConfigError, match=match):
        TrainConfig.from_yaml(tmp_path / "loop.yaml")


def test_train_cli_reads_out_from_a_base_config(tmp_path):
    from ferlab.cli.train_cmd import _yaml_has

    (tmp_path / "a.yaml").write_text("out: runs/a\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\nepochs: 2\n")
    assert _yaml_has(str(tmp_path / "b.yaml"), "out") and not _yaml_has(str(tmp_path / "b.yaml"), "data")


def test_default_model_note_only_when_nothing_chose_a_model(tmp_path, capsys):
    from ferlab.cli.main import main
    from ferlab.train.config import default_model_note

    (tmp_path / "a.yaml").write_text("model: mini_xception\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\nepochs: 2\n")
    (tmp_path / "c.yaml").write_text("epochs: 2\n")
    assert default_model_note(None, {"model": "vgg_fer"}) is None
    assert default_model_note(str(tmp_path / "b.yaml"), {}) is None  # chosen by the base file
    for path in (None, str(tmp_path / "c.yaml")):
        assert "no --model given; using the default 'simple_cnn'" in default_model_note(path, {})
    # the CLI prints it before anything else happens (here tune stops at --show-space, train at its missing --data)
    assert main(["tune", "--show-space"]) == 0
    assert "no --model given; using the default 'simple_cnn'" in capsys.readouterr().err
    assert main(["train", "--epochs", "1", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "using the default 'simple_cnn'" in err and "no training data" in err
    assert main(["tune", "--model", "mini_xception", "--show-space"]) == 0
    assert "note" not in capsys.readouterr().err


def test_odd_batch_sizes_are_refused_before_they_crash_the_process():
    """torch 2.14's CPU channels_last backward segfaults on odd batches of some models (mini_xception)."""
    from ferlab.train.engine import _batches

    for odd in (1, 33):
        with pytest.raises(ConfigError, match=f"batch_size {odd} is odd"):
            TrainConfig(batch_size=odd)
    assert TrainConfig(batch_size=33, channels_last=False).batch_size == 33
    assert _batches(49, 64) == [(0, 48)]  # a set smaller than one batch trains on an even number of images
    assert _batches(1, 64) == [] and _batches(130, 64) == [(0, 64), (64, 128)]


def test_parse_overrides():
    assert parse_overrides(["lr=0.01", "mixup=0", "pretrained=null", "classes=4", "model=vgg_fer"]) == {
        "lr": 0.01, "mixup": 0, "pretrained": None, "classes": 4, "model": "vgg_fer"}
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["lr"])


def test_example_config_loads():
    from pathlib import Path

    cfg = TrainConfig.from_yaml(Path(__file__).resolve().parents[1] / "configs" / "example_simple_cnn.yaml")
    assert cfg.model == "simple_cnn"


_CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("name", sorted(f"bundled/{p.name}" for p in (_CONFIGS / "bundled").glob("*.yaml"))
                         + ["tuned/mini_xception-fer2013.yaml"])
def test_shipped_recipes_parse_and_keep_the_validation_carve(name: str) -> None:
    cfg = TrainConfig.from_yaml(_CONFIGS / name)
    assert cfg.epochs > 0 and cfg.model
    if name.startswith("bundled/"):  # every bundled stage or candidate selects on a 10 % carve with seed 0, or (a
        # refit, v8) on a smaller carve with seed 0, which lies inside it (test_foreign_validation_scores_two_models...)
        val_seed = cfg.seed if cfg.val_seed is None else cfg.val_seed
        assert (val_seed, cfg.classes) == (0, "7") and 0 < cfg.val_fraction <= 0.1
        assert cfg.time_budget_minutes is not None and cfg.time_budget_minutes <= 180


def test_ensemble_members_share_validation_and_the_budget() -> None:
    """The v7 members differ only in their training seed: same validation images, caps within 3 h together."""
    a, b = (TrainConfig.from_yaml(_CONFIGS / f"bundled/fer_resnet_w24_v7{m}.yaml") for m in "ab")
    assert a.seed != b.seed
    assert b.replace(seed=a.seed, val_seed=None) == a
    assert a.time_budget_minutes + b.time_budget_minutes <= 180


def test_shipped_recipe_matches_the_config_its_run_recorded() -> None:
    """The candidates name v8's recipe as their `base:`, so v8's file must stay the recipe v8 was trained with:
    the same as the resolved config its run recorded (docs/bundled/stages/), but for paths and resolved sizes."""
    import yaml

    recorded = TrainConfig.from_dict(yaml.safe_load(
        (_CONFIGS.parent / "docs/bundled/stages/bundled_w32_v8/config.yaml").read_text(encoding="utf-8")))
    recipe = TrainConfig.from_yaml(_CONFIGS / "bundled/fer_resnet_w32_v8.yaml")
    assert recipe.image_size == 0 and recorded.image_size == 48  # 0: the model's own input size, resolved at training
    assert recipe.replace(data=recorded.data, out=recorded.out, image_size=48) == recorded
    children = [p for p in (_CONFIGS / "bundled").glob("*.yaml") if "base: fer_resnet_w32_v8.yaml" in p.read_text()]
    assert len(children) >= 9


def test_a_preset_class_without_training_images_is_warned_about():
    import warnings

    from train_synth import make_dataset

    from ferlab.train.data_prep import training_splits

    ds = make_dataset(per_class=6, classes=("angry", "happy", "sad"))
    with pytest.warns(UserWarning, match="neutral of scheme '4' have no training image"):
        out = training_splits(ds, {"classes": "4", "val_fraction": 0.2})
    assert out.classes == ("angry", "happy", "neutral", "sad")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every class present: no warning
        training_splits(make_dataset(per_class=6, classes=("angry", "happy", "sad", "neutral")),
                        {"classes": "4", "val_fraction": 0.2})
