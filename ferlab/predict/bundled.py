"""The bundled model's files and how it ships (default.json): weights for gradients, a fast twin for inference, TTA.

ferlab/assets/models/ holds `default.pt` (torch, fp16 weights: explanations need gradients), the fast inference
twin named by default.json's `backend` (`onnx-int8` -> default.int8.onnx, `onnx` -> default.onnx), and the card;
optionally an ensemble file (`ensemble.json`, run by `--ensemble` with no model, or by default when `backend` is
`ensemble`) with its members.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from ferlab.errors import CheckpointError, ConfigError

__all__ = ["BACKEND_FILES", "ENSEMBLE_FILE", "bundled_model_path", "bundled_meta", "bundled_inference_path",
           "bundled_ensemble_path", "model_sources", "shipped_tta"]

#: default.json `backend` -> the file that runs it, next to default.pt.
BACKEND_FILES: dict[str, str] = {"torch": "default.pt", "onnx": "default.onnx", "onnx-int8": "default.int8.onnx",
                                 "ensemble": "ensemble.json"}
ENSEMBLE_FILE = BACKEND_FILES["ensemble"]


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
        twin = pt.with_name(BACKEND_FILES.get(str(bundled_meta(pt).get("backend", "torch")), pt.name))
        return twin if twin.is_file() else pt
    if backend not in BACKEND_FILES:  # an explicit choice is honoured or refused, never swapped for torch silently
        raise ConfigError(f"unknown backend '{backend}'; choose from auto, {', '.join(BACKEND_FILES)}")
    chosen = pt.with_name(BACKEND_FILES[backend])
    if not chosen.is_file():
        raise CheckpointError(f"this build ships no '{backend}' model ({chosen.name} is not next to {pt.name})")
    return chosen


def bundled_ensemble_path() -> Path | None:
    """The bundled ensemble file, or None when this build ships no ensemble."""
    path = bundled_model_path().with_name(ENSEMBLE_FILE)
    return path if path.is_file() else None


def model_sources(model: str | None, ensemble: list[str] | None) -> list[str]:
    """The model files a command runs, from its model argument and `--ensemble` (None: flag absent; []: bare flag,
    the bundled ensemble; paths: averaged with the model, the bundled one by default). Raises ConfigError."""
    from ferlab.errors import ConfigError

    if ensemble is None:
        return [model or str(bundled_inference_path())]
    if ensemble:
        return [model or str(bundled_inference_path()), *ensemble]
    if model:
        raise ConfigError("--ensemble without models uses the bundled ensemble; to ensemble your own model, "
                          "name the others: --ensemble OTHER [OTHER ...]")
    path = bundled_ensemble_path()
    if path is None:
        raise ConfigError("this ferlab ships no bundled ensemble; name the models: --ensemble MODEL [MODEL ...]")
    return [str(path)]


def shipped_tta(model_path: str | Path) -> str:
    """The TTA a bundled model file ships with (default.json beside one of its files; the ensemble file's own
    `ensemble_tta` when set), else "none"."""
    name = Path(model_path).name
    if name not in BACKEND_FILES.values():
        return "none"
    meta = bundled_meta(model_path)
    if name == ENSEMBLE_FILE and "ensemble_tta" in meta:
        return str(meta["ensemble_tta"])
    return str(meta.get("tta", "none"))
