"""The bundled model that ships in the package: present, small, finds and reads a real smiling face, used by default."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from ferlab.cli.main import main as ferlab
from ferlab.evaluate.suite import TTA_NAMES
from ferlab.export.ort_backend import OnnxClassifier
from ferlab.labels import EMOTIONS
from ferlab.predict.bundled import bundled_inference_path, bundled_model_path
from ferlab.predict.predictor import Predictor
from ferlab.train.checkpoint import TorchClassifier


def test_bundled_files_ship_small_with_their_metadata() -> None:
    pt = bundled_model_path()
    assert pt.is_file(), "the package must ship ferlab/assets/models/default.pt"
    assert pt.stat().st_size <= 20 * 1024 * 1024
    fast, meta = pt.with_name("default.int8.onnx"), pt.with_name("default.json")
    assert fast.is_file() and fast.stat().st_size <= 20 * 1024 * 1024
    info = json.loads(meta.read_text())
    assert info["tta"] in TTA_NAMES and info["backend"] == "onnx-int8"
    assert bundled_inference_path() == fast and bundled_inference_path("torch") == pt
    total = sum(p.stat().st_size for p in pt.parent.iterdir())
    assert total <= 20 * 1024 * 1024, f"bundled assets weigh {total / 1e6:.1f} MB"
    assert (pt.parent / "MODEL_CARD.md").read_text().startswith("# Model card")


def test_an_explicit_backend_is_honoured_or_refused_never_swapped() -> None:
    from ferlab.errors import CheckpointError, ConfigError

    with pytest.raises(ConfigError, match="unknown backend 'bogus'; choose from auto, torch, onnx"):
        Predictor.from_pretrained(backend="bogus")
    with pytest.raises(CheckpointError, match="this build ships no 'ensemble' model"):
        Predictor.from_pretrained(backend="ensemble")
    assert isinstance(Predictor.from_pretrained(backend="onnx-int8").classifier, OnnxClassifier)


def test_astronaut_is_found_and_called_happy() -> None:
    from skimage import data

    predictor = Predictor.from_pretrained()
    assert isinstance(predictor.classifier, OnnxClassifier)
    faces = predictor.predict(data.astronaut())
    assert len(faces) == 1
    face = faces[0]
    assert face.label == "happy", face.probs
    x, y, w, h = face.box
    assert 120 < x + w / 2 < 280 and 20 < y + h / 2 < 200  # her face, not the flag or the suit
    assert abs(sum(face.probs.values()) - 1) < 1e-4


def test_torch_and_int8_bundles_agree_on_faces() -> None:
    """The int8 twin is not bit-exact: it must call the same emotion as the torch weights on real-looking faces."""
    from ferlab.data.synthetic import synthetic_faces

    torch_p, fast_p = Predictor.from_pretrained(backend="torch"), Predictor.from_pretrained()
    assert isinstance(torch_p.classifier, TorchClassifier) and fast_p.classifier.info["quantization"] == "int8-qdq"
    crops = synthetic_faces(n_per_class=20, seed=3).images
    ref, fast = torch_p.classify_faces(crops), fast_p.classify_faces(crops)
    assert (ref.argmax(1) == fast.argmax(1)).mean() >= 0.95
    assert np.abs(ref - fast).max() < 0.15
    np.testing.assert_allclose(fast.sum(1), 1.0, atol=1e-4)


def test_predict_no_detect_json_uses_the_bundled_model_by_default(tmp_path, capsys) -> None:  # noqa: ANN001
    from skimage import data

    folder = tmp_path / "crops"
    folder.mkdir()
    face = Predictor.from_pretrained().align(data.astronaut())[0].crop
    Image.fromarray(face).save(folder / "astronaut_face.png")
    noise = np.random.default_rng(1).integers(0, 256, (48, 48), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "noise.png")
    assert ferlab(["predict", str(folder), "--no-detect", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2 and all(rec["error"] is None and len(rec["faces"]) == 1 for rec in lines)
    by_name = {rec["path"].rsplit("/", 1)[-1]: rec["faces"][0] for rec in lines}
    assert set(by_name["noise.png"]["probs"]) == set(EMOTIONS)
    assert by_name["astronaut_face.png"]["label"] == "happy"


@pytest.mark.slow
def test_demo_predicts_and_explains_the_example_photos(tmp_path, capsys) -> None:  # noqa: ANN001
    assert ferlab(["demo", "--out", str(tmp_path / "demo"), "--per-class", "3"]) == 0
    page = (tmp_path / "demo" / "index.html").read_text()
    assert "astronaut.png" in page and "group.png" in page and "happy" in page
    assert (tmp_path / "demo" / "predict" / "group.annotated.png").is_file()
    assert list((tmp_path / "demo" / "explain").glob("astronaut_face0_*.png"))
    out = capsys.readouterr().out
    assert "group.png: " in out and out.count("happy") >= 2


def test_eval_defaults_to_the_bundled_model_and_its_shipped_tta(tmp_path, capsys) -> None:  # noqa: ANN001
    from ferlab.data.synthetic import synthetic_faces, write_image_folder

    data = tmp_path / "faces.zip"
    write_image_folder(synthetic_faces(n_per_class=3, seed=0), data, layout="fer2013")
    capsys.readouterr()
    assert ferlab(["eval", "--data", str(data), "--split", "all", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    shipped = json.loads(bundled_model_path().with_name("default.json").read_text())["tta"]
    assert report["tta"] == shipped and report["checkpoint"].endswith("default.int8.onnx")  # what predict runs
    assert report["num_images"] == 21


def test_serve_model_card_summarises_the_bundled_model() -> None:
    from fastapi.testclient import TestClient

    from ferlab.serve.app import create_app

    meta = json.loads(bundled_model_path().with_name("default.json").read_text())
    with TestClient(create_app(Predictor.from_pretrained(backend="torch"))) as client:
        card = client.get("/v1/model").json()
    assert card["card"].endswith("MODEL_CARD.md") and card["tta"] == meta["tta"]
    assert card["metrics"]["test_accuracy"] == meta["metrics"]["test_accuracy"]


def test_the_shipped_recipe_stays_within_the_training_budget_by_its_caps() -> None:
    """Every `ferlab train --config` of the card's Reproduce block has a time cap, and the caps add up (with two
    minutes for a weight average's batch-norm pass and validation after a cap) to at most the 3-hour budget, so
    the recipe re-runs within budget on a slower machine too."""
    import re
    from pathlib import Path

    from ferlab.export.model_card import TRAINING_BUDGET_HOURS
    from ferlab.train import TrainConfig

    card = (bundled_model_path().parent / "MODEL_CARD.md").read_text()
    recipes = re.findall(r"^ferlab train --config (\S+)", card, flags=re.MULTILINE)
    root = Path(__file__).resolve().parents[1]
    configs = [TrainConfig.from_yaml(root / r) for r in recipes]
    assert configs and all(c.time_budget_minutes for c in configs), recipes
    allowance = sum(2.0 for c in configs if c.swa_epochs)
    assert sum(c.time_budget_minutes for c in configs) + allowance <= 60 * TRAINING_BUDGET_HOURS
