"""What the endpoints compute, apart from HTTP: faces to JSON, the model card, one face's explanation.

Everything here runs in the inference thread pool, never on the event loop.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ferlab.serve.errors import ApiError

__all__ = ["ServePredictor", "Explainer", "ExplainResult", "face_to_json", "model_card", "explain_with_ferlab",
           "PrivateNetworkExplainer", "classes_of"]


class ServePredictor(Protocol):
    """What the server needs from a predictor (`ferlab.predict.Predictor` satisfies it)."""

    def predict(self, image: Any, detect: bool = True) -> list: ...


@dataclass(frozen=True)
class ExplainResult:
    """One face's explanation, ready for JSON."""

    face_index: int
    box: tuple[int, int, int, int]
    label: str
    target: str
    method: str
    probs: dict[str, float]
    regions: dict[str, float]
    regions_per_area: dict[str, float]
    overlay_png: bytes

    def to_json(self) -> dict:
        return {
            "face_index": self.face_index, "box": [int(v) for v in self.box], "label": self.label,
            "target": self.target, "method": self.method, "probs": _floats(self.probs),
            "regions": _floats(self.regions), "regions_per_area": _floats(self.regions_per_area),
            "overlay_png_base64": base64.b64encode(self.overlay_png).decode("ascii"),
        }


class Explainer(Protocol):
    """Explain face `face_index` of an RGB image for class `target` (None = the predicted one)."""

    def __call__(self, predictor: Any, image: np.ndarray, *, face_index: int, target: str | None,
                 method: str, detect: bool = True) -> ExplainResult: ...


def _floats(values: dict[str, Any]) -> dict[str, float]:
    return {str(k): round(float(v), 6) for k, v in values.items()}


def face_to_json(face: Any) -> dict:
    """A FacePrediction as the `ferlab predict --json` face object."""
    return {"box": [int(v) for v in face.box], "score": round(float(face.score), 6), "label": str(face.label),
            "probs": _floats(face.probs)}


def _classifier(predictor: Any) -> Any:
    return getattr(predictor, "classifier", None) or getattr(predictor, "clf", None) or predictor


def classes_of(predictor: Any) -> tuple[str, ...]:
    """The class names the predictor chooses from."""
    return tuple(getattr(_classifier(predictor), "classes", None) or getattr(predictor, "classes", ()))


def model_card(predictor: Any) -> dict:
    """Name, classes, input size and known metrics of the served model, read from its checkpoint info."""
    clf = _classifier(predictor)
    info = getattr(clf, "info", None) or {}
    size = int(getattr(clf, "image_size", None) or info.get("image_size") or 48)
    metrics = {str(k): v for k, v in (info.get("metrics") or {}).items() if isinstance(v, int | float | str)}
    card = {"name": str(getattr(clf, "model_name", None) or info.get("model_name") or type(predictor).__name__),
            "classes": list(classes_of(predictor)), "input_size": [1, size, size], "metrics": metrics,
            "tta": str(getattr(predictor, "tta", "none"))}
    source = Path(str(info.get("path") or "unknown"))
    shipped = source.with_name("default.json")
    if source.stem == "default" and shipped.is_file():  # the bundled model: add its card summary
        try:
            meta = json.loads(shipped.read_text())
        except (OSError, ValueError):
            meta = {}
        card["metrics"].update({k: v for k, v in (meta.get("metrics") or {}).items() if isinstance(v, int | float)})
        card["card"] = "ferlab/assets/models/MODEL_CARD.md"
    return card


def explain_with_ferlab(predictor: Any, image: np.ndarray, *, face_index: int, target: str | None,
                        method: str, detect: bool = True) -> ExplainResult:
    """Explain one face of a photo with `ferlab.explain.explain_image` on the predictor's classifier (with its
    TTA, so the label matches /v1/predict's); `detect=False` takes the whole image as one face crop."""
    from ferlab.errors import FaceNotFoundError
    from ferlab.explain.api import explain_image, overlay_png

    detector = getattr(predictor, "detector", "auto")
    try:
        explanations = explain_image(predictor, image, method=method, target=target, detect=detect,
                                     detector=detector if isinstance(detector, str) else "auto")
    except FaceNotFoundError as err:
        raise ApiError(422, "no_face", "nothing to explain: no face found in the image (send detect=false if it is "
                                       "already a face crop)") from err
    if not 0 <= face_index < len(explanations):
        raise ApiError(422, "bad_face_index",
                       f"face_index {face_index} is out of range: {len(explanations)} face(s) found")
    exp = explanations[face_index]
    return ExplainResult(face_index=face_index, box=exp.box or (0, 0, image.shape[1], image.shape[0]),
                         label=exp.predicted, target=exp.target, method=method, probs=exp.probs, regions=exp.regions,
                         regions_per_area=exp.regions_per_area, overlay_png=overlay_png(exp.face, exp.heatmap))


class PrivateNetworkExplainer:
    """The server's default explainer: explanations run one at a time, on the server's own copy of the network.

    Attribution methods hook the network's layers and record every forward pass that runs through them meanwhile;
    on the network /v1/predict shares, concurrent requests mixed their activations into each other's heat maps
    (wrong region shares, still 200). The copy costs one more set of weights in memory.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._own: tuple[Any, Any] | None = None  # (the predictor served, its copy with a private network)

    def __call__(self, predictor: Any, image: np.ndarray, *, face_index: int, target: str | None,
                 method: str, detect: bool = True) -> ExplainResult:
        with self._lock:
            if self._own is None or self._own[0] is not predictor:
                self._own = (predictor, _with_private_network(predictor))
            return explain_with_ferlab(self._own[1], image, face_index=face_index, target=target, method=method,
                                       detect=detect)


def _with_private_network(predictor: Any) -> Any:
    """A shallow copy of the predictor whose torch classifier is a deep copy (others are shared: they cannot be
    explained, and explain says so)."""
    clf = getattr(predictor, "classifier", None)
    if clf is None or getattr(clf, "torch_model", None) is None:
        return predictor
    own = copy.copy(predictor)
    own.classifier = copy.deepcopy(clf)
    return own


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """Call fn and return (result, elapsed milliseconds)."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, (time.perf_counter() - start) * 1000.0
