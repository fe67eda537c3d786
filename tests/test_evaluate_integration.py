"""`ferlab eval` on the shared FER2013 zip's test split with a checkpoint trained quickly on a few hundred images."""

from __future__ import annotations

import json

import pytest

from ferlab.cli.main import main


@pytest.mark.integration
@pytest.mark.slow
def test_eval_cli_on_shared_fer2013_test_split(fer2013_zip, tmp_path, capsys):
    from ferlab.train import TrainConfig, fit

    run = fit(TrainConfig(model="sequential_small", data=str(fer2013_zip), limit=400, epochs=1, batch_size=64,
                          out=str(tmp_path / "run"), progress=False))
    capsys.readouterr()
    assert main(["eval", str(run / "best.pt"), "--data", str(fer2013_zip), "--json", "--out",
                 str(tmp_path / "rep")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["classes"] == ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    assert result["num_images"] == 3589  # PublicTest
    assert sum(s["support"] for s in result["per_class"].values()) == 3589
    # the shared copy holds exact train/test duplicates: some test images are not leakage-free
    assert 0 < result["leakage_free_num_images"] < 3589
    assert result["dropped_classes"] == {} and (tmp_path / "rep" / "report.html").is_file()
