"""The benchmark helper scripts: README tables re-spliced from their own leaderboards, one-line bad-input errors."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):  # noqa: ANN202
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_leaderboard_goes_back_to_its_own_readme_section(tmp_path, capsys):
    splice = _script("splice_leaderboard")
    readme = tmp_path / "README.md"
    shutil.copy(ROOT / "README.md", readme)
    for folder in ("leaderboard", "bundled_study"):  # links in the table are relative to the README's folder
        shutil.copytree(ROOT / "docs" / folder, tmp_path / "docs" / folder)
    assert splice.main([str(tmp_path / "docs" / "bundled_study"), str(readme), "--section", "bundled_study"]) == 0
    assert splice.main([str(tmp_path / "docs" / "leaderboard"), str(readme)]) == 0
    assert readme.read_text() == (ROOT / "README.md").read_text()  # both tables are what the generators wrote
    assert splice.main([str(tmp_path / "nowhere"), str(readme)]) == 2
    assert capsys.readouterr().err.startswith("ferlab: error:")
    with pytest.raises(SystemExit):
        splice.main(["--help"])


def test_a_benchmark_with_bad_input_ends_in_one_error_line(capsys):
    from ferlab.errors import ModelError

    run = _script("_cli").run

    def bad() -> int:
        raise ModelError("unknown model 'nosuch'")

    with pytest.raises(SystemExit) as stop:
        run(bad)
    assert stop.value.code == 2
    assert capsys.readouterr().err == "error: ModelError: unknown model 'nosuch'\n"
    with pytest.raises(SystemExit) as stop:
        run(lambda: None)
    assert stop.value.code == 0


@pytest.mark.parametrize(("argv", "message"), [
    (["--models", "nosuch"], "no known model in --models nosuch"),
    (["--models", "simple_cnn", "--channels-last", "maybe"], "--channels-last takes on and/or off"),
])
def test_bench_train_refuses_flags_that_would_measure_nothing(argv, message):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_train.py"), *argv], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_one_epoch_all_prints_its_help_from_any_directory(tmp_path):
    import subprocess

    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "one_epoch_all.sh"), "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and "bash benchmarks/one_epoch_all.sh [DATA] [RUNS] [OUT]" in done.stdout
    assert not (tmp_path / "runs").exists()  # --help is no data path: nothing is created
