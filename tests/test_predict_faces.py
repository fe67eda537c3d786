"""Face detection, alignment and the Predictor on an offline real photo, composed multi-face images and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data

from ferlab.errors import ConfigError, ImageDecodeError
from ferlab.labels import EMOTIONS
from ferlab.predict import Predictor
from ferlab.predict.faces import detect_and_align
from ferlab.predict.images import load_image


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage.data.astronaut()


@pytest.mark.parametrize("detector", ["centerface", "haar"])
def test_astronaut_face_found_and_aligned(astronaut, detector):
    faces = detect_and_align(astronaut, detector=detector)
    assert len(faces) == 1
    x, y, w, h = faces[0].box
    assert 150 < x + w / 2 < 300 and 50 < y + h / 2 < 200  # her face, not the flag or the helmet
    assert faces[0].crop.shape == (48, 48) and faces[0].crop.dtype == np.uint8


def test_tiled_faces_are_all_found(astronaut):
    face = astronaut[30:230, 130:330]
    canvas = np.full((260, 700, 3), 255, np.uint8)
    for i in range(3):
        canvas[30:230, 20 + i * 230:220 + i * 230] = face
    faces = detect_and_align(canvas, detector="centerface")
    assert len(faces) == 3
    assert [f.box[0] for f in faces] == sorted(f.box[0] for f in faces)


def test_small_faces_are_flagged_not_dropped(astronaut):
    faces = detect_and_align(astronaut, detector="centerface", min_size=500)
    assert len(faces) == 1 and faces[0].too_small and "below" in faces[0].warning


def test_unknown_detector():
    with pytest.raises(ConfigError, match="unknown face detector"):
        detect_and_align(np.zeros((64, 64, 3), np.uint8), detector="nope")


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n\x00\x00garbage"])
def test_bad_bytes_raise_one_line_error(data):
    with pytest.raises(ImageDecodeError):
        load_image(data)


def test_predictor_json_schema_and_batch_errors(tmp_path, astronaut):
    from ferlab.models import create_model
    from ferlab.train.checkpoint import save_checkpoint

    path = save_checkpoint(tmp_path / "m.pt", {"model_name": "simple_cnn", "model_kwargs": {},
                                                "classes": list(EMOTIONS), "image_size": 48,
                                                "model_state": create_model("simple_cnn").state_dict()})
    pred = Predictor.from_checkpoint(path)
    out = pred.predict(astronaut)
    assert len(out) == 1
    d = out[0].to_dict()
    assert set(d) == {"box", "score", "label", "probs"} and set(d["probs"]) == set(EMOTIONS)
    assert abs(sum(d["probs"].values()) - 1) < 1e-3
    results = list(pred.predict_batch([astronaut, b"", astronaut], batch_size=1))
    assert [type(r).__name__ for _, r in results] == ["list", "ImageDecodeError", "list"]
