"""ONNX Runtime classifier: the same `predict_proba` interface as a torch checkpoint, for `.onnx` exports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ferlab.errors import CheckpointError
from ferlab.train.checkpoint import Classifier

__all__ = ["OnnxClassifier", "load_onnx_classifier"]


class OnnxClassifier(Classifier):
    """Runs an `ferlab export --onnx` file (uint8 faces in, probabilities out) with ONNX Runtime on the CPU."""

    def __init__(self, session, classes: tuple[str, ...], model_name: str, image_size: int, info: dict) -> None:  # noqa: ANN001
        super().__init__(classes, model_name, image_size, info)
        self.session = session

    def _proba_batch(self, images: torch.Tensor) -> np.ndarray:
        faces = np.ascontiguousarray(images.numpy()[:, None])
        return self.session.run(None, {"faces": faces})[0]


def load_onnx_classifier(path: str | Path) -> OnnxClassifier:
    """Open an exported model (fp32 or int8, `info["quantization"]` says which: "none" or "int8-qdq"); a file
    without ferlab metadata or that ORT cannot load is a CheckpointError."""
    import onnxruntime as ort

    try:
        options = ort.SessionOptions()
        options.add_session_config_entry("session.set_denormal_as_zero", "1")  # as torch's flush_denormals()
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 - ORT raises its own untyped errors for foreign/corrupt files
        raise CheckpointError(f"cannot load ONNX model {path}: {str(err).splitlines()[0]}") from None
    meta = session.get_modelmeta().custom_metadata_map
    if "classes" not in meta or "image_size" not in meta:
        raise CheckpointError(f"{path} is not a ferlab ONNX export (no class names in its metadata)")
    info: dict = {"format": "onnx", "path": str(path), **meta, "quantization": meta.get("quantization", "none")}
    try:  # the training config (val_fraction, seed ...), stored by exports: `eval --split val` re-carves by it
        info["config"] = json.loads(meta.get("config") or "{}")
    except ValueError:
        info["config"] = {}
    return OnnxClassifier(session, tuple(json.loads(meta["classes"])), meta.get("model_name", "onnx"),
                          int(meta["image_size"]), info)
