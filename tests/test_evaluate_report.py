"""evaluate() on a stub classifier with known outputs: metrics, leakage, cross-dataset mapping, report files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ferlab.data.dataset import FaceDataset
from ferlab.data.schemes import resolve_scheme
from ferlab.errors import CheckpointError, DataError
from ferlab.evaluate.classmap import align_classes, restrict_probs
from ferlab.evaluate.report import evaluate
from ferlab.evaluate.writers import write_report


class StubClassifier:
    """Returns the probability rows it was given, looked up by the image's first pixel (= sample index)."""

    model_name = "stub"

    def __init__(self, classes, probs, config_classes=None):
        self.classes = tuple(classes)
        self.probs = np.asarray(probs, dtype=np.float64)
        self.info = {"path": "stub.pt", "config": {"classes": config_classes} if config_classes else {}}

    def predict_proba(self, images, batch_size=256, tta="none"):
        return self.probs[images[:, 0, 0].astype(int)]


def _dataset(labels, classes, hashes=None, splits=None) -> FaceDataset:
    n = len(labels)
    images = np.zeros((n, 8, 8), np.uint8)
    images[:, 0, 0] = np.arange(n)
    return FaceDataset(images=images, labels=np.asarray(labels, np.int64),
                       splits=np.asarray(splits or ["test"] * n), classes=tuple(classes),
                       ids=np.asarray([f"img{i}" for i in range(n)]),
                       hashes=np.asarray(hashes or [f"h{i}" for i in range(n)]), source="mem")


CLASSES = ("angry", "happy", "sad")
PROBS = [[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1], [0.3, 0.3, 0.4]]
LABELS = [0, 1, 2, 1, 2]  # sample 3 is a confident mistake (happy -> angry, 0.6)


def test_evaluate_metrics_and_mistakes():
    rep = evaluate(StubClassifier(CLASSES, PROBS), _dataset(LABELS, CLASSES))
    assert rep.num_images == 5
    assert rep.accuracy == pytest.approx(0.8)
    assert rep.confusion_matrix == [[1, 0, 0], [1, 1, 0], [0, 0, 2]]
    assert rep.per_class["happy"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert [(m["id"], m["true"], m["pred"]) for m in rep.mistakes] == [("img3", "happy", "angry")]
    assert rep.mistakes[0]["confidence"] == pytest.approx(0.6)
    assert rep.leakage_free_accuracy is None and rep.dropped_classes == {}


def test_leakage_free_accuracy_excludes_train_duplicates():
    ds = _dataset(LABELS, CLASSES)
    rep = evaluate(StubClassifier(CLASSES, PROBS), ds, train_hashes={"h3", "h9"})  # the mistake is a duplicate
    assert rep.leakage_free_num_images == 4
    assert rep.leakage_free_accuracy == pytest.approx(1.0)


def test_cross_dataset_drops_data_classes_and_renormalises():
    # CK+-style folders: anger, contempt, happiness, sadness; the model knows angry, happy, sad, surprise.
    data_classes = ("anger", "contempt", "happiness", "sadness")
    model = ("angry", "happy", "sad", "surprise")
    probs = [[0.4, 0.1, 0.1, 0.4], [0.1, 0.1, 0.1, 0.7], [0.1, 0.5, 0.2, 0.2], [0.1, 0.2, 0.3, 0.4]]
    rep = evaluate(StubClassifier(model, probs), _dataset([0, 1, 2, 3], data_classes))
    assert rep.classes == ("angry", "happy", "sad")
    assert rep.dropped_classes == {"contempt": 1}
    assert rep.model_only_classes == ("surprise",)
    assert rep.num_images == 3
    assert rep.accuracy == pytest.approx(1.0)  # surprise column removed before argmax
    assert rep.to_dict()["dropped_classes"] == {"contempt": 1}


def test_restrict_probs_renormalises_rows():
    align = align_classes(("a", "b", "c"), ("a", "c"), np.array([0, 1]))
    out = restrict_probs(np.array([[0.2, 0.6, 0.2], [0.0, 1.0, 0.0]]), align)
    np.testing.assert_allclose(out, [[0.5, 0.5], [0.5, 0.5]])


def test_merged_scheme_from_checkpoint_maps_data_classes():
    spec = "positive=happy,surprise;negative=angry,sad"
    model = resolve_scheme(spec).classes
    data_classes = ("angry", "fear", "happy", "sad", "surprise")
    probs = [[0.1, 0.9], [0.5, 0.5], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]]
    rep = evaluate(StubClassifier(model, probs, config_classes=spec), _dataset([0, 1, 2, 3, 4], data_classes))
    assert rep.classes == ("positive", "negative")
    assert rep.dropped_classes == {"fear": 1}
    assert rep.num_images == 4 and rep.accuracy == pytest.approx(1.0)


def test_no_shared_class_is_a_one_line_error():
    with pytest.raises(CheckpointError, match="share no class"):
        evaluate(StubClassifier(("angry", "happy"), PROBS), _dataset([0, 1], ("cat", "dog")))


def test_unlabelled_split_is_a_data_error():
    with pytest.raises(DataError, match="no labels"):
        evaluate(StubClassifier(CLASSES, PROBS), _dataset([-1, -1], CLASSES))


def test_write_report_files_and_json_keys(tmp_path):
    rep = evaluate(StubClassifier(CLASSES, PROBS), _dataset(LABELS, CLASSES), train_hashes=["h0"])
    written = write_report(rep, tmp_path / "rep")
    for name in ("report.json", "report.md", "report.html", "confusion_counts.png", "confusion_normalized.png",
                 "reliability.png", "mistakes.png"):
        assert written[name].is_file() and written[name].stat().st_size > 0
    data = json.loads((tmp_path / "rep" / "report.json").read_text())
    for key in ("accuracy", "macro_f1", "per_class", "confusion_matrix", "classes", "num_images",
                "leakage_free_accuracy", "leakage_free_num_images", "log_loss", "ece", "dropped_classes"):
        assert key in data
    assert data["leakage_free_num_images"] == 4
    assert (tmp_path / "rep" / "mistakes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "data:image/png;base64," in (tmp_path / "rep" / "report.html").read_text()
    assert "confusion_normalized.png" in (tmp_path / "rep" / "report.md").read_text()
