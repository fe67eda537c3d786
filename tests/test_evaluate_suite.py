"""Suite files: parsing, defaults, unknown keys with close names, planning (skip pretrained without weights)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ferlab.errors import ConfigError
from ferlab.evaluate.compare import LeaderboardRow, _training_cost, plan_suite
from ferlab.evaluate.leaderboard import leaderboard_markdown, sort_rows
from ferlab.evaluate.suite import load_suite, parse_suite

REPO = Path(__file__).resolve().parents[1]


def _suite(**extra):
    raw = {"name": "t", "defaults": {"epochs": 2, "augment": "none"},
           "experiments": [{"name": "a", "model": "simple_cnn"}, {"name": "b", "model": "mini_xception", "epochs": 3,
                                                                  "tta": "flip"}]}
    raw.update(extra)
    return parse_suite(raw)


def test_defaults_merge_and_overrides():
    suite = _suite()
    a, b = suite.experiments
    assert a.options == {"model": "simple_cnn", "epochs": 2, "augment": "none"}
    assert b.options["epochs"] == 3 and b.tta == "flip"
    cfg = b.train_config("data.zip", "out/runs/b")
    assert (cfg.model, cfg.epochs, cfg.data, cfg.out) == ("mini_xception", 3, str(Path("data.zip").resolve()),
                                                           "out/runs/b")


def test_a_finished_run_is_reused_from_another_folder_with_another_relative_data_path(tmp_path, monkeypatch):
    """config.yaml records the data as an absolute path, so the plan does not see a changed config."""
    suite = parse_suite({"experiments": [{"name": "s", "model": "simple_cnn", "epochs": 1}]})
    (tmp_path / "data.zip").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    cfg = suite.experiments[0].train_config("data.zip", tmp_path / "runs" / "s")
    (tmp_path / "runs" / "s").mkdir(parents=True)
    (tmp_path / "runs" / "s" / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    (tmp_path / "runs" / "s" / "summary.json").write_text('{"finished": true}')
    monkeypatch.chdir(tmp_path / "sub")
    assert [p.action for p in plan_suite(suite, "../data.zip", tmp_path / "runs")] == ["reuse"]
    assert [p.action for p in plan_suite(suite, "other.zip", tmp_path / "runs")] == ["retrain"]


@pytest.mark.parametrize("raw, message", [
    ({"experiments": [{"name": "a", "model": "simple_cnn", "epoch": 2}]}, "unknown key 'epoch'; did you mean epochs"),
    ({"experiments": [{"name": "a", "model": "simple_cnn"}], "defaults": {"agument": "none"}}, "did you mean augment"),
    ({"experiment": []}, "unknown key 'experiment'; did you mean experiments"),
    ({"experiments": [{"name": "a", "model": "simple_cnn", "data": "x"}]}, "set by `ferlab compare`"),
    ({"experiments": [{"name": "a", "model": "simple_cn"}]}, "unknown model 'simple_cn'"),
    ({"experiments": [{"name": "a", "model": "simple_cnn", "optimizer": "lbfgs"}]}, "unknown optimizer"),
    ({"experiments": [{"name": "a", "model": "simple_cnn", "tta": "zoom"}]}, "unknown tta"),
    ({"experiments": [{"name": "a", "model": "simple_cnn"}, {"name": "a", "model": "simple_cnn"}]}, "unique"),
    ({"experiments": [{"name": "a/b", "model": "simple_cnn"}]}, "needs a 'name'"),
    ({"experiments": []}, "lists no experiments"),
    ({"experiments": [{"name": "a", "model": "simple_cnn"}], "speed": {"latency": 3}}, "did you mean latency_runs"),
])
def test_bad_suites_raise_config_error(raw, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse_suite(raw)


def test_select_only_with_close_name_hint():
    assert [e.name for e in _suite().select(["b"]).experiments] == ["b"]
    with pytest.raises(ConfigError, match="did you mean b"):
        _suite().select(["bb"])


def test_shipped_suites_parse_and_cover_the_zoo():
    from ferlab.models import list_models

    smoke = load_suite(REPO / "configs" / "suites" / "smoke.yaml")
    assert len(smoke.experiments) == 2
    zoo = load_suite(REPO / "configs" / "suites" / "fer2013_zoo.yaml")
    seven = {e.options["model"] for e in zoo.experiments if str(e.options.get("classes", "7")) == "7"}
    assert set(list_models()) <= seven
    assert {str(e.options.get("classes")) for e in zoo.experiments} >= {"7", "4", "2"}
    assert any(e.options.get("class_weights") for e in zoo.experiments)
    assert any(e.options.get("augment") == "none" for e in zoo.experiments)
    assert all(e.options.get("time_budget_minutes") for e in zoo.experiments)


def test_plan_skips_pretrained_without_weights_file(tmp_path):
    suite = parse_suite({"experiments": [
        {"name": "p", "model": "resnet50", "pretrained": str(tmp_path / "missing.pth")},
        {"name": "s", "model": "simple_cnn"}]})
    plans = {p.experiment.name: p for p in plan_suite(suite, "data.zip", tmp_path / "runs")}
    assert plans["p"].action == "skip" and "missing.pth not found" in plans["p"].note
    assert plans["s"].action == "train" and plans["s"].run_dir == tmp_path / "runs" / "s"


def test_plan_trains_a_stage_whose_weights_an_earlier_experiment_writes(tmp_path):
    """A warm restart from an earlier experiment's best.pt is planned, not skipped: the file exists by its turn."""
    suite = parse_suite({"experiments": [
        {"name": "later", "model": "simple_cnn", "pretrained": str(tmp_path / "runs" / "first" / "best.pt")},
        {"name": "first", "model": "simple_cnn"},
        {"name": "stage2", "model": "simple_cnn", "pretrained": str(tmp_path / "runs" / "first" / "best.pt")}]})
    plans = {p.experiment.name: p.action for p in plan_suite(suite, "data.zip", tmp_path / "runs")}
    assert plans == {"later": "skip", "first": "train", "stage2": "train"}  # only a run *before* it counts


