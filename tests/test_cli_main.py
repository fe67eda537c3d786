"""The entry point's contract: user errors, interrupts and warnings are one line, wherever they happen."""

from __future__ import annotations

import importlib
import warnings

import pytest

from ferlab.cli import main as cli_main


def test_ctrl_c_while_the_command_modules_load_is_one_line(monkeypatch, capsys):
    def interrupted(name: str, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - the user presses Ctrl-C here
        raise KeyboardInterrupt

    monkeypatch.setattr(importlib, "import_module", interrupted)
    assert cli_main.main(["models"]) == 130
    assert capsys.readouterr().err == "ferlab: interrupted\n"


def test_warnings_print_as_one_line_and_the_format_is_restored(capsys):
    plain = warnings.formatwarning
    assert cli_main._one_line_warning(UserWarning("careful"), UserWarning, "x.py", 3) == "ferlab: warning: careful\n"
    assert cli_main.main(["models", "simple_cnn"]) == 0
    assert warnings.formatwarning is plain


@pytest.mark.parametrize("argv", [["--nope"], ["train", "--epochs", "x"]])
def test_bad_flags_are_one_line(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        cli_main.main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ferlab: error: ")
