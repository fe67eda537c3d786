"""`ferlab eval` and `ferlab compare` end to end on tiny generated data and a checkpoint trained once by fit()."""

from __future__ import annotations

import csv
import json
import sys
import warnings
from pathlib import Path

import pytest
from PIL import Image

from ferlab.cli.main import main
from ferlab.data.synthetic import synthetic_faces, write_image_folder

REPO = Path(__file__).resolve().parents[1]
CLASSES = ("angry", "happy", "neutral", "sad")


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """A FER2013-layout folder of synthetic faces and one run trained on it for 1 epoch (shared by the tests)."""
    from ferlab.train import TrainConfig, fit

    root = tmp_path_factory.mktemp("eval-tiny")
    faces = synthetic_faces(n_per_class=12, classes=CLASSES, seed=0)
    data = write_image_folder(faces, root / "fer", "fer2013")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FERLAB_CACHE_DIR", str(root / "cache"))
        run = fit(TrainConfig(model="sequential_small", data=str(data), epochs=1, batch_size=16, augment="none",
                              val_fraction=0.2, out=str(root / "run"), progress=False))
    return {"data": data, "run": run, "ckpt": run / "best.pt", "root": root,
            "num_test": int((faces.splits == "test").sum())}


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_json_and_report_files(tiny, tmp_path, capsys):
    code, out, _ = _run(capsys, "eval", tiny["ckpt"], "--data", tiny["data"], "--json", "--out", tmp_path / "rep")
    assert code == 0
    result = json.loads(out)  # one JSON object, nothing else on stdout
    for key in ("accuracy", "macro_f1", "per_class", "confusion_matrix", "classes", "num_images",
                "leakage_free_accuracy", "leakage_free_num_images", "log_loss", "ece", "tta", "split", "checkpoint",
                "dropped_classes"):
        assert key in result
    assert result["classes"] == list(CLASSES)
    assert result["num_images"] == sum(map(sum, result["confusion_matrix"])) == tiny["num_test"]
    assert 0.0 <= result["accuracy"] <= 1.0 and result["split"] == "test"
    assert {p.name for p in (tmp_path / "rep").iterdir()} >= {"report.json", "report.md", "report.html",
                                                                "confusion_counts.png", "mistakes.png"}


def test_eval_cross_dataset_reports_dropped_classes(tiny, tmp_path, capsys):
    ck = write_image_folder(synthetic_faces(n_per_class=10, classes=("anger", "contempt", "happiness", "sadness"),
                                            seed=1), tmp_path / "ckplus", "classfolder")
    code, out, _ = _run(capsys, "eval", tiny["ckpt"], "--data", ck, "--json", "--tta", "flip")
    assert code == 0
    result = json.loads(out)
    assert result["dropped_classes"] == {"contempt": 2}
    assert result["classes"] == ["angry", "happy", "sad"] and result["num_images"] == 6
    assert "neutral" in result["model_only_classes"] and result["tta"] == "flip"


def _with_config(tmp_path: Path, ckpt: Path, name: str, **changes) -> Path:
    """A copy of `ckpt` whose stored training config has `changes`."""
    from ferlab.train.checkpoint import load_checkpoint, save_checkpoint

    checkpoint = load_checkpoint(ckpt)
    checkpoint["config"] = {**checkpoint["config"], **changes}
    return save_checkpoint(tmp_path / name, checkpoint)


def test_eval_val_on_other_data_warns_that_it_is_not_the_runs_carve(tiny, tmp_path, capsys):
    other = write_image_folder(synthetic_faces(n_per_class=12, classes=CLASSES, seed=5), tmp_path / "other", "fer2013")
    with warnings.catch_warnings():  # show warnings on stderr, as outside pytest (which records them)
        warnings.simplefilter("always")
        warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: sys.stderr.write(
            warnings.formatwarning(message, category, filename, lineno, line))
        code, _, err = _run(capsys, "eval", tiny["ckpt"], "--data", tiny["data"], "--split", "val", "--json")
        assert code == 0 and "warning" not in err  # the run's own carve, found again
        code, out, err = _run(capsys, "eval", tiny["ckpt"], "--data", other, "--split", "val", "--json")
    assert code == 0 and json.loads(out)["split"] == "val"
    shown = [line for line in err.replace("\r", "\n").splitlines() if "warning" in line]
    assert len(shown) == 1 and shown[0].startswith("ferlab: warning: the validation carve of ")
    assert "not the run's validation score" in shown[0] and "UserWarning" not in err