def test_leaderboard_ranks_by_class_count_then_accuracy_and_lists_skipped():
    rows = [LeaderboardRow("two", "m", "2", accuracy=0.9, per_class_f1={"angry": 0.9, "happy": 0.9}),
            LeaderboardRow("sevenA", "m", "7", accuracy=0.5, per_class_f1={c: 0.5 for c in "abcdefg"}),
            LeaderboardRow("sevenB", "m", "7", accuracy=0.6, per_class_f1={c: 0.6 for c in "abcdefg"}),
            LeaderboardRow("skip", "m", "7", status="skipped", note="no weights")]
    assert [r.experiment for r in sort_rows(rows)] == ["sevenB", "sevenA", "two", "skip"]
    text = leaderboard_markdown(rows, command="ferlab compare x")
    assert "| sevenB | m | 7 | 0.6000 |" in text and "`skip` skipped: no weights" in text
    assert "Generated by `ferlab compare x`." in text


def test_leaderboard_states_the_interval_of_the_top_accuracy_when_rows_know_their_image_count():
    from ferlab.evaluate.metrics import accuracy_interval

    rows = [LeaderboardRow("old", "m", "7", accuracy=0.70),  # merged from an earlier board: no image count
            LeaderboardRow("a", "m", "7", accuracy=0.65, test_images=400),
            LeaderboardRow("b", "m", "7", accuracy=0.60, test_images=400)]
    text = leaderboard_markdown(rows)
    lo, hi = accuracy_interval(280, 400)
    assert f"On 400 test images the top accuracy, 0.7000 (`old`), is measured to within {lo:.4f}-{hi:.4f}" in text
    assert "--against" in text
    assert "Wilson" not in leaderboard_markdown(rows[:1])


