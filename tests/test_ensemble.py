"""Ensembles: probability averaging (weights, class order, TTA), ensemble files, and `--ensemble` on eval/predict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ferlab.cli.main import main
from ferlab.data.synthetic import synthetic_faces, write_image_folder
from ferlab.errors import CheckpointError, ConfigError
from ferlab.labels import EMOTIONS
from ferlab.models import create_model
from ferlab.predict import bundled
from ferlab.predict.ensemble import EnsembleClassifier, load_ensemble, write_ensemble_file
from ferlab.train.checkpoint import FORMAT, VERSION, Classifier, load_classifier, save_checkpoint


class FixedClassifier(Classifier):
    """Returns the same probability row for every face (and counts its calls), to check the averaging exactly."""

    def __init__(self, classes: tuple[str, ...], row: list[float], image_size: int = 48) -> None:
        super().__init__(classes, "fixed", image_size, {})
        self.row = np.asarray(row, dtype=np.float32)
        self.sizes: list[int] = []

    def _proba_batch(self, images: torch.Tensor) -> np.ndarray:
        self.sizes.append(int(images.shape[-1]))
        return np.tile(self.row, (len(images), 1))


def _checkpoint(path: Path, seed: int, classes: tuple[str, ...] = EMOTIONS) -> Path:
    torch.manual_seed(seed)
    model = create_model("sequential_small", num_classes=len(classes))
    return save_checkpoint(path, {"format": FORMAT, "version": VERSION, "model_name": "sequential_small",
                                  "model_kwargs": {}, "classes": list(classes), "image_size": 48, "config": {},
                                  "epoch": 0, "metrics": {}, "model_state": model.state_dict()})


def test_weighted_mean_of_members() -> None:
    a = FixedClassifier(("x", "y", "z"), [0.7, 0.2, 0.1])
    b = FixedClassifier(("x", "y", "z"), [0.1, 0.1, 0.8])
    faces = np.zeros((5, 48, 48), dtype=np.uint8)
    even = EnsembleClassifier([a, b]).predict_proba(faces)
    np.testing.assert_allclose(even, np.tile([0.4, 0.15, 0.45], (5, 1)), atol=1e-6)
    skewed = EnsembleClassifier([a, b], weights=[3, 1]).predict_proba(faces)
    np.testing.assert_allclose(skewed[0], [0.55, 0.175, 0.275], atol=1e-6)  # (3 * a + b) / 4
    assert EnsembleClassifier([a, b]).classes == ("x", "y", "z")


def test_members_with_reordered_classes_are_aligned_and_resize_to_their_own_input() -> None:
    a = FixedClassifier(("x", "y", "z"), [0.6, 0.3, 0.1], image_size=48)
    b = FixedClassifier(("z", "x", "y"), [0.5, 0.2, 0.3], image_size=64)  # x 0.2, y 0.3, z 0.5
    ens = EnsembleClassifier([a, b])
    probs = ens.predict_proba(np.zeros((2, 48, 48), dtype=np.uint8), tta="flip")
    np.testing.assert_allclose(probs[0], [0.4, 0.3, 0.3], atol=1e-6)
    assert set(a.sizes) == {48} and set(b.sizes) == {64} and len(b.sizes) == 2  # 2 flip views, each resized
    assert ens.image_size == 64


@pytest.mark.parametrize("weights", [[1.0], [1.0, -1.0], [0.0, 0.0], [1.0, float("nan")]])
def test_bad_weights_are_refused(weights) -> None:
    a, b = FixedClassifier(("x", "y"), [0.5, 0.5]), FixedClassifier(("x", "y"), [0.5, 0.5])
    with pytest.raises(CheckpointError, match="weights"):
        EnsembleClassifier([a, b], weights=weights)


def test_members_of_other_classes_are_refused() -> None:
    with pytest.raises(CheckpointError, match="disagree on classes"):
        EnsembleClassifier([FixedClassifier(("x", "y"), [0.5, 0.5]), FixedClassifier(("x", "w"), [0.5, 0.5])])
    with pytest.raises(CheckpointError, match="at least one"):
        EnsembleClassifier([])


def test_real_checkpoints_average_with_tta_and_round_trip_through_a_file(tmp_path: Path) -> None:
    pa, pb = _checkpoint(tmp_path / "a.pt", 0), _checkpoint(tmp_path / "b.pt", 1)
    faces = synthetic_faces(n_per_class=2, seed=3).images
    single = [load_classifier(p).predict_proba(faces, tta="flip") for p in (pa, pb)]
    assert not np.allclose(single[0], single[1])  # two different members, so the mean is a real check
    ens = load_ensemble([pa, pb])
    np.testing.assert_allclose(ens.predict_proba(faces, tta="flip"), (single[0] + single[1]) / 2, atol=1e-5)
    assert ens.info["ensemble"] == [str(pa), str(pb)]
    spec = write_ensemble_file(tmp_path / "pair.json", [pa, pb], weights=[1, 3])
    assert json.loads(spec.read_text())["members"] == ["a.pt", "b.pt"]  # relative: the folder can move
    from_file = load_classifier(spec)  # the ".json" file backend: any command taking a model path takes it
    np.testing.assert_allclose(from_file.predict_proba(faces, tta="flip"), (single[0] + 3 * single[1]) / 4,
                               atol=1e-5)
    assert isinstance(load_ensemble([pa]), Classifier) and not isinstance(load_ensemble([pa]), EnsembleClassifier)


@pytest.mark.parametrize("text, match", [
    ("{not json", "cannot read"),
    ('{"members": ["a.pt"]}', "not a ferlab ensemble"),
    ('{"format": "ferlab-ensemble", "members": []}', "non-empty list"),
    ('{"format": "ferlab-ensemble", "members": ["a.pt"], "weights": [1, 2]}', "list of 1 numbers"),
    ('{"format": "ferlab-ensemble", "members": ["missing.pt"]}', "model not found"),
    ('{"format": "ferlab-ensemble", "members": ["a.pt"], "weights": [true]}', "list of 1 numbers"),
    ('{"format": "ferlab-ensemble", "members": ["a.pt", "e.json"]}', "names itself through its members"),
    ('{"format": "ferlab-ensemble", "members": ["b.json"]}', "names itself through its members"),
])
def test_bad_ensemble_files(tmp_path: Path, text: str, match: str) -> None:
    _checkpoint(tmp_path / "a.pt", 0)
    (tmp_path / "e.json").write_text(text)
    (tmp_path / "b.json").write_text('{"format": "ferlab-ensemble", "members": ["a.pt", "e.json"]}')  # e -> b -> e
    with pytest.raises(CheckpointError, match=match):
        load_classifier(tmp_path / "e.json")


def test_a_bundled_model_file_runs_with_its_shipped_tta_in_predict_as_in_eval(monkeypatch, tmp_path: Path) -> None:
    from ferlab.predict import Predictor

    _checkpoint(tmp_path / "default.pt", 0)
    (tmp_path / "default.json").write_text('{"tta": "flip"}')
    _checkpoint(tmp_path / "other.pt", 0)
    assert Predictor.from_checkpoint(tmp_path / "default.pt", detector="none").tta == "flip"
    assert Predictor.from_checkpoint(tmp_path / "other.pt", detector="none").tta == "none"
    assert Predictor.from_checkpoint(tmp_path / "default.pt", detector="none", tta="none").tta == "none"
    faces = np.random.default_rng(0).integers(0, 256, (6, 48, 48), dtype=np.uint8)
    alone = Predictor.from_checkpoint(tmp_path / "default.pt", detector="none").classify_faces(faces)
    with_itself = Predictor(load_ensemble([tmp_path / "default.pt", tmp_path / "default.pt"]), detector="none",
                            tta=bundled.shipped_tta(tmp_path / "default.pt")).classify_faces(faces)
    np.testing.assert_allclose(alone, with_itself, atol=1e-6)  # a model averaged with itself is that model


def test_model_sources(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(bundled, "bundled_model_path", lambda: tmp_path / "default.pt")
    assert bundled.model_sources("m.pt", None) == ["m.pt"]
    assert bundled.model_sources("m.pt", ["n.pt"]) == ["m.pt", "n.pt"]
    assert bundled.model_sources(None, ["n.pt"]) == [str(tmp_path / "default.pt"), "n.pt"]
    with pytest.raises(ConfigError, match="ships no bundled ensemble"):
        bundled.model_sources(None, [])
    with pytest.raises(ConfigError, match="name the others"):
        bundled.model_sources("m.pt", [])
    (tmp_path / "ensemble.json").write_text("{}")
    (tmp_path / "default.json").write_text('{"tta": "flipcrop", "ensemble_tta": "flip"}')
    assert bundled.model_sources(None, []) == [str(tmp_path / "ensemble.json")]
    assert bundled.shipped_tta(tmp_path / "ensemble.json") == "flip"
    assert bundled.shipped_tta(tmp_path / "default.pt") == "flipcrop"


def test_eval_and_predict_cli_ensemble(tmp_path: Path, capsys) -> None:
    classes = ("angry", "happy", "neutral", "sad")
    faces = synthetic_faces(n_per_class=6, classes=classes, seed=0)
    data = write_image_folder(faces, tmp_path / "fer", "fer2013")
    pa, pb = _checkpoint(tmp_path / "a.pt", 0, classes), _checkpoint(tmp_path / "b.pt", 1, classes)
    assert main(["eval", str(pa), "--data", str(data), "--ensemble", str(pb), "--json", "--tta", "none"]) == 0
    result = json.loads(capsys.readouterr().out)
    test = faces.split("test")
    mean = (load_classifier(pa).predict_proba(test.images) + load_classifier(pb).predict_proba(test.images)) / 2
    assert result["accuracy"] == pytest.approx(float((mean.argmax(1) == test.labels).mean()))
    assert result["num_images"] == len(test) and "+" in result["checkpoint"]

    crops = tmp_path / "crops"
    crops.mkdir()
    from PIL import Image

    Image.fromarray(test.images[0]).save(crops / "0.png")
    assert main(["predict", str(crops), "--no-detect", "--json", "--model", str(pa), "--ensemble", str(pb)]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    np.testing.assert_allclose(list(line["faces"][0]["probs"].values()), mean[0], atol=1e-4)
    # --ensemble before the inputs: the trailing non-model values are the inputs again, with the same result
    assert main(["predict", "--no-detect", "--json", "--model", str(pa), "--ensemble", str(pb), str(crops)]) == 0
    again = json.loads(capsys.readouterr().out.strip())
    assert again["faces"][0]["probs"] == line["faces"][0]["probs"]
    code = main(["predict", "--no-detect", "--model", str(pa), "--ensemble", str(pb)])
    err = capsys.readouterr().err
    assert code != 0 and "at least one PATH" in err and len(err.strip().splitlines()) == 1

    assert main(["eval", str(pa), "--data", str(data), "--ensemble"]) == 2
    assert "name the others" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text('{"format": "ferlab-ensemble", "members": ["nope.pt"]}')
    code = main(["eval", str(tmp_path / "bad.json"), "--data", str(data)])
    err = capsys.readouterr().err
    assert code != 0 and "model not found" in err and len(err.strip().splitlines()) == 1


def test_ensemble_writer_cli_validates_before_writing(tmp_path: Path, capsys) -> None:
    from ferlab.predict.ensemble import main as ensemble_main

    pa, pb = _checkpoint(tmp_path / "a.pt", 0), _checkpoint(tmp_path / "b.pt", 1)
    out = tmp_path / "pair.json"
    assert ensemble_main([str(out), str(pa), str(pb), "--weights", "2", "1"]) == 0
    written = out.read_text()
    assert json.loads(written)["weights"] == [2.0, 1.0]
    assert ensemble_main([str(out), str(pa), str(tmp_path / "missing.pt")]) == 2
    assert "model not found" in capsys.readouterr().err
    assert out.read_text() == written  # the good file survives a failed rewrite
    assert ensemble_main([str(tmp_path / "x.txt"), str(pa)]) == 2
    assert ensemble_main([str(out), str(pa), str(pb), "--weights", "1"]) == 2
    assert out.read_text() == written


def test_predict_tta_flag_sets_the_tta(tmp_path: Path, capsys) -> None:
    from PIL import Image

    from ferlab.predict import Predictor

    _checkpoint(tmp_path / "m.pt", 3)
    face = np.random.default_rng(1).integers(0, 256, (48, 48), dtype=np.uint8)
    Image.fromarray(face).save(tmp_path / "f.png")
    for tta in ("none", "flip"):
        assert main(["predict", str(tmp_path / "f.png"), "--no-detect", "--json", "--model", str(tmp_path / "m.pt"),
                     "--tta", tta]) == 0
        probs = json.loads(capsys.readouterr().out)["faces"][0]["probs"]
        expected = Predictor.from_checkpoint(tmp_path / "m.pt", detector="none", tta=tta).classify_faces(face[None])
        np.testing.assert_allclose([probs[c] for c in EMOTIONS], expected[0], atol=1e-4)
    with pytest.raises(SystemExit):
        main(["predict", str(tmp_path / "f.png"), "--tta", "bogus"])
