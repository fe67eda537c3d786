"""`ferlab train` from the command line: a short run on an image folder, resume, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ferlab.cli.main import main
from ferlab.train.checkpoint import save_checkpoint


@pytest.fixture()
def folder(tmp_path):
    """A class-per-folder dataset (train/<class>/*.png) of 24x24 faces with a class-dependent bar."""
    rng = np.random.default_rng(0)
    for k, name in enumerate(("angry", "happy", "sad")):
        (tmp_path / "faces" / "train" / name).mkdir(parents=True)
        (tmp_path / "faces" / "test" / name).mkdir(parents=True)
        for i in range(8):
            img = rng.integers(0, 60, (24, 24)).astype(np.uint8)
            img[4 + 6 * k: 7 + 6 * k, 2:22] = 220
            split = "train" if i < 6 else "test"
            Image.fromarray(img).save(tmp_path / "faces" / split / name / f"{i}.png")
    return tmp_path / "faces"


def _train(args, capsys):
    code = main(["train", "--no-progress", *args])
    return code, capsys.readouterr()


def test_train_then_resume_from_the_cli(tmp_path, folder, capsys):
    out = tmp_path / "run"
    code, cap = _train(["--model", "sequential_small", "--data", str(folder), "--epochs", "1", "--out", str(out),
                        "--set", "image_size=24", "--batch-size", "8", "--json"], capsys)
    assert code == 0, cap.err
    summary = json.loads(cap.out)
    assert summary["epochs_done"] == 1 and summary["classes"] == ["angry", "happy", "sad"]
    assert "epoch 1/1" in cap.err
    code, cap = _train(["--resume", str(out), "--epochs", "2"], capsys)
    assert code == 0, cap.err
    assert json.loads((out / "summary.json").read_text())["epochs_done"] == 2
    code, cap = _train(["--resume", str(out), "--epochs", "3", "--lr", "0.5"], capsys)
    assert code == 2 and "cannot change lr" in cap.err
    files = {name: (out / name).read_bytes() for name in ("config.yaml", "summary.json")}
    code, cap = _train(["--resume", str(out), "--epochs", "1"], capsys)  # fewer than it has trained
    assert code == 2 and "has already trained 2 epochs; --epochs must be at least 2" in cap.err
    assert files == {name: (out / name).read_bytes() for name in files}  # untouched, so compare still reuses it


def test_resume_on_other_data_is_refused_and_on_moved_data_accepted(tmp_path, folder, capsys):
    import shutil

    out = tmp_path / "run"
    assert _train(["--model", "sequential_small", "--data", str(folder), "--epochs", "1", "--out", str(out),
                   "--set", "image_size=24", "--batch-size", "8"], capsys)[0] == 0
    other = tmp_path / "other"
    shutil.copytree(folder, other)
    Image.fromarray(np.zeros((24, 24), np.uint8)).save(other / "train" / "sad" / "extra.png")
    code, cap = _train(["--resume", str(out), "--epochs", "2", "--data", str(other)], capsys)
    assert code == 2 and "gives other training or validation images than the run's" in cap.err
    moved = tmp_path / "moved"
    shutil.copytree(folder, moved)  # the same files under another path
    code, cap = _train(["--resume", str(out), "--epochs", "2", "--data", str(moved)], capsys)
    assert code == 0, cap.err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "simple_cnm", "--data", "{folder}", "--out", "{tmp}/r"], "did you mean simple_cnn"),
        (["--model", "simple_cnn", "--data", "{folder}", "--out", "{tmp}/r", "--set", "lr_rate=1"], "did you mean lr"),
        (["--model", "simple_cnn", "--data", "{folder}"], "give --out"),
        (["--model", "simple_cnn", "--out", "{tmp}/r"], "give --data"),
        (["--model", "simple_cnn", "--data", "{tmp}/missing", "--out", "{tmp}/r"], "not found"),
        (["--model", "sequential_small", "--data", "{folder}", "--out", "{tmp}/r", "--classes", "angry"],
         "fewer than 2 classes"),
        (["--model", "sequential_small", "--data", "{folder}", "--out", "{tmp}/r", "--classes", "fear,disgust"],
         "names fear, disgust, which"),
        (["--model", "sequential_small", "--data", "{folder}", "--out", "{tmp}/r", "--classes", "happy,sad,sadd"],
         "names sadd, which"),
        (["--model", "vgg_scratch", "--data", "{folder}", "--out", "{tmp}/r", "--set", "image_size=24"],
         "cannot take 24x24 images"),
        (["--resume", "{tmp}/nowhere"], "checkpoint not found"),
        (["--model", "simple_cnn", "--data", "{folder}", "--out", "{tmp}/r", "--optimizer", "lbfgs"],
         "unknown optimizer"),
    ],
)
def test_one_line_errors(tmp_path, folder, capsys, args, message):
    argv = [a.format(folder=folder, tmp=tmp_path) for a in args]
    code, cap = _train(argv, capsys)
    assert code == 2
    err = cap.err.strip()
    assert err.startswith("ferlab: error:") and message in err and "\n" not in err and "Traceback" not in err


def test_foreign_checkpoint_on_resume(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"state_dict": {}}, run / "last.pt")
    code, cap = _train(["--resume", str(run)], capsys)
    assert code == 2 and "not a ferlab checkpoint" in cap.err
    save_checkpoint(run / "last.pt", {"model_name": "sequential_small", "classes": ["a", "b"]})
    code, cap = _train(["--resume", str(run)], capsys)
    assert code == 2 and "no training config" in cap.err


def test_resuming_a_run_stopped_in_its_first_epoch_says_to_start_again(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("model: sequential_small\n")  # what an interrupt in epoch 1 leaves
    code, cap = _train(["--resume", str(run)], capsys)
    assert code == 2 and cap.err.strip() == (
        f"ferlab: error: {run} has no checkpoint yet: the run stopped before its first epoch ended, so there is "
        "nothing to resume; start it again with the command that created it")