def test_the_interval_is_per_class_count_on_each_groups_own_split():
    from ferlab.evaluate.metrics import accuracy_interval

    rows = [LeaderboardRow("two", "m", "2", accuracy=0.90, test_images=8, per_class_f1={"a": 0.9, "b": 0.9}),
            LeaderboardRow("three", "m", "all", accuracy=0.50, test_images=12,
                           per_class_f1={"a": 0.5, "b": 0.5, "c": 0.5})]
    text = leaderboard_markdown(rows)
    lo, hi = accuracy_interval(6, 12)
    assert f"On 12 test images the top 3-class accuracy, 0.5000 (`three`), is measured to within {lo:.4f}-{hi:.4f}" \
        in text
    lo, hi = accuracy_interval(round(0.9 * 8), 8)
    assert f"On 8 test images the top 2-class accuracy, 0.9000 (`two`), is measured to within {lo:.4f}-{hi:.4f}" \
        in text
    assert "ranked within groups of the same number of classes" in text


def test_leaderboard_files_round_trip_and_readme_markers(tmp_path):
    from ferlab.evaluate.leaderboard import read_leaderboard, splice_readme, write_leaderboard

    rows = [LeaderboardRow("a", "simple_cnn", "7", accuracy=0.5, macro_f1=0.4, train_seconds=60.0, latency_ms=1.0,
                           per_class_f1={"angry": 0.3, "happy": 0.7}),
            LeaderboardRow("p", "resnet50", "7", status="skipped", note="no weights")]
    paths = write_leaderboard(rows, tmp_path / "board", command="ferlab compare s.yaml")
    assert all(p.is_file() for p in paths.values())
    back, command = read_leaderboard(tmp_path / "board")
    assert back == sort_rows(rows) and command == "ferlab compare s.yaml"
    readme = tmp_path / "README.md"
    readme.write_text("intro\n")
    with pytest.raises(ConfigError, match="markers"):
        splice_readme(readme, back, tmp_path / "board", command=command)
    readme.write_text("intro\n<!-- leaderboard:start -->\n<!-- leaderboard:end -->\n")
    splice_readme(readme, back, tmp_path / "board", command=command)
    text = readme.read_text()
    assert "| a | simple_cnn | 7 | 0.5000 | 0.4000 |" in text and "board/per_class_f1.png" in text
    assert text.startswith("intro\n<!-- leaderboard:start -->\n") and text.endswith("<!-- leaderboard:end -->\n")
    # a second generated block (e.g. the bundled-model study) lives under its own markers and leaves this one alone
    readme.write_text(text + "<!-- study:start -->\nold\n<!-- study:end -->\n")
    splice_readme(readme, back[:1], tmp_path / "board", command="ferlab compare t.yaml", section="study")
    spliced = readme.read_text()
    assert spliced.startswith(text) and "old" not in spliced and "ferlab compare t.yaml" in spliced.split(text)[1]


def test_merge_leaderboard_replaces_same_names_and_joins_commands(tmp_path):
    from ferlab.evaluate.leaderboard import merge_leaderboard, write_leaderboard

    assert merge_leaderboard(tmp_path, [], "c0") == ([], "c0")  # nothing there yet
    write_leaderboard([LeaderboardRow("a", "m", "7", accuracy=0.1), LeaderboardRow("b", "m", "7", accuracy=0.2)],
                      tmp_path, command="c1")
    rows, command = merge_leaderboard(tmp_path, [LeaderboardRow("b", "m", "7", accuracy=0.3),
                                                 LeaderboardRow("c", "m", "7", accuracy=0.4)], "c2")
    assert {r.experiment: r.accuracy for r in rows} == {"a": 0.1, "b": 0.3, "c": 0.4}
    assert command == "c1 && c2"
    assert merge_leaderboard(tmp_path, [], "c1")[1] == "c1"