def test_eval_val_from_scores_on_another_runs_carve(tiny, tmp_path, capsys):
    """--val-from: the model is scored on the (smaller, same-seed) carve of another run, which it never trained on."""
    narrow = _with_config(tmp_path, tiny["ckpt"], "narrow.pt", val_fraction=0.1)
    code, out, _ = _run(capsys, "eval", tiny["ckpt"], "--data", tiny["data"], "--split", "val", "--json")
    own = json.loads(out)
    code2, out2, _ = _run(capsys, "eval", tiny["ckpt"], "--data", tiny["data"], "--split", "val", "--json",
                          "--val-from", narrow)
    foreign = json.loads(out2)
    assert code == code2 == 0 and foreign["split"] == "val"
    assert 0 < foreign["num_images"] < own["num_images"]
    assert foreign["leakage_free_num_images"] <= foreign["num_images"]


def test_eval_against_pairs_two_models_on_the_same_images(tiny, tmp_path, capsys):
    """--against: the second model on the same images; a model against itself differs by nothing (p = 1)."""
    code, out, _ = _run(capsys, "eval", tiny["ckpt"], "--data", tiny["data"], "--json", "--against", tiny["ckpt"],
                        "--against-tta", "flip")
    result = json.loads(out)
    paired = result["paired"]
    assert code == 0 and paired["num_images"] == result["num_images"] == tiny["num_test"]
    assert paired["accuracy"] == pytest.approx(result["accuracy"])
    lo, hi = result["accuracy_ci95"]
    assert lo <= result["accuracy"] <= hi
    code, out, _ = _run(capsys, "eval", tiny["ckpt"], "--data", tiny["data"], "--split", "val",
                        "--against", _with_config(tmp_path, tiny["ckpt"], "twin.pt", epochs=2))
    assert code == 0 and "difference +0.00 points" in out and "McNemar exact p = 1" in out
    assert "95% CI" in out
    report_dir = tmp_path / "report"
    code, out, _ = _run(capsys, "eval", tiny["ckpt"], "--data", tiny["data"], "--json", "--against", tiny["ckpt"],
                        "--out", report_dir)
    assert code == 0 and json.loads((report_dir / "report.json").read_text())["paired"] == json.loads(out)["paired"]
    for page in ("report.md", "report.html"):
        text = (report_dir / page).read_text()
        assert "compared with" in text and "McNemar exact p = 1" in text


@pytest.mark.parametrize("case", ["missing_split", "corrupt_checkpoint", "unlabelled", "no_shared_class",
                                  "val_without_manifest", "val_from_seen", "val_from_not_val", "against_seen",
                                  "against_tta_alone", "ensemble_member_seen"])
def test_eval_bad_input_is_one_line_error(case, tiny, tmp_path, capsys):
    ckpt, data, extra = tiny["ckpt"], tiny["data"], []
    if case == "missing_split":
        extra = ["--split", "private_test"]
    elif case == "corrupt_checkpoint":
        ckpt = tmp_path / "bad.pt"
        ckpt.write_bytes(b"not a checkpoint at all")
    elif case == "val_without_manifest":  # --split val re-carves after the training run's cleaning manifest
        ckpt = _with_config(tmp_path, ckpt, "cleaned.pt", manifest=str(tmp_path / "gone" / "clean.json"))
        extra = ["--split", "val"]
    elif case == "val_from_seen":  # the model trained on most of a larger carve's images
        extra = ["--split", "val", "--val-from", _with_config(tmp_path, ckpt, "wide.pt", val_fraction=0.5)]
    elif case == "val_from_not_val":
        extra = ["--val-from", tiny["ckpt"]]
    elif case == "against_seen":  # on validation the other model must not have trained on the first one's carve
        extra = ["--split", "val", "--against", _with_config(tmp_path, ckpt, "narrow.pt", val_fraction=0.1)]
    elif case == "against_tta_alone":
        extra = ["--against-tta", "flip"]
    elif case == "ensemble_member_seen":  # an ensemble's carve is its first member's: no member may have trained on it
        extra = ["--split", "val", "--ensemble", _with_config(tmp_path, ckpt, "narrow.pt", val_fraction=0.1)]
    elif case == "unlabelled":
        data = tmp_path / "flat"
        data.mkdir()
        for i in range(4):
            Image.new("L", (48, 48), 40 * i).save(data / f"{i}.png")
    else:
        data = write_image_folder(synthetic_faces(n_per_class=5, classes=("cat", "dog"), seed=2), tmp_path / "pets",
                                  "classfolder")
    code, out, err = _run(capsys, "eval", ckpt, "--data", data, *extra)
    lines = [ln for ln in err.splitlines() if ln.startswith("ferlab: error:")]
    assert code == 2 and out == ""
    assert len(lines) == 1 and "Traceback" not in err
    expected = {"missing_split": "private_test", "corrupt_checkpoint": "checkpoint",
                "unlabelled": "sits in a class folder", "no_shared_class": "share no class",
                "val_without_manifest": "manifest",
                "val_from_seen": "the model trained on", "val_from_not_val": "--split val",
                "against_seen": "the model trained on", "against_tta_alone": "--against-tta needs",
                "ensemble_member_seen": "the model trained on"}[case]
    assert expected in lines[0]


