"""Explain a classifier's decision on aligned faces or photos: heat maps, region shares, PNG overlays."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ferlab.errors import ConfigError, FaceNotFoundError, ModelError

__all__ = [
    "FaceExplanation",
    "ExplainedBatch",
    "resolve_target",
    "explain_batch",
    "explain_faces",
    "explain_image",
    "overlay_png",
    "require_torch_model",
]


@dataclass(frozen=True)
class FaceExplanation:
    """Why one face got its score for `target`: heat map in [0, 1], probabilities and facial-region shares."""

    heatmap: np.ndarray  # float32 H x W in [0, 1]
    predicted: str
    target: str
    probs: dict[str, float]
    regions: dict[str, float]  # region (and "other") -> share of positive attribution mass, summing to 1
    regions_per_area: dict[str, float]  # share / area fraction: 1.0 = as much as its size
    method: str = "gradcam"
    attribution: np.ndarray | None = field(default=None, repr=False)  # raw non-negative map (before scaling)
    box: tuple[int, int, int, int] | None = None  # face box in the photo, when explained from a photo
    face: np.ndarray | None = field(default=None, repr=False)  # the aligned uint8 crop that was explained


@dataclass(frozen=True)
class ExplainedBatch:
    """Arrays for a batch (what dataset reports aggregate): raw maps N x H x W, probs N x C, targets N."""

    raw: np.ndarray
    probs: np.ndarray
    targets: np.ndarray


def require_torch_model(clf: Any) -> Any:
    """The classifier's torch network, or a one-line ModelError for classical / ONNX models."""
    model = getattr(clf, "torch_model", None)
    if model is None and getattr(clf, "members", None):
        raise ModelError(f"model '{getattr(clf, 'model_name', '?')}' is an ensemble: its heat map would need one "
                         "network's gradients; explain one of its members (a .pt checkpoint)")
    if model is None:
        raise ModelError(f"model '{getattr(clf, 'model_name', '?')}' has no torch network to explain "
                         f"(classical or ONNX model): use a .pt checkpoint of a neural network")
    return model


def resolve_target(classes: tuple[str, ...], target: str | int | None) -> int | None:
    """Class index of `target` (name, alias or index); None means "the predicted class"."""
    if target is None:
        return None
    if isinstance(target, int | np.integer) or (isinstance(target, str) and target.strip().isdigit()):
        index = int(target)
        if 0 <= index < len(classes):
            return index
    else:
        from ferlab.labels import canonical_label

        name = canonical_label(str(target))
        if name in classes:
            return classes.index(name)
    raise ConfigError(f"target class '{target}' is not one of this model's classes: {', '.join(classes)}")


def _as_faces(faces: np.ndarray, size: int) -> np.ndarray:
    """uint8 N x size x size grayscale faces (resized when needed)."""
    import cv2

    from ferlab.models.preprocess import face_batch

    arr = face_batch(faces, ConfigError)
    if arr.shape[1:] != (size, size):
        arr = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in arr])
    return np.ascontiguousarray(arr)


def predicted_probs(clf: Any, model: Any, x: Any, faces: np.ndarray, tta: str) -> np.ndarray:
    """Class probabilities of a batch (`x`: its preprocessed tensor, `faces`: the same uint8 crops): one forward
    pass, or the classifier's TTA average, so an explanation names the class predict and eval name."""
    import torch

    if tta == "none":
        with torch.inference_mode():
            return torch.softmax(model(x).float(), dim=1).numpy()
    return np.asarray(clf.predict_proba(faces, batch_size=len(faces), tta=tta))


def explain_batch(clf: Any, faces: np.ndarray, *, method: str = "gradcam", target: str | int | None = None,
                  batch_size: int = 64, tta: str = "none") -> ExplainedBatch:
    """Raw attribution maps, probabilities and targets for aligned uint8 faces (batched, no per-face objects).

    With a `tta` other than "none" the probabilities, and so the default target, are the TTA-averaged ones
    `ferlab predict` reports, so an explanation names the class predict names; the map explains the face as given.
    """
    import torch

    from ferlab.explain.methods import attribute, get_method
    from ferlab.models.preprocess import preprocess

    get_method(method)
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    model = require_torch_model(clf)
    classes = tuple(clf.classes)
    fixed = resolve_target(classes, target)
    size = int(getattr(clf, "image_size", 0) or model.ferlab_cfg.input_size[1])
    faces = _as_faces(faces, size)
    raws, probs, targets = [], [], []
    for start in range(0, len(faces), batch_size):
        x = preprocess(torch.from_numpy(faces[start:start + batch_size]), model.ferlab_cfg).contiguous()
        p = predicted_probs(clf, model, x, faces[start:start + batch_size], tta)
        t = p.argmax(axis=1) if fixed is None else np.full(len(p), fixed)
        raws.append(attribute(model, x, torch.from_numpy(t), method))
        probs.append(p)
        targets.append(t)
    return ExplainedBatch(np.concatenate(raws), np.concatenate(probs), np.concatenate(targets).astype(np.int64))


