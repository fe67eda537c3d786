"""`ferlab explain IMAGE...` on a checkpoint trained once on tiny synthetic faces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from explain_helpers import CLASSES, train_tiny_run
from PIL import Image

from ferlab.cli.main import main


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return train_tiny_run(tmp_path_factory.mktemp("explain-tiny"), n_per_class=10, seed=0)


def test_json_lines_with_region_shares_and_overlays(tiny, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    code = main(["explain", str(tiny["crop"]), str(bad), "--model", str(tiny["ckpt"]), "--no-detect",
                 "--method", "occlusion", "--out", str(tmp_path / "out"), "--json"])
    assert code == 0
    good, broken = (json.loads(line) for line in capsys.readouterr().out.strip().splitlines())
    assert good["error"] is None and len(good["faces"]) == 1
    face = good["faces"][0]
    assert face["predicted"] in CLASSES and face["target"] == face["predicted"]
    assert face["label"] == face["predicted"]  # the field name predict --json and POST /v1/explain use
    assert set(face["probs"]) == set(CLASSES)
    assert {"brows", "eyes", "nose", "mouth"} <= set(face["regions"])
    assert sum(face["regions"].values()) == pytest.approx(1.0, abs=1e-3)
    overlay = Image.open(face["overlay"])
    assert overlay.size[0] > 48 and np.asarray(overlay).std() > 0
    assert broken["faces"] == [] and broken["error"]


def test_target_explains_another_class(tiny, capsys):
    assert main(["explain", str(tiny["crop"]), "--model", str(tiny["ckpt"]), "--no-detect", "--target", "sad",
                 "--json"]) == 0
    face = json.loads(capsys.readouterr().out)["faces"][0]
    assert face["target"] == "sad"
    assert sum(face["regions"].values()) == pytest.approx(1.0, abs=1e-3) or not any(face["regions"].values())


@pytest.mark.parametrize(("extra", "message"), [
    (["--method", "saliency-magic"], "unknown explanation method"),
    (["--target", "contempt"], "not one of this model's classes"),
])
def test_bad_method_or_target_is_one_line_error(tiny, capsys, extra, message):
    assert main(["explain", str(tiny["crop"]), "--model", str(tiny["ckpt"]), "--no-detect", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_image_without_face_and_nothing_processed_exits_non_zero(tiny, tmp_path, capsys):
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((200, 200, 3), 127, np.uint8)).save(blank)
    assert main(["explain", str(blank), "--model", str(tiny["ckpt"]), "--detector", "haar", "--json"]) == 1
    assert "no face" in json.loads(capsys.readouterr().out)["error"]


def test_explain_image_explains_the_faces_predict_finds_in_its_order(tiny):
    """Explain must list exactly predict's faces (same detector set-up, small faces flagged not dropped, left to
    right), so `face_index` means the same face in both, and the same crop, so both name the same emotion."""
    from ferlab.explain.api import explain_image
    from ferlab.predict.detectors import Detection
    from ferlab.predict.predictor import Predictor

    class TwoFaces:
        name, box_scale, y_shift = "two", 1.0, 0.0

        def detect(self, rgb):  # noqa: ANN001, ANN202 - a big face on the right, a 12-px one on the left
            return [Detection(box=(150.0, 20.0, 100.0, 100.0), score=0.9), Detection(box=(10.0, 60.0, 12.0, 12.0),
                                                                                     score=0.8)]

    image = np.random.default_rng(0).integers(0, 256, (160, 300, 3), dtype=np.uint8)
    predictor = Predictor.from_checkpoint(tiny["ckpt"], detector=TwoFaces(), tta="flip")
    predicted = predictor.predict(image)
    explained = explain_image(predictor, image)
    assert [f.box for f in predicted] == [e.box for e in explained] == [(10, 60, 12, 12), (150, 20, 100, 100)]
    assert predicted[0].warning  # the small face is flagged by predict, and explained all the same
    for face, exp in zip(predicted, explained, strict=True):
        assert exp.predicted == face.label and exp.probs == pytest.approx(face.probs, abs=1e-5)


def test_explain_without_detection_sees_the_crop_predict_sees_on_a_non_square_image(tiny):
    from ferlab.explain.api import explain_image
    from ferlab.predict.predictor import Predictor

    wide = np.random.default_rng(1).integers(0, 256, (160, 390, 3), dtype=np.uint8)
    predictor = Predictor.from_checkpoint(tiny["ckpt"])
    (face,) = predictor.predict(wide, detect=False)
    (exp,) = explain_image(predictor, wide, detect=False)
    assert exp.probs == pytest.approx(face.probs, abs=1e-5)  # not a squashed copy of the image


def test_an_out_that_is_a_file_is_refused_before_any_work(tiny, tmp_path, capsys, monkeypatch):
    import ferlab.explain.api as api

    def never(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("explained before --out was checked")

    monkeypatch.setattr(api, "explain_image", never)
    (tmp_path / "afile").write_text("keep")
    assert main(["explain", str(tiny["crop"]), "--model", str(tiny["ckpt"]), "--out", str(tmp_path / "afile")]) == 2
    blocked = f"ferlab: error: {tmp_path / 'afile'} is a file, so no folder can be made there"
    assert capsys.readouterr().err.strip() == blocked
    assert (tmp_path / "afile").read_text() == "keep"


def test_folders_are_walked_for_images_and_an_empty_one_is_named(tiny, tmp_path, capsys):
    folder = tmp_path / "faces"
    (folder / "nested").mkdir(parents=True)
    crop = Image.open(tiny["crop"])
    crop.save(folder / "a.png")
    crop.save(folder / "nested" / "b.jpg")
    (folder / "notes.txt").write_text("skipped: not an image suffix")
    assert main(["explain", str(folder), "--model", str(tiny["ckpt"]), "--no-detect", "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [r["path"] for r in records] == [str(folder / "a.png"), str(folder / "nested" / "b.jpg")]
    assert all(r["error"] is None and len(r["faces"]) == 1 for r in records)

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["explain", str(empty), "--model", str(tiny["ckpt"]), "--no-detect"]) == 2
    assert capsys.readouterr().err.strip() == f"ferlab: error: no image files in {empty}"


def test_nothing_explained_ends_with_one_summary_error_line(tiny, tmp_path, capsys):
    missing = tmp_path / "missing.png"
    assert main(["explain", str(missing), "--model", str(tiny["ckpt"]), "--no-detect"]) == 1
    captured = capsys.readouterr()
    assert captured.out.strip() == f"{missing}: no such file"  # the input's line names its path once, as predict's
    assert captured.err.strip().splitlines() == ["ferlab: error: no image could be explained"]


def test_explanations_name_the_class_predict_names_under_its_tta(tiny):
    """A Predictor with TTA: explain reports predict's TTA-averaged probabilities and explains their top class."""
    from ferlab.explain.api import explain_faces, explain_image
    from ferlab.predict import Predictor

    predictor = Predictor.from_checkpoint(str(tiny["ckpt"]), tta="flipcrop")
    faces = np.random.default_rng(3).integers(0, 256, (24, 48, 48), dtype=np.uint8)
    plain = explain_faces(predictor.classifier, faces)
    with_tta = explain_faces(predictor.classifier, faces, tta="flipcrop")
    tta_probs = predictor.classifier.predict_proba(faces, tta="flipcrop")
    assert [e.predicted for e in with_tta] == [CLASSES[i] for i in tta_probs.argmax(1)]
    assert [e.target for e in with_tta] == [e.predicted for e in with_tta]
    assert any(a.probs != b.probs for a, b in zip(plain, with_tta, strict=True))  # TTA did change the numbers
    (single,) = explain_image(predictor, faces[0], detect=False)
    (predicted,) = predictor.predict(faces[0], detect=False)
    assert single.predicted == predicted.label
    assert single.probs == pytest.approx(predicted.probs, abs=1e-5)