def test_compare_run_dirs_writes_leaderboard(tiny, tmp_path, capsys):
    out_dir = tmp_path / "board"
    # the same run named twice (once through a longer path) is ranked once
    again = tiny["run"].parent / "." / tiny["run"].name
    code, out, err = _run(capsys, "compare", tiny["run"], again, "--out", out_dir, "--json")
    assert code == 0
    rows = json.loads(out)
    assert len(rows) == 1 and rows[0]["status"] == "ok" and rows[0]["model"] == "sequential_small"
    assert "1 repeated run directory left out" in err
    assert rows[0]["classes"] == "4"  # trained on all of the data's 4 classes: the count, not "all"
    assert rows[0]["params"] > 0 and rows[0]["mflops"] > 0 and rows[0]["latency_ms"] > 0
    with open(out_dir / "leaderboard.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert table[0]["experiment"] == "run" and float(table[0]["accuracy"]) == pytest.approx(rows[0]["accuracy"])
    for name in ("leaderboard.md", "leaderboard.html", "leaderboard.json", "per_class_f1.png",
                 "accuracy_vs_train_seconds.png", "accuracy_vs_latency.png", "evals/run/report.json"):
        assert (out_dir / name).is_file()


@pytest.mark.slow
def test_compare_smoke_suite_trains_then_reuses_and_splices_readme(tiny, tmp_path, capsys):
    out_dir = tmp_path / "smoke"
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- leaderboard:start -->\nold\n<!-- leaderboard:end -->\ntail\n")
    suite = REPO / "configs" / "suites" / "smoke.yaml"
    code, out, _ = _run(capsys, "compare", suite, "--data", tiny["data"], "--out", out_dir, "--runs",
                        tmp_path / "runs", "--only", "sequential_small-7", "--readme", readme, "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["experiment"] for r in rows] == ["sequential_small-7"] and rows[0]["status"] == "ok"
    run_dir = tmp_path / "runs" / "sequential_small-7"
    assert json.loads((run_dir / "summary.json").read_text())["finished"]
    assert (run_dir / "eval" / "report.html").is_file() and not (out_dir / "runs").exists()
    text = readme.read_text()
    assert "old" not in text and "| sequential_small-7 | sequential_small |" in text and text.endswith("tail\n")
    assert "smoke/per_class_f1.png" in text
    code, out, _ = _run(capsys, "compare", suite, "--data", tiny["data"], "--out", out_dir, "--runs",
                        tmp_path / "runs", "--dry-run", "--json")
    assert code == 0
    assert {p["experiment"]: p["action"] for p in json.loads(out)} == {"sequential_small-7": "reuse",
                                                                       "mini_xception-7": "train"}
    board = (out_dir / "leaderboard.json").read_bytes()
    for bad_data in (tmp_path / "nosuch", tmp_path / "empty"):  # a mistyped --data touches nothing already there
        (tmp_path / "empty").mkdir(exist_ok=True)
        code, _, err = _run(capsys, "compare", suite, "--data", bad_data, "--out", out_dir, "--runs",
                            tmp_path / "runs")
        assert code == 2 and err.strip().startswith("ferlab: error:")
        assert (out_dir / "leaderboard.json").read_bytes() == board
        assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["sequential_small-7"]
    code, _, err = _run(capsys, "compare", suite, "--data", tiny["data"], "--out", readme)
    assert code == 2 and err.strip() == f"ferlab: error: {readme} is a file, so no folder can be made there"


def test_compare_rejects_unknown_target(tmp_path, capsys):
    code, _, err = _run(capsys, "compare", tmp_path, "--out", tmp_path / "o")
    assert code == 2 and "neither a suite" in err


def test_compare_checks_the_readme_markers_before_evaluating(tiny, tmp_path, capsys):
    readme = tmp_path / "R.md"
    readme.write_text("# no markers here\n")
    code, _, err = _run(capsys, "compare", tiny["run"], "--out", tmp_path / "board", "--readme", readme)
    assert code == 2 and "has no '<!-- leaderboard:start -->'" in err
    assert not (tmp_path / "board").exists()  # refused before any evaluation or file


def test_a_suite_with_a_failed_experiment_writes_the_board_and_exits_non_zero(tiny, tmp_path, capsys):
    suite = tmp_path / "s.yaml"
    (tmp_path / "teacher.pt").write_bytes(b"not a checkpoint")  # exists, so only training finds it unusable
    suite.write_text("name: s\ndefaults: {epochs: 1, limit: 600, batch_size: 32}\n"
                     "speed: {batch_size: 64, batches: 1, latency_runs: 5}\nexperiments:\n"
                     "  - {name: good, model: sequential_small}\n"
                     f"  - {{name: bad, model: sequential_small, teacher: {tmp_path / 'teacher.pt'}}}\n")
    code, _, err = _run(capsys, "compare", suite, "--data", tiny["data"], "--out", tmp_path / "board")
    assert code == 1
    assert err.strip().splitlines()[-1] == ("ferlab: error: 1 of 2 experiments failed: bad (reasons in the "
                                            "leaderboard notes)")
    rows = {r["experiment"]: r["status"] for r in json.loads((tmp_path / "board" / "leaderboard.json").read_text())
            ["rows"]}
    assert rows == {"good": "ok", "bad": "failed"}
    code, _, err = _run(capsys, "compare", suite, "--data", tiny["data"], "--out", tmp_path / "board", "--only", ",")
    assert code == 2 and "--only names no experiment" in err


def test_a_suite_with_experiments_that_cannot_run_is_refused_before_anything_trains(tiny, tmp_path, capsys):
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\ndefaults: {epochs: 1}\nexperiments:\n"
                     "  - {name: good, model: sequential_small}\n"
                     "  - {name: scheme, model: sequential_small, classes: bogus}\n"
                     "  - {name: manifest, model: sequential_small, manifest: /nonexistent/clean.json}\n"
                     "  - {name: teacher, model: sequential_small, teacher: /nonexistent/teacher.pt}\n"
                     "  - {name: option, model: sequential_small, model_kwargs: {bogus: 1}}\n"
                     # a teacher that an earlier experiment of the suite will write is not a problem
                     f"  - {{name: student, model: sequential_small, teacher: {tmp_path / 'runs' / 'good'}}}\n")
    for extra in ([], ["--dry-run"]):
        code, out, err = _run(capsys, "compare", suite, "--data", tiny["data"], "--out", tmp_path / "board",
                              "--runs", tmp_path / "runs", *extra)
        lines = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("ferlab:")]
        assert code == 2 and out == "" and len(lines) == 1, err  # (besides the data's progress bar)
        assert lines[0].startswith("ferlab: error: 4 of 6 experiments cannot run, nothing was trained: ")
        for reason in ("scheme: class scheme 'bogus'", "manifest: manifest not found", "teacher: teacher not found",
                       "option: model 'sequential_small' has no option bogus"):
            assert reason in lines[0]
        assert "student" not in lines[0] and "good" not in lines[0]
        assert not (tmp_path / "runs").exists() and not (tmp_path / "board").exists()


@pytest.mark.parametrize("limit", [0, -3])
def test_evaluate_checkpoint_refuses_a_limit_below_one(tiny, limit):
    from ferlab.errors import ConfigError
    from ferlab.evaluate.run import evaluate_checkpoint

    with pytest.raises(ConfigError, match="limit must be >= 1"):
        evaluate_checkpoint(tiny["ckpt"], tiny["data"], limit=limit)
