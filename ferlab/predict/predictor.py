"""Predictor: faces in, emotions out, for photos, arrays and batches of files, on any Classifier backend."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ferlab.errors import CheckpointError, ConfigError, FerlabError
from ferlab.predict.bundled import bundled_model_path, shipped_tta  # re-exported: the public names predate bundled.py
from ferlab.predict.detectors import DetectorConfig
from ferlab.predict.faces import AlignedFace, detect_and_align
from ferlab.predict.images import as_rgb

__all__ = ["DEFAULT_DETECTOR_CONFIG", "FacePrediction", "Predictor", "bundled_model_path", "shipped_tta"]

#: The Predictor's detector set-up: CenterFace int8 at up to 640 px finds the same faces as fp32 (boxes within
#: fp32's own 1-px-shift jitter) about 1.4x faster (benchmarks/bench_detector.py). DetectorConfig() is fp32.
DEFAULT_DETECTOR_CONFIG = DetectorConfig(precision="int8")


@dataclass(frozen=True)
class FacePrediction:
    """One classified face; `box` is (x, y, w, h) in source pixels. `warning` is set for unreliable (tiny) faces."""

    box: tuple[int, int, int, int]
    score: float
    label: str
    probs: dict[str, float] = field(default_factory=dict)
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The `ferlab predict --json` face object (`warning` only when set)."""
        out = asdict(self)
        out["box"] = [int(v) for v in self.box]
        out["probs"] = {k: round(float(v), 6) for k, v in self.probs.items()}
        out["score"] = round(float(self.score), 6)
        if out["warning"] is None:
            del out["warning"]
        return out


class Predictor:
    """Detect, align and classify faces with one classifier (torch, classical or ONNX Runtime)."""

    def __init__(self, classifier: Any, *, detector: str = "auto", margin: float = 0.2, min_size: int = 20,
                 tta: str = "none", batch_size: int = 256, detector_config: DetectorConfig | None = None) -> None:
        if batch_size < 1 or margin < 0 or min_size < 0:  # each failed later with a bare ValueError/ZeroDivisionError
            raise ConfigError(f"Predictor needs batch_size >= 1, margin >= 0 and min_size >= 0; got {batch_size}, "
                              f"{margin}, {min_size}")
        self.classifier, self.detector, self.margin, self.min_size = classifier, detector, margin, min_size
        self.tta, self.batch_size = tta, batch_size
        #: How a detector given by name runs (resolution, min_face, precision, threads).
        self.detector_config = detector_config or DEFAULT_DETECTOR_CONFIG

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.classifier.classes)

    @classmethod
    def from_checkpoint(cls, path: str | Path, **kwargs: Any) -> Predictor:
        """A .pt checkpoint (or run dir) or an .onnx export; missing file -> CheckpointError. A bundled model file
        runs with its shipped TTA unless `tta` is given, as `ferlab eval` runs it: one file, one result."""
        from ferlab.predict.bundled import shipped_tta
        from ferlab.train.checkpoint import load_classifier

        p = Path(path)
        if not p.exists():
            raise CheckpointError(f"model not found: {p}")
        kwargs.setdefault("tta", shipped_tta(p))
        return cls(load_classifier(p), **kwargs)

    @classmethod
    def from_pretrained(cls, backend: str = "auto", **kwargs: Any) -> Predictor:
        """The bundled default model with its shipped TTA (default.json). `backend`: auto (the file default.json
        names: the int8 ONNX twin, ~3x the torch speed, or the bundled ensemble), torch (the fp16 weights; needed
        for gradient explanations), or any key of `ferlab.predict.bundled.BACKEND_FILES`."""
        from ferlab.predict import bundled

        path = bundled.bundled_model_path()
        if not path.is_file():
            raise CheckpointError(f"bundled model missing at {path}; reinstall ferlab or pass --model")
        return cls.from_checkpoint(bundled.bundled_inference_path(backend), **kwargs)

    def warm_up(self) -> None:
        """Build the detector (the int8 CenterFace is quantised into the cache on first use, a few seconds) and run
        the classifier once, so that a server's first request is not the slow one."""
        self.align(np.full((96, 96, 3), 128, dtype=np.uint8))
        self.classify_faces(np.full((1, self.classifier.image_size, self.classifier.image_size), 128, np.uint8))

    def classify_faces(self, faces: np.ndarray) -> np.ndarray:
        """Already-aligned uint8 N x H x W crops -> probabilities N x C (batched)."""
        arr = np.asarray(faces)
        if len(arr) == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        return self.classifier.predict_proba(arr, batch_size=self.batch_size, tta=self.tta)

    def align(self, image: Any, detect: bool = True) -> list[AlignedFace]:
        """Faces of one image (path, bytes, PIL or array), aligned at the classifier's input size."""
        return detect_and_align(as_rgb(image), detector=self.detector if detect else "none",
                                size=self.classifier.image_size, margin=self.margin if detect else 0.0,
                                min_size=self.min_size, detector_config=self.detector_config)

    def _to_predictions(self, faces: list[AlignedFace], probs: np.ndarray) -> list[FacePrediction]:
        return [FacePrediction(box=f.box, score=float(f.score), label=self.classes[int(np.argmax(p))],
                               probs={c: float(v) for c, v in zip(self.classes, p, strict=True)}, warning=f.warning)
                for f, p in zip(faces, probs, strict=True)]

    def predict(self, image: Any, detect: bool = True) -> list[FacePrediction]:
        """Every face of one image, left to right; an empty list when none is found."""
        faces = self.align(image, detect)
        return self._to_predictions(faces, self.classify_faces(np.stack([f.crop for f in faces])) if faces else [])

    def predict_batch(self, items: Iterable[Any], detect: bool = True,
                      batch_size: int | None = None) -> Iterator[tuple[Any, list[FacePrediction] | FerlabError]]:
        """Stream (item, predictions or the FerlabError it raised), classifying crops of many images together."""
        limit = batch_size or self.batch_size
        pending: list[tuple[Any, list[AlignedFace] | FerlabError]] = []

        def flush() -> Iterator[tuple[Any, list[FacePrediction] | FerlabError]]:
            crops = [f.crop for _, faces in pending if isinstance(faces, list) for f in faces]
            probs = self.classify_faces(np.stack(crops)) if crops else np.zeros((0, len(self.classes)))
            at = 0
            for item, faces in pending:
                if isinstance(faces, FerlabError):
                    yield item, faces
                    continue
                yield item, self._to_predictions(faces, probs[at:at + len(faces)])
                at += len(faces)
            pending.clear()

        n_crops = 0
        for item in items:
            try:
                faces: list[AlignedFace] | FerlabError = self.align(item, detect)
            except FerlabError as err:
                faces = err
            pending.append((item, faces))
            n_crops += len(faces) if isinstance(faces, list) else 0
            if n_crops >= limit:
                yield from flush()
                n_crops = 0
        yield from flush()
