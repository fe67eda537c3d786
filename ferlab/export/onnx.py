"""Export a ferlab checkpoint to a self-describing ONNX file (uint8 faces in, probabilities out) and check parity.

The graph holds the model's own preprocessing (scale, channel repeat, mean/std) and the softmax, so an ONNX
Runtime user feeds uint8 N x 1 x H x W faces and needs nothing from ferlab. Class names, model name and input size
are stored in the file's metadata.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ferlab import __version__
from ferlab.errors import CheckpointError, FerlabError
from ferlab.io import atomic_path
from ferlab.train.checkpoint import load_classifier

__all__ = ["ExportResult", "ProbabilityHead", "export_onnx", "PARITY_TOLERANCE"]

PARITY_TOLERANCE = 1e-4


class ProbabilityHead(nn.Module):
    """uint8 faces -> the model's preprocessing -> logits -> softmax, as one traceable module."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        from ferlab.models.preprocess import preprocess

        return torch.softmax(self.model(preprocess(faces, self.model.ferlab_cfg)), dim=1)


@dataclass(frozen=True)
class ExportResult:
    path: Path
    max_abs_diff: float
    num_checked: int
    bytes: int


def _parity_inputs(size: int, seed: int = 0) -> np.ndarray:
    """Random faces plus smooth gradients and constants: a batch that exercises the whole input range."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (24, 1, size, size), dtype=np.uint8)
    ramp = np.tile(np.linspace(0, 255, size, dtype=np.float32), (size, 1)).astype(np.uint8)[None, None]
    flat = np.stack([np.full((1, size, size), v, np.uint8) for v in (0, 128, 255)])
    return np.concatenate([noise, ramp, ramp.transpose(0, 1, 3, 2), flat])


def export_onnx(checkpoint: str | Path, out: str | Path, *, tolerance: float = PARITY_TOLERANCE) -> ExportResult:
    """Write `out` atomically and return the max |p_onnx - p_torch| on a fixed batch; raises if above `tolerance`."""
    import onnx
    import onnxruntime as ort

    clf = load_classifier(checkpoint)
    if clf.torch_model is None:
        raise CheckpointError(f"{checkpoint} holds no neural network ({clf.model_name}): nothing to export to ONNX")
    head = ProbabilityHead(clf.torch_model.to(memory_format=torch.contiguous_format)).eval()
    size = clf.image_size
    example = torch.zeros(2, 1, size, size, dtype=torch.uint8)
    out = Path(out)
    with atomic_path(out, suffix=".onnx") as tmp:
        with warnings.catch_warnings(), torch.inference_mode(False):
            warnings.simplefilter("ignore")
            torch.onnx.export(head, (example,), str(tmp), input_names=["faces"], output_names=["probs"],
                              dynamic_shapes={"faces": {0: torch.export.Dim("batch", min=1, max=65536)}},
                              external_data=False, verbose=False)
        proto = onnx.load(str(tmp))
        meta = {"ferlab_version": __version__, "model_name": clf.model_name, "classes": json.dumps(list(clf.classes)),
                "image_size": str(size), "input": "uint8 N x 1 x H x W grayscale faces", "output": "probabilities",
                "config": json.dumps(clf.info.get("config") or {}, default=str)}  # `eval --split val` re-carves by it
        for key, value in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, str(tmp))
        faces = _parity_inputs(size)
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        onnx_probs = session.run(None, {"faces": faces})[0]
        with torch.inference_mode():
            torch_probs = head(torch.from_numpy(faces)).numpy()
        diff = float(np.abs(onnx_probs - torch_probs).max())
        if not diff < tolerance:
            raise FerlabError(f"ONNX parity check failed: max abs difference {diff:.2e} >= {tolerance:.0e}; "
                              f"{out} not written")
    return ExportResult(path=out, max_abs_diff=diff, num_checked=len(faces), bytes=out.stat().st_size)