def explain_faces(clf: Any, faces_uint8: np.ndarray, *, method: str = "gradcam", target: str | int | None = None,
                  landmarks: list[np.ndarray | None] | None = None, batch_size: int = 64,
                  tta: str = "none") -> list[FaceExplanation]:
    """Explain aligned faces (uint8 N x H x W): heat map for `target` (default: the predicted class) + regions.

    `landmarks[i]` (5 x 2 in crop pixels) makes face i's regions follow its own landmarks instead of the template.
    """
    from ferlab.explain.methods import normalise
    from ferlab.explain.regions import region_label_map, region_shares, region_shares_per_area

    faces = np.asarray(faces_uint8)
    batch = explain_batch(clf, faces, method=method, target=target, batch_size=batch_size, tta=tta)
    heat = normalise(batch.raw)
    classes = tuple(clf.classes)
    size = heat.shape[-1]
    template_map = region_label_map(size)
    out = []
    for i in range(len(heat)):
        marks = landmarks[i] if landmarks is not None and i < len(landmarks) else None
        labels = template_map if marks is None else region_label_map(size, marks)
        shares = region_shares(batch.raw[i], labels)
        out.append(FaceExplanation(
            heatmap=heat[i], predicted=classes[int(batch.probs[i].argmax())], target=classes[int(batch.targets[i])],
            probs={c: float(p) for c, p in zip(classes, batch.probs[i], strict=True)}, regions=shares,
            regions_per_area=region_shares_per_area(shares, labels), method=method, attribution=batch.raw[i],
            face=faces[i] if faces.ndim == 3 else None,
        ))
    return out


def _crop_landmarks(face: Any, size: int) -> np.ndarray | None:
    """An AlignedFace's landmarks in crop pixels (mapped by the aligner through the crop's own transform), or None
    when they are missing, outside the crop or implausibly close (then the calibrated template is used)."""
    marks = getattr(face, "crop_landmarks", None)
    if marks is None:
        return None
    marks = np.asarray(marks, dtype=np.float64)
    iod = float(np.hypot(*(marks[1] - marks[0]))) if marks.shape == (5, 2) else 0.0
    inside = marks.shape == (5, 2) and bool(((marks > -0.5) & (marks < size - 0.5)).all())
    return marks if inside and iod > 0.15 * size else None


def explain_image(clf: Any, image: Any, *, method: str = "gradcam", target: str | int | None = None,
                  detect: bool = True, detector: str = "auto") -> list[FaceExplanation]:
    """Explain every face of a photo (path, bytes, PIL or array): detect + align, or the whole image as one face.

    `clf` is a Classifier or anything with a `.classifier` (e.g. a Predictor, whose TTA then sets the reported
    probabilities and default target, as in `explain_batch`). Raises FaceNotFoundError when no face is found.
    """
    from ferlab.predict.faces import detect_and_align
    from ferlab.predict.images import as_rgb

    predictor = clf if hasattr(clf, "classifier") and hasattr(clf, "align") else None
    tta = str(getattr(clf, "tta", "none")) if hasattr(clf, "classifier") else "none"
    clf = getattr(clf, "classifier", clf)
    model = require_torch_model(clf)
    size = int(getattr(clf, "image_size", 0) or model.ferlab_cfg.input_size[1])
    rgb = as_rgb(image)
    if predictor is not None and detector in ("auto", getattr(predictor, "detector", None)):
        aligned = predictor.align(rgb, detect)  # the crops predict classifies, so both see and list the same faces
    else:  # Predictor.align's rules: the whole image squared (no margin) without detection
        aligned = detect_and_align(rgb, detector=detector if detect else "none", size=size,
                                   margin=0.2 if detect else 0.0,
                                   detector_config=getattr(predictor, "detector_config", None))
    if not aligned:
        raise FaceNotFoundError("no face found in the image (use --no-detect if it is already a face crop)")
    marks = [_crop_landmarks(f, size) for f in aligned]  # regions follow each face's own landmarks
    results = explain_faces(clf, np.stack([np.asarray(f.crop) for f in aligned]), method=method, target=target,
                            landmarks=marks, tta=tta)
    if not detect:
        return results
    from dataclasses import replace

    return [replace(r, box=tuple(int(round(v)) for v in f.box)) for r, f in zip(results, aligned, strict=True)]


def overlay_png(face_or_image: np.ndarray, heatmap: np.ndarray, *, alpha: float = 0.45, size: int | None = 192,
                box: tuple[int, int, int, int] | None = None) -> bytes:
    """PNG bytes of a heat map (values in [0, 1]) blended over a face (upscaled to `size`) or over `box` of a photo."""
    import cv2
    import matplotlib
    from PIL import Image

    base = np.asarray(face_or_image)
    if base.ndim == 2:
        base = np.repeat(base[..., None], 3, axis=2)
    base = np.clip(base[..., :3], 0, 255).astype(np.uint8)
    heat = np.clip(np.nan_to_num(np.asarray(heatmap, dtype=np.float32)), 0.0, 1.0)
    if box is None and size and base.shape[0] != size:
        scale = size / base.shape[0]
        base = cv2.resize(base, (round(base.shape[1] * scale), size), interpolation=cv2.INTER_CUBIC)
    x, y, w, h = box if box is not None else (0, 0, base.shape[1], base.shape[0])
    x, y = max(int(x), 0), max(int(y), 0)
    w, h = min(int(w), base.shape[1] - x), min(int(h), base.shape[0] - y)
    if w <= 0 or h <= 0:
        raise ConfigError(f"overlay box {box} lies outside the image {base.shape[1]}x{base.shape[0]}")
    heat = cv2.resize(heat, (w, h), interpolation=cv2.INTER_LINEAR)
    colour = (matplotlib.colormaps["jet"](heat)[..., :3] * 255).astype(np.float32)
    out = base.astype(np.float32)
    region = out[y:y + h, x:x + w]
    weight = alpha * (0.3 + 0.7 * heat[..., None])  # cold areas stay readable
    out[y:y + h, x:x + w] = region * (1 - weight) + colour * weight
    buffer = io.BytesIO()
    Image.fromarray(np.clip(out, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()
