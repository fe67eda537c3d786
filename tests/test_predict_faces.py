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
    assert len(faces) == 1 and faces[0].too_small and faces[0].warning.endswith("px, under 500 px: unreliable")


def test_crop_landmarks_land_where_the_crop_put_the_landmarks():
    """Explanations place facial regions on crop_landmarks: they must follow align_face's own map (tilt, box
    scale, landmark-centred crop), not an approximation of it."""
    from ferlab.predict.detectors import Detection
    from ferlab.predict.faces import align_face, crop_landmarks

    marks = np.array([[150.0, 170.0], [230.0, 150.0], [195.0, 205.0], [170.0, 255.0], [240.0, 240.0]])
    gray = np.zeros((400, 400), np.uint8)
    for x, y in marks.astype(int):
        gray[y - 4:y + 5, x - 4:x + 5] = 255
    det = Detection(box=(120.0, 110.0, 150.0, 180.0), score=0.9, landmarks=marks)
    for geometry in ({"margin": 0.2, "box_scale": 0.73}, {"margin": 0.0, "box_scale": 1.0, "y_shift": 0.1}):
        crop = align_face(gray, det, size=48, **geometry)
        mapped = crop_landmarks(det, size=48, **geometry)
        for x, y in mapped:
            assert crop[int(round(y)), int(round(x))] > 128  # each mapped point sits on its bright dot
    assert crop_landmarks(Detection(box=(0, 0, 10, 10), score=1.0), size=48) is None


def test_a_whole_image_crop_of_a_very_wide_image_is_aligned_not_a_cv2_error():
    """OpenCV's warpAffine refuses sides of 32,767 px or more; such images are shrunk first."""
    from ferlab.predict.detectors import Detection
    from ferlab.predict.faces import align_face

    gray = np.tile(np.linspace(0, 255, 33_000).astype(np.uint8), (100, 1))
    crop = align_face(gray, Detection(box=(0.0, 0.0, 33_000.0, 100.0), score=1.0), size=48, margin=0.0)
    assert crop.shape == (48, 48)
    assert crop[24, 0] < 30 and crop[24, 47] > 225  # the gradient still runs dark to bright across the crop


@pytest.mark.parametrize("shape", [(48, 72), (30, 30), (80, 60), (48, 48)])
@pytest.mark.parametrize("channels", [1, 3])
def test_a_crop_without_detection_is_prepared_as_the_data_loader_prepares_it(shape, channels, tmp_path):
    """`predict --no-detect` padded a wide crop by repeating its edges and enlarged bilinearly; `ferlab eval` and
    training centre-crop, box-shrink and bicubic-enlarge. One file must give one crop, whichever path reads it."""
    import io

    from PIL import Image

    from ferlab.data.decode import decode_image

    rng = np.random.default_rng(sum(shape) + channels)
    pixels = rng.integers(0, 256, shape if channels == 1 else (*shape, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    (tmp_path / "face.png").write_bytes(buf.getvalue())
    crop = detect_and_align(load_image(tmp_path / "face.png"), detector="none", margin=0.0)[0].crop
    expected, _ = decode_image(buf.getvalue(), 48)
    assert np.array_equal(crop, expected)


@pytest.mark.parametrize("kind", ["png16", "tiff32"])
def test_wide_range_images_are_scaled_to_8_bits_not_clipped_to_white(kind, tmp_path):
    from PIL import Image

    eight = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (64, 1))
    wide = eight.astype(np.uint16) * 257
    path = tmp_path / ("face.png" if kind == "png16" else "face.tif")
    Image.fromarray(wide if kind == "png16" else wide.astype(np.int32)).save(path)
    rgb = load_image(path)
    assert rgb.dtype == np.uint8 and rgb.shape == (64, 64, 3)
    assert np.abs(rgb[..., 0].astype(int) - eight).max() <= 1  # the 8-bit picture, not a white one


def test_16_bit_pictures_read_alike_as_a_file_a_pil_image_or_an_array(tmp_path):
    from PIL import Image

    from ferlab.predict.images import as_rgb

    eight = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (64, 1))
    wide = eight.astype(np.uint16) * 257
    Image.fromarray(wide).save(tmp_path / "w.png")
    for given in (tmp_path / "w.png", Image.fromarray(wide), wide):
        assert np.abs(as_rgb(given)[..., 0].astype(int) - eight).max() <= 1, type(given)


def test_a_bad_item_in_a_batch_is_that_items_error_not_the_streams(astronaut):
    from ferlab.errors import ImageDecodeError

    pred = Predictor.from_pretrained()
    items = [astronaut, None, np.zeros((0, 0)), {"not": "an image"}, np.array([["a"]]), astronaut]
    results = list(pred.predict_batch(items))
    assert len(results) == len(items)
    assert [isinstance(r, ImageDecodeError) for _, r in results] == [False, True, True, True, True, False]
    assert len(results[0][1]) == len(results[-1][1]) == 1


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"margin": -1}, {"min_size": -5}])
def test_predictor_settings_are_checked(kwargs):
    with pytest.raises(ConfigError, match="Predictor needs batch_size >= 1"):
        Predictor(Predictor.from_pretrained().classifier, **kwargs)


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
