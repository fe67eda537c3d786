"""ONNX export with parity, the ONNX Runtime backend, slim (fp16) bundles, and their errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ferlab.cli.main import main
from ferlab.export.bundle import slim_checkpoint
from ferlab.export.onnx import export_onnx
from ferlab.models import create_model
from ferlab.train.checkpoint import FORMAT, VERSION, load_classifier, save_checkpoint

CLASSES = ["angry", "happy", "sad"]


def _checkpoint(tmp_path, name: str = "simple_cnn"):
    torch.manual_seed(0)
    model = create_model(name, num_classes=len(CLASSES))
    ckpt = {"format": FORMAT, "version": VERSION, "model_name": name, "model_kwargs": {}, "classes": CLASSES,
            "image_size": model.ferlab_cfg.input_size[1], "config": {}, "epoch": 1, "metrics": {"val_accuracy": 0.5},
            "model_state": model.state_dict(), "optimizer_state": {"junk": torch.zeros(1000)}}
    return save_checkpoint(tmp_path / f"{name}.pt", ckpt)


@pytest.mark.parametrize("name", ["simple_cnn", "fer_resnet", "mini_xception"])
def test_onnx_export_matches_torch_and_loads_as_a_classifier(tmp_path, name):
    ckpt = _checkpoint(tmp_path, name)
    result = export_onnx(ckpt, tmp_path / "m.onnx")
    assert result.max_abs_diff < 1e-4 and result.path.is_file()
    faces = np.random.default_rng(1).integers(0, 256, (37, 48, 48), dtype=np.uint8)
    onnx_clf, torch_clf = load_classifier(result.path), load_classifier(ckpt)
    assert onnx_clf.classes == tuple(CLASSES) and onnx_clf.image_size == 48
    for tta in ("none", "flip"):
        np.testing.assert_allclose(onnx_clf.predict_proba(faces, tta=tta), torch_clf.predict_proba(faces, tta=tta),
                                   atol=1e-4)


def test_slim_fp16_bundle_is_smaller_and_predicts_the_same(tmp_path):
    ckpt = _checkpoint(tmp_path, "fer_resnet")
    full = load_classifier(ckpt)
    slim32 = slim_checkpoint(ckpt, tmp_path / "slim32.pt")
    slim16 = slim_checkpoint(ckpt, tmp_path / "slim16.pt", half=True)
    assert slim16.stat().st_size < 0.55 * slim32.stat().st_size < ckpt.stat().st_size
    faces = np.random.default_rng(2).integers(0, 256, (16, 48, 48), dtype=np.uint8)
    np.testing.assert_allclose(load_classifier(slim32).predict_proba(faces), full.predict_proba(faces), atol=1e-6)
    np.testing.assert_allclose(load_classifier(slim16).predict_proba(faces), full.predict_proba(faces), atol=5e-3)
    assert "optimizer_state" not in torch.load(slim16, weights_only=False)


def test_export_cli_prints_parity_and_rejects_bad_input(tmp_path, capsys):
    ckpt = _checkpoint(tmp_path)
    assert main(["export", str(ckpt), "--onnx", str(tmp_path / "m.onnx"), "--bundle", str(tmp_path / "b.pt"),
                 "--half"]) == 0
    out = capsys.readouterr().out
    assert "max abs difference" in out and "fp16" in out
    assert main(["export", str(ckpt)]) == 2
    assert main(["export", str(tmp_path / "missing.pt"), "--onnx", str(tmp_path / "x.onnx")]) == 2
    (tmp_path / "fake.onnx").write_bytes(b"not onnx")
    with pytest.raises(Exception, match="cannot load ONNX model"):
        load_classifier(tmp_path / "fake.onnx")
    err = capsys.readouterr().err.strip().splitlines()
    assert all(line.startswith("ferlab: error:") for line in err) and len(err) == 2


@pytest.mark.parametrize(("extra", "message"), [
    (["--onnx", "model_noext"], "must end in .onnx"),
    (["--onnx", "m.int8.onnx", "--int8", "--calibration", "x"], "the int8 twin's name"),
])
def test_onnx_names_that_could_not_be_loaded_back_are_refused(tmp_path, capsys, extra, message):
    ckpt = _checkpoint(tmp_path)
    extra = [str(tmp_path / e) if e in ("model_noext", "m.int8.onnx") else e for e in extra]
    assert main(["export", str(ckpt), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ferlab: error:") and message in err[0]
    assert not list(tmp_path.glob("*onnx*")) and not (tmp_path / "model_noext").exists()
