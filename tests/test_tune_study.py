"""Optuna studies: resumable 3-trial study, pruning on reported epochs, best YAML loads, the CLI path."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from ferlab.data.synthetic import synthetic_faces
from ferlab.errors import ConfigError
from ferlab.train import TrainConfig
from ferlab.tune.space import parse_space
from ferlab.tune.study import run_study


@pytest.fixture(scope="module")
def tiny():
    return synthetic_faces(8, seed=2)


def test_three_trial_study_resumes_and_writes_reports(tiny, tmp_path) -> None:
    base = TrainConfig(model="hog_svm", data="synthetic", progress=False, val_fraction=0.25)
    space = parse_space(None, "hog_svm")
    out = tmp_path / "study"
    first = run_study(base, space, trials=3, out=out, dataset=tiny, progress=False)
    assert (first.trials_total, first.ran_now, first.complete) == (3, 3, 3)
    second = run_study(base, space, trials=4, out=out, dataset=tiny, progress=False)
    assert (second.trials_total, second.ran_now) == (4, 1)
    again = run_study(base, space, trials=4, out=out, dataset=tiny, progress=False)
    assert again.ran_now == 0 and again.trials_total == 4
    with pytest.raises(ConfigError, match="tunes 'hog_svm'"):
        run_study(base.replace(model="simple_cnn"), parse_space(None, "simple_cnn"), trials=5, out=out,
                  dataset=tiny, progress=False)
    assert sorted(p.name for p in (out / "trials").iterdir()) == [f"trial_{i:04d}" for i in range(4)]
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert [int(r["trial"]) for r in rows] == list(range(4)) and all(r["model_kwargs.C"] for r in rows)
    assert max(float(r["val_accuracy"]) for r in rows) == pytest.approx(second.best_val_accuracy)
    best = TrainConfig.from_yaml(out / "best_config.yaml")
    assert best.model == "hog_svm" and best.model_kwargs["C"] == pytest.approx(second.best_params["model_kwargs.C"])
    assert 1e-3 <= best.model_kwargs["C"] <= 1.0
    for name in ("history.png", "importances.png", "trials.md", "tune_report.html"):
        assert (out / name).stat().st_size > 0, name


def _stub_trainer(accuracies: dict[int, list[float]]):
    """A trainer that reports fixed per-epoch accuracies (by trial number) through the on_epoch_end hook."""

    def trainer(cfg: TrainConfig, *, dataset, on_epoch_end, quiet) -> Path:  # noqa: ANN001
        out = Path(cfg.out)
        out.mkdir(parents=True)
        accs = accuracies[int(out.name.split("_")[1])]
        for epoch, acc in enumerate(accs, start=1):
            on_epoch_end({"epoch": epoch, "val_accuracy": acc})
        (out / "summary.json").write_text(json.dumps({"best_val_accuracy": max(accs), "epochs_done": len(accs),
                                                      "train_seconds": 0.1}))
        return out

    return trainer


def test_a_trial_below_the_median_is_pruned(tmp_path) -> None:
    base = TrainConfig(model="simple_cnn", data="synthetic", progress=False)
    space = parse_space({"extends": "none", "params": {"lr": {"low": 1e-4, "high": 1e-2, "log": True}}}, "simple_cnn")
    trainer = _stub_trainer({0: [0.5, 0.6, 0.7], 1: [0.5, 0.6, 0.7], 2: [0.5, 0.1, 0.1]})
    result = run_study(base, space, trials=3, out=tmp_path / "s", dataset=object(), trainer=trainer, progress=False)
    assert (result.complete, result.pruned) == (2, 1)
    rows = list(csv.DictReader((tmp_path / "s" / "trials.csv").open()))
    assert rows[2]["state"] == "pruned" and rows[2]["epochs"] == "2"


def test_torch_trials_report_every_epoch(tiny, tmp_path, capfd) -> None:
    base = TrainConfig(model="sequential_small", data="synthetic", progress=False, epochs=2, batch_size=32,
                       val_fraction=0.25, augment="none")
    space = parse_space({"extends": "none", "params": {"lr": {"low": 1e-3, "high": 1e-2, "log": True}}},
                        "sequential_small")
    result = run_study(base, space, trials=1, out=tmp_path / "t", dataset=tiny, progress=False)
    assert result.complete == 1
    assert "epoch 1/2" not in capfd.readouterr().err  # progress=False (--no-progress): no per-epoch lines
    rows = list(csv.DictReader((tmp_path / "t" / "trials.csv").open()))
    assert rows[0]["epochs"] == "2"
    summary = json.loads((Path(rows[0]["run_dir"]) / "summary.json").read_text())
    assert float(rows[0]["val_accuracy"]) == pytest.approx(summary["best_val_accuracy"], abs=1e-4)


def test_cli_tune_json_and_one_line_errors(tiny, tmp_path, capsys) -> None:
    from ferlab.cli.main import main
    from ferlab.data.synthetic import write_image_folder

    data = write_image_folder(tiny, tmp_path / "faces.zip")
    out = tmp_path / "cli"
    code = main(["tune", "--model", "hog_svm", "--data", str(data), "--trials", "2", "--out", str(out), "--json",
                 "--no-progress", "--limit", "30", "--set", "val_fraction=0.3"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["trials_total"] == 2 and Path(result["files"]["best_config"]).is_file()
    # --limit shortens the trials only: the best config trains on all the data
    assert TrainConfig.from_yaml(out / "trials" / "trial_0000" / "config.yaml").limit == 30
    assert TrainConfig.from_yaml(result["files"]["best_config"]).limit is None
    bad = tmp_path / "space.yaml"
    bad.write_text("params:\n  lerning_rate: {low: 0.1, high: 1.0}\n")
    code = main(["tune", "--model", "simple_cnn", "--data", str(data), "--trials", "1", "--out", str(out / "x"),
                 "--space", str(bad)])
    assert code == 2 and "ferlab: error: unknown search parameter 'lerning_rate'" in capsys.readouterr().err


def test_a_trial_failing_on_bad_input_leaves_one_error_not_a_traceback(tiny, tmp_path, capfd) -> None:
    import logging

    from ferlab.errors import DataError

    def trainer(cfg, **_):  # noqa: ANN001, ANN202 - what fit does on data too small to carve
        raise DataError("too few images to train")

    base = TrainConfig(model="hog_svm", data="synthetic", progress=False)
    with pytest.raises(DataError, match="too few images"):
        run_study(base, parse_space(None, "hog_svm"), trials=2, out=tmp_path / "s", trainer=trainer, dataset=tiny,
                  progress=False)
    err = capfd.readouterr().err
    assert "Traceback" not in err and "failed with" not in err
    assert not logging.getLogger("optuna.study._optimize").filters  # the filter is gone once the study returns


def test_ctrl_c_in_a_trial_stops_the_study_without_optuna_traceback(tiny, tmp_path, capfd) -> None:
    def trainer(cfg, **_):  # noqa: ANN001, ANN202 - the user presses Ctrl-C during a trial
        raise KeyboardInterrupt

    base = TrainConfig(model="hog_svm", data="synthetic", progress=False)
    with pytest.raises(KeyboardInterrupt):
        run_study(base, parse_space(None, "hog_svm"), trials=2, out=tmp_path / "s", trainer=trainer, dataset=tiny,
                  progress=False)
    err = capfd.readouterr().err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err and "failed with" not in err


def test_continuing_a_study_under_other_settings_or_from_a_damaged_file_is_refused(tiny, tmp_path) -> None:
    base = TrainConfig(model="hog_svm", data="synthetic", progress=False, val_fraction=0.25)
    space = parse_space(None, "hog_svm")
    out = tmp_path / "study"
    run_study(base, space, trials=1, out=out, dataset=tiny, progress=False)
    with pytest.raises(ConfigError, match=r"ran under other settings \(classes 'all' -> '2'\)"):
        run_study(base.with_overrides({"classes": "2"}), space, trials=2, out=out, dataset=tiny, progress=False)
    with pytest.raises(ConfigError, match=r"other settings \(limit None -> 20\)"):
        run_study(base, space, trials=2, out=out, dataset=tiny, progress=False, trial_overrides={"limit": 20})
    assert run_study(base, space, trials=2, out=out, dataset=tiny, progress=False).trials_total == 2  # same: fine
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "study.db").write_text("junk")
    with pytest.raises(ConfigError, match="is not a readable optuna study"):
        run_study(base, space, trials=1, out=damaged, dataset=tiny, progress=False)
