"""The bundled model's files and how it ships (default.json): weights for gradients, a fast twin for inference, TTA.

ferlab/assets/models/ holds `default.pt` (torch, fp16 weights: explanations need gradients), the fast inference
twin named by default.json's `backend` (`onnx-int8` -> default.int8.onnx, `onnx` -> default.onnx), and the card.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["BACKEND_FILES", "bundled_model_path", "bundled_meta", "bundled_inference_path", "shipped_tta"]

#: default.json `backend` -> the file that runs it, next to default.pt.
BACKEND_FILES: dict[str, str] = {"torch": "default.pt", "onnx": "default.onnx", "onnx-int8": "default.int8.onnx"}


def bundled_model_path() -> Path:
    """ferlab/assets/models/default.pt inside the installed package."""
    return Path(str(resources.files("ferlab") / "assets" / "models" / "default.pt"))


def bundled_meta(model_path: str | Path | None = None) -> dict[str, Any]:
    """default.json beside `model_path` (default: the bundled model): shipped TTA, backend, headline metrics."""
    meta = Path(model_path or bundled_model_path()).with_name("default.json")
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def bundled_inference_path(backend: str = "auto") -> Path:
    """The file `Predictor.from_pretrained` and `ferlab eval` run: default.json's backend when its file is there
    ("auto"), else default.pt; backend="torch" always gives default.pt (gradients)."""
    pt = bundled_model_path()
    if backend == "auto":
        backend = str(bundled_meta(pt).get("backend", "torch"))
    twin = pt.with_name(BACKEND_FILES.get(backend, pt.name))
    return twin if twin.is_file() else pt


def shipped_tta(model_path: str | Path) -> str:
    """The TTA a bundled model file ships with (default.json beside one of its files), else "none"."""
    if Path(model_path).name not in BACKEND_FILES.values():
        return "none"
    return str(bundled_meta(model_path).get("tta", "none"))
