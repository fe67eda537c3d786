"""Static int8 (QDQ) quantisation of ONNX exports: metadata kept, agreement vs fp32, CLI and its one-line errors."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from ferlab.cli.main import main
from ferlab.data.synthetic import synthetic_faces, write_image_folder
from ferlab.errors import CheckpointError, DataError, FerlabError
from ferlab.export.onnx import export_onnx
from ferlab.export.quantize import QUANTIZATION, calibration_split, int8_path, quantize_onnx, top1_agreement
from ferlab.models import create_model
from ferlab.train.checkpoint import FORMAT, VERSION, load_classifier, save_checkpoint

CLASSES = ["angry", "happy", "sad"]


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    """Drawn 48 x 48 faces (all three classes), the kind of input the model is calibrated and checked on."""
    return synthetic_faces(n_per_class=40, classes=tuple(CLASSES), seed=3, test_fraction=0).images


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """An untrained simple_cnn checkpoint and its fp32 ONNX export (exporting is the slow part: once per module)."""
    tmp = tmp_path_factory.mktemp("quant")
    torch.manual_seed(0)
    model = create_model("simple_cnn", num_classes=len(CLASSES))
    ckpt = save_checkpoint(tmp / "simple_cnn.pt", {
        "format": FORMAT, "version": VERSION, "model_name": "simple_cnn", "model_kwargs": {}, "classes": CLASSES,
        "image_size": 48, "config": {}, "epoch": 1, "metrics": {}, "model_state": model.state_dict()})
    return ckpt, export_onnx(ckpt, tmp / "m.onnx").path


def _probs(path, faces: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"faces": faces[:, None]})[0]


def test_top1_agreement_counts_matching_argmaxes_with_ties_to_the_lowest_index():
    a = np.array([[0.6, 0.4], [0.5, 0.5], [0.1, 0.9], [0.3, 0.7]])
    b = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5], [0.4, 0.6]])
    assert top1_agreement(a, b) == pytest.approx(0.5)  # rows 0 and 3 agree; the tie rows pick class 0
    assert top1_agreement(a, a) == 1.0


def test_int8_model_keeps_metadata_is_smaller_and_reports_true_agreement(tmp_path, exported, faces):
    _, fp32 = exported
    calibration, check = faces[::2], faces[1::2]
    result = quantize_onnx(fp32, tmp_path / "m.int8.onnx", calibration, check_faces=check)

    meta_fp32 = {p.key: p.value for p in onnx.load(str(fp32)).metadata_props}
    meta_int8 = {p.key: p.value for p in onnx.load(str(result.path)).metadata_props}
    assert {k: meta_int8[k] for k in meta_fp32} == meta_fp32
    assert meta_int8["quantization"] == QUANTIZATION == "int8-qdq"
    assert result.fp32_bytes == fp32.stat().st_size and result.bytes == result.path.stat().st_size
    assert result.bytes < 0.5 * result.fp32_bytes
    assert any(node.op_type == "QuantizeLinear" for node in onnx.load(str(result.path)).graph.node)

    reference, probs = _probs(fp32, check), _probs(result.path, check)
    assert result.num_checked == len(check) and result.num_calibration == len(calibration)
    assert result.agreement == pytest.approx(np.mean(reference.argmax(1) == probs.argmax(1)))
    assert result.max_abs_diff == pytest.approx(float(np.abs(reference - probs).max()), abs=1e-6)
    assert 0 < result.max_abs_diff < 0.2 and result.agreement >= 0.95


def test_int8_file_loads_like_any_onnx_export(tmp_path, exported, faces):
    ckpt, fp32 = exported
    path = quantize_onnx(fp32, tmp_path / "q.onnx", faces).path
    clf, ref = load_classifier(path), load_classifier(ckpt)
    assert clf.info["quantization"] == "int8-qdq" and load_classifier(fp32).info["quantization"] == "none"
    assert clf.classes == tuple(CLASSES) and clf.image_size == 48 and clf.model_name == "simple_cnn"
    probs = clf.predict_proba(faces[:20], tta="flip")
    assert probs.shape == (20, 3)
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-3)
    np.testing.assert_allclose(probs, ref.predict_proba(faces[:20], tta="flip"), atol=0.2)


def test_disagreement_below_the_floor_raises_with_the_numbers_and_writes_nothing(tmp_path, exported, faces):
    _, fp32 = exported
    out = tmp_path / "bad.int8.onnx"
    with pytest.raises(FerlabError, match=r"top-1 agreement \d+\.\d+% < 101% on 120 faces .*not written"):
        quantize_onnx(fp32, out, faces, min_agreement=1.01)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_bad_inputs_are_one_line_errors(tmp_path, exported, faces):
    ckpt, fp32 = exported
    with pytest.raises(DataError, match="uint8 N x 48 x 48"):
        quantize_onnx(fp32, tmp_path / "q.onnx", faces[:, :32, :32])
    with pytest.raises(DataError, match="non-empty"):
        quantize_onnx(fp32, tmp_path / "q.onnx", faces[:0])
    with pytest.raises(CheckpointError, match="not a ferlab ONNX export|cannot load"):
        quantize_onnx(ckpt, tmp_path / "q.onnx", faces)
    q = quantize_onnx(fp32, tmp_path / "q.onnx", faces[:64]).path
    with pytest.raises(CheckpointError, match="already quantised"):
        quantize_onnx(q, tmp_path / "qq.onnx", faces)


def test_calibration_split_samples_train_faces_and_checks_on_others():
    images = np.arange(100, dtype=np.uint8).repeat(4).reshape(100, 2, 2)
    splits = np.array(["train"] * 60 + ["test"] * 40)
    calib, check, pool = calibration_split(images, splits, 16, check_size=30)
    assert pool == "train split" and len(calib) == 16 and len(check) == 30
    assert calib[:, 0, 0].max() < 60 and not set(calib[:, 0, 0]) & set(check[:, 0, 0])
    again, _, _ = calibration_split(images, splits, 16, check_size=30)
    np.testing.assert_array_equal(calib, again)  # seeded
    calib, check, pool = calibration_split(images, np.array(["test"] * 100), 500)
    assert pool == "all faces" and len(calib) == 100 and len(check) == 100  # nothing left: check on calibration
    with pytest.raises(DataError, match="no faces"):
        calibration_split(images[:0], splits[:0], 16)


def test_cli_writes_fp32_and_int8_twin_and_quantises_an_existing_export(tmp_path, exported, capsys):
    ckpt, _ = exported
    source = write_image_folder(synthetic_faces(n_per_class=30, classes=tuple(CLASSES), seed=5), tmp_path / "data")
    out = tmp_path / "model.onnx"
    assert main(["export", str(ckpt), "--onnx", str(out), "--int8", "--calibration", str(source),
                 "--calibration-size", "40"]) == 0
    printed = capsys.readouterr().out
    assert "parity vs PyTorch" in printed and f"int8: {int8_path(out)}" in printed
    assert "calibrated on 40 faces (train split)" in printed and "top-1 agreement" in printed
    assert load_classifier(out).info["quantization"] == "none"  # OUT.onnx stays fp32
    assert json.loads(load_classifier(int8_path(out)).info["classes"]) == CLASSES
    assert load_classifier(int8_path(out)).info["quantization"] == "int8-qdq"

    int8_path(out).unlink()
    assert main(["export", str(out), "--int8", "--calibration", str(source)]) == 0
    assert "calibrated on 72 faces (train split)" in capsys.readouterr().out  # 90 faces, 20% carved as test
    assert int8_path(out).is_file()


def test_cli_rejects_bad_int8_input_with_one_line_errors(tmp_path, exported, capsys):
    ckpt, fp32 = exported
    source = write_image_folder(synthetic_faces(n_per_class=3, classes=tuple(CLASSES), seed=5), tmp_path / "data")
    empty = tmp_path / "empty"
    empty.mkdir()
    out = str(tmp_path / "x.onnx")
    bad = [
        ["export", str(ckpt), "--onnx", out, "--int8"],  # no --calibration
        ["export", str(ckpt), "--int8", "--calibration", str(source)],  # no --onnx
        ["export", str(ckpt), "--onnx", out, "--calibration", str(source)],  # --calibration without --int8
        ["export", str(ckpt), "--onnx", out, "--int8", "--calibration", str(source), "--calibration-size", "0"],
        ["export", str(ckpt), "--onnx", out, "--int8", "--calibration", str(tmp_path / "missing")],
        ["export", str(fp32), "--int8", "--calibration", str(empty)],  # a source without images
        ["export", str(fp32), "--onnx", out, "--int8", "--calibration", str(source)],
        ["export", str(fp32)],
        ["export", str(tmp_path / "missing.onnx"), "--int8", "--calibration", str(source)],
    ]
    for argv in bad:
        assert main(argv) == 2, argv
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == len(bad) and all(line.startswith("ferlab: error:") for line in err), err
    assert "--int8 needs --calibration" in err[0] and "--calibration-size must be at least 1" in err[3]
    assert not (tmp_path / "x.onnx").exists() and not int8_path(fp32).exists()