def test_inputs_sharing_a_name_get_separate_overlays(tiny, tmp_path, capsys):
    crop = Image.open(tiny["crop"])
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        crop.save(tmp_path / sub / "x.png")
    out = tmp_path / "out"
    assert main(["explain", str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "x.png"), "--model",
                 str(tiny["ckpt"]), "--no-detect", "--out", str(out), "--json"]) == 0
    overlays = [json.loads(line)["faces"][0]["overlay"] for line in capsys.readouterr().out.strip().splitlines()]
    assert [Path(p).name for p in overlays] == ["x_face0_gradcam.png", "x-2_face0_gradcam.png"]
    assert all(Path(p).is_file() for p in overlays)


@pytest.mark.parametrize(("extra", "message"), [
    (["--detector", "foo"], "unknown face detector 'foo'"),
    (["--no-detect", "--model", "ONNX"], "has no torch network to explain"),
    (["--no-detect", "--model", "ENSEMBLE"], "is an ensemble: its heat map would need one network's gradients"),
])
def test_a_bad_detector_or_model_is_one_error_not_one_per_image(tiny, tmp_path, capsys, extra, message):
    from ferlab.export.onnx import export_onnx
    from ferlab.predict.ensemble import write_ensemble_file

    onnx = tmp_path / "m.onnx"
    export_onnx(str(tiny["ckpt"]), onnx)
    ensemble = tmp_path / "two.json"
    write_ensemble_file(ensemble, [str(tiny["ckpt"]), str(tiny["ckpt"])])
    for name in ("a.png", "b.png"):
        Image.open(tiny["crop"]).save(tmp_path / name)
    argv = ["explain", str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    argv += [{"ONNX": str(onnx), "ENSEMBLE": str(ensemble)}.get(a, a) for a in extra]
    if "--model" not in extra:
        argv += ["--model", str(tiny["ckpt"])]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ferlab: error:") and message in err[0]


def test_gradient_maps_of_odd_batches_on_mini_xception_do_not_crash_and_match_single_faces(tmp_path):
    """torch 2.14's CPU backward through channels_last mini_xception crashed the process on odd batches of 3+."""
    from ferlab.data.synthetic import synthetic_faces
    from ferlab.explain.api import explain_faces
    from ferlab.train import TrainConfig, fit, load_classifier

    ds = synthetic_faces(n_per_class=12, seed=1)
    fit(TrainConfig(model="mini_xception", epochs=1, batch_size=16, val_fraction=0.2, progress=False,
                    out=str(tmp_path / "mx")), dataset=ds)
    clf = load_classifier(tmp_path / "mx")
    for method in ("gradcam", "gradcam++"):
        three = explain_faces(clf, ds.images[:3], method=method)
        alone = [explain_faces(clf, ds.images[i:i + 1], method=method)[0] for i in range(3)]
        for a, b in zip(three, alone, strict=True):
            np.testing.assert_allclose(a.attribution, b.attribution, rtol=1e-4, atol=1e-6)
    import torch

    conv = next(p for p in clf.torch_model.parameters() if p.dim() == 4 and p.shape[-1] == 3 and p.shape[1] > 1)
    assert conv.is_contiguous(memory_format=torch.channels_last)  # inference gets its channels_last weights back


def test_gradient_maps_of_mini_xception_at_64_px_do_not_crash(tmp_path, capsys):
    """Any batch at 64-96 px aborted the process (double free) in the channels_last backward."""
    from ferlab.data.synthetic import synthetic_faces
    from ferlab.errors import ConfigError
    from ferlab.explain.api import explain_faces
    from ferlab.train import TrainConfig, fit, load_classifier

    ds = synthetic_faces(n_per_class=6, seed=1, image_size=64)
    base = dict(model="mini_xception", epochs=1, batch_size=16, val_fraction=0.2, progress=False, image_size=64)
    with pytest.raises(ConfigError, match="channels_last crashes torch's CPU backward"):
        fit(TrainConfig(**base, out=str(tmp_path / "cl")), dataset=ds)  # refused before it can crash
    fit(TrainConfig(**base, channels_last=False, out=str(tmp_path / "mx")), dataset=ds)
    clf = load_classifier(tmp_path / "mx")
    (face,) = explain_faces(clf, ds.images[:1], method="gradcam")
    assert face.attribution.shape == (64, 64) and np.isfinite(face.attribution).all()


def test_faces_given_as_floats_or_one_colour_image_are_read_as_predict_reads_them(tiny):
    from ferlab.errors import CheckpointError, ConfigError
    from ferlab.explain.api import explain_faces
    from ferlab.models.preprocess import face_batch
    from ferlab.train.checkpoint import load_classifier

    clf = load_classifier(tiny["ckpt"])
    face = np.random.default_rng(0).integers(0, 256, (48, 48)).astype(np.uint8)
    np.testing.assert_allclose(clf.predict_proba(face / 255.0), clf.predict_proba(face), atol=1e-3)
    assert explain_faces(clf, face / 255.0)[0].probs == pytest.approx(explain_faces(clf, face)[0].probs, abs=1e-3)
    assert np.array_equal(face_batch(face.astype(np.uint16) * 257)[0], face)
    colour = np.repeat(face[..., None], 3, axis=2)
    with pytest.raises(CheckpointError, match="one colour image"):
        clf.predict_proba(colour)
    with pytest.raises(ConfigError, match="one colour image"):
        explain_faces(clf, colour)
