"""Every registry model trains one (tiny, --limit) epoch on the shared FER2013 zip through `ferlab train`."""

from __future__ import annotations

import json

import pytest

from ferlab.cli.main import main
from ferlab.models import list_models


@pytest.mark.integration
@pytest.mark.slow
def test_every_model_trains_from_the_cli(fer2013_zip, tmp_path, capsys):
    failures = {}
    for name in list_models():
        out = tmp_path / name
        code = main(["train", "--model", name, "--data", str(fer2013_zip), "--epochs", "1", "--out", str(out),
                     "--limit", "140", "--batch-size", "16", "--no-progress", "--json"])
        cap = capsys.readouterr()
        if code != 0:
            failures[name] = cap.err.strip().splitlines()[-1:]
            continue
        summary = json.loads(cap.out)
        assert summary["finished"] and summary["epochs_done"] == 1 and len(summary["classes"]) == 7
        assert (out / "best.pt").is_file() and (out / "curves.png").is_file()
    assert not failures, failures
