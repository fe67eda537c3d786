"""Checkpoints: atomic save/load, clear errors for missing/corrupt/foreign files, Classifier with TTA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ferlab.errors import CheckpointError
from ferlab.models import create_model
from ferlab.train.checkpoint import (
    Classifier,
    TorchClassifier,
    load_checkpoint,
    load_classifier,
    load_model,
    save_checkpoint,
    tta_views,
)


def _ckpt(num_classes: int = 3) -> dict:
    torch.manual_seed(0)
    model = create_model("sequential_small", num_classes=num_classes, input_size=24)
    return {"model_name": "sequential_small", "model_kwargs": {"input_size": 24}, "classes": ["a", "b", "c"],
            "image_size": 24, "config": {}, "epoch": 1, "metrics": {}, "model_state": model.state_dict()}


def test_save_load_round_trip(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", _ckpt())
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind
    model, ckpt = load_model(path)
    assert ckpt["format"] == "ferlab-checkpoint" and ckpt["classes"] == ["a", "b", "c"]
    assert not model.training
    out = model(torch.zeros(2, 1, 24, 24))
    assert out.shape == (2, 3)
    save_checkpoint(tmp_path / "best.pt", _ckpt())
    assert load_checkpoint(tmp_path)["path"].endswith("best.pt")  # a run dir means its best model


def test_missing_corrupt_foreign(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path / "junk.pt")
    (tmp_path / "text.pt").write_bytes(b"junk\n")  # torch's unpickler raises KeyError on this one
    with pytest.raises(CheckpointError, match=r"corrupt.*unreadable pickle data \(KeyError: "):
        load_checkpoint(tmp_path / "text.pt")
    (tmp_path / "garbage.pt").write_bytes(b"garbage\n")  # the weights-only unpickler refuses this one
    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(tmp_path / "garbage.pt")
    message = str(refused.value)
    assert "weights-only loader (Unsupported operand" in message and "\n" not in message
    assert "weights_only` set to `False`" not in message  # torch's advice to run the file's code is dropped
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a ferlab checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    good = save_checkpoint(tmp_path / "good.pt", _ckpt())
    data = good.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "cut.pt")


def test_weights_of_another_shape_are_a_checkpoint_error(tmp_path):
    ckpt = _ckpt()
    ckpt["classes"] = ["a", "b"]  # 2 classes but a 3-class head
    with pytest.raises(CheckpointError, match="do not fit"):
        load_model(save_checkpoint(tmp_path / "bad.pt", ckpt))


@pytest.mark.parametrize("tta, views", [("none", 1), ("flip", 2), ("tencrop", 10)])
def test_tta_views(tta, views):
    x = torch.randint(0, 256, (3, 24, 24), dtype=torch.uint8)
    out = tta_views(x, tta)
    assert len(out) == views and all(v.shape == x.shape and v.dtype == torch.uint8 for v in out)


def test_classifier_predict_proba(tmp_path):
    clf = load_classifier(save_checkpoint(tmp_path / "m.pt", _ckpt()))
    assert isinstance(clf, TorchClassifier) and isinstance(clf, Classifier)
    assert (clf.classes, clf.model_name, clf.image_size) == (("a", "b", "c"), "sequential_small", 24)
    assert "model_state" not in clf.info and clf.torch_model is not None
    faces = np.random.default_rng(0).integers(0, 256, (5, 24, 24), dtype=np.uint8)
    probs = {t: clf.predict_proba(faces, batch_size=2, tta=t) for t in ("none", "flip", "tencrop")}
    for p in probs.values():
        assert p.shape == (5, 3) and np.allclose(p.sum(1), 1, atol=1e-5)
    assert not np.allclose(probs["none"], probs["flip"])
    # flip TTA is the mean of the plain and mirrored predictions
    mirrored = clf.predict_proba(faces[:, :, ::-1].copy())
    assert np.allclose(probs["flip"], (probs["none"] + mirrored) / 2, atol=1e-5)
    # other sizes are resized to the model input
    assert clf.predict_proba(np.zeros((2, 48, 48), np.uint8)).shape == (2, 3)
    with pytest.raises(CheckpointError, match="test-time augmentation"):
        clf.predict_proba(faces, tta="bogus")


def test_classifier_from_dict_without_weights_is_an_error():
    ckpt = {k: v for k, v in _ckpt().items() if k != "model_state"}
    with pytest.raises(CheckpointError, match="neither torch weights"):
        load_classifier(ckpt)


class _RunsCodeWhenUnpickled:
    def __reduce__(self):  # noqa: ANN204 - what a hostile checkpoint would do on torch.load(weights_only=False)
        return (print, ("this must never run",))


def test_a_checkpoint_that_would_run_code_is_refused_not_run(tmp_path, capsys):
    torch.save({"format": "ferlab-checkpoint", "payload": _RunsCodeWhenUnpickled()}, tmp_path / "hostile.pt")
    with pytest.raises(CheckpointError, match=r"weights-only loader \(Unsupported global: GLOBAL .*print"):
        load_checkpoint(tmp_path / "hostile.pt")
    assert "this must never run" not in capsys.readouterr().out


class _RunsShellWhenUnpickled:
    def __reduce__(self):  # noqa: ANN204 - os.system: torch blocks its whole module, with another message shape
        import os

        return (os.system, ("echo this must never run",))


def test_a_blocked_module_is_reported_without_torchs_unsafe_advice(tmp_path, capfd):
    from ferlab.errors import ModelError
    from ferlab.models.weights import read_state_dict

    torch.save({"model_state": _RunsShellWhenUnpickled()}, tmp_path / "hostile.pt")
    for read, error in ((load_checkpoint, CheckpointError), (read_state_dict, ModelError)):
        with pytest.raises(error) as caught:
            read(tmp_path / "hostile.pt")
        message = str(caught.value)
        assert "weights-only loader (Trying to load unsupported GLOBAL" in message
        assert "weights_only` set to `False`" not in message and "\n" not in message
    assert "this must never run" not in capfd.readouterr().out


@pytest.mark.parametrize("size", [-5, 0, 4096, 24.0, "24", True])
def test_a_damaged_image_size_is_a_checkpoint_error_not_a_traceback_downstream(tmp_path, size):
    path = save_checkpoint(tmp_path / "m.pt", {**_ckpt(), "image_size": size})
    with pytest.raises(CheckpointError, match="records image_size"):
        load_classifier(path)