def _stage(run_dir: Path, seconds: float, epochs: int, pretrained: str | None) -> Path:
    run_dir.mkdir(parents=True)
    (run_dir / "summary.json").write_text(json.dumps({"train_seconds": seconds, "epochs_done": epochs}))
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"model": "fer_resnet", "pretrained": pretrained}))
    return run_dir


def test_training_cost_adds_the_stages_a_warm_start_continues(tmp_path):
    first = _stage(tmp_path / "stage1", 100.0, 10, None)
    second = _stage(tmp_path / "stage2", 50.0, 5, str(first / "best.pt"))
    seconds, epochs, note = _training_cost({"train_seconds": 20.0, "epochs_done": 2},
                                           {"pretrained": str(second / "best.pt")})
    assert (seconds, epochs) == (170.0, 17)
    assert str(second) in note and str(first) in note
    # ImageNet weights, a checkpoint outside a run directory and no warm start all cost nothing extra
    lone = tmp_path / "weights" / "resnet.pt"
    for pretrained in ("imagenet", str(lone), None):
        assert _training_cost({"train_seconds": 20.0, "epochs_done": 2}, {"pretrained": pretrained}) == (20.0, 2, "")


def test_training_cost_stops_on_a_cycle(tmp_path):
    loop = _stage(tmp_path / "loop", 30.0, 3, None)
    (loop / "config.yaml").write_text(yaml.safe_dump({"pretrained": str(loop / "best.pt")}))
    seconds, epochs, _ = _training_cost({"train_seconds": 1.0, "epochs_done": 1}, {"pretrained": str(loop / "best.pt")})
    assert (seconds, epochs) == (31.0, 4)


def test_a_run_from_before_a_config_field_existed_still_counts_as_the_same_config(tmp_path) -> None:
    """A field added later (e.g. val_no_copies) is missing from older config.yaml files: its default stands in,
    so compare reuses those runs instead of retraining them; a real difference still counts."""
    from ferlab.evaluate.compare import _same_config
    from ferlab.train.config import TrainConfig

    cfg = TrainConfig(model="simple_cnn", data=str(tmp_path / "d.zip"), epochs=2)
    stored = cfg.to_dict()
    del stored["val_no_copies"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(stored))
    assert _same_config(tmp_path, cfg)
    assert not _same_config(tmp_path, TrainConfig(**{**cfg.to_dict(), "val_no_copies": True}))
    assert not _same_config(tmp_path, TrainConfig(**{**cfg.to_dict(), "epochs": 3}))


def test_leaderboard_markdown_survives_spaces_in_paths_and_bars_in_names():
    markdown_it = pytest.importorskip("markdown_it")  # rich's Markdown parser: CommonMark with tables
    rows = [LeaderboardRow("a|b", "m", "7", accuracy=0.5)]
    html = markdown_it.MarkdownIt("commonmark").enable("table").render(
        leaderboard_markdown(rows, images={"per-class F1": "my board/per_class_f1.png"}))
    assert '<img src="my%20board/per_class_f1.png"' in html
    assert "<td>a|b</td>" in html and html.count("<td>") == 12  # one row, every column in its place


def test_a_training_child_that_dies_or_raises_is_a_failed_row_not_a_crash(monkeypatch):
    import importlib
    import multiprocessing

    from ferlab.evaluate import compare

    fit_module = importlib.import_module("ferlab.train.fit")  # the package exports fit(), shadowing the module

    receive, send = multiprocessing.Pipe(duplex=False)
    send.close()  # the child died (segfault, kill -9) before it could report
    assert compare._child_outcome(receive) == ("crash", "")

    def broken_fit(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("kernel bug")

    monkeypatch.setattr(fit_module, "fit", broken_fit)
    receive, send = multiprocessing.Pipe(duplex=False)
    compare._fit_child({"model": "simple_cnn"}, False, send)
    assert compare._child_outcome(receive) == ("error", "RuntimeError: kernel bug")
