"""Self-describing checkpoints (atomic save, checked load) and `Classifier`, one inference interface for all backends.

Backends: a torch checkpoint (`model_state`) is built here; others plug in through `CHECKPOINT_BACKENDS`
(checkpoint key -> "module:function") and `FILE_BACKENDS` (file suffix -> "module:function"), imported lazily.
"""

from __future__ import annotations

import importlib
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ferlab.errors import CheckpointError
from ferlab.io import atomic_path, torch_load_error_text

__all__ = ["FORMAT", "VERSION", "save_checkpoint", "checkpoint_file", "load_checkpoint", "load_model", "build_model",
           "Classifier", "TorchClassifier", "load_classifier", "CHECKPOINT_BACKENDS", "FILE_BACKENDS",
           "TTA_MODES", "check_tta", "tta_views", "flush_denormals", "zero_subnormal_weights"]

FORMAT, VERSION = "ferlab-checkpoint", 1
_WEIGHT_KEYS = ("model_state", "optimizer_state", "scheduler_state", "scaler_state", "estimator")

#: checkpoint key -> "module:callable(checkpoint_dict) -> Classifier"; the first key present wins.
CHECKPOINT_BACKENDS: dict[str, str] = {
    "model_state": "ferlab.train.checkpoint:TorchClassifier.from_checkpoint",
    "estimator": "ferlab.train.classical:ClassicalClassifier.from_checkpoint",
}
#: file suffix -> "module:callable(path) -> Classifier" for files that are not torch checkpoints (e.g. ".onnx").
FILE_BACKENDS: dict[str, str] = {
    ".onnx": "ferlab.export.ort_backend:load_onnx_classifier",
    ".json": "ferlab.predict.ensemble:load_ensemble_file",
}


def save_checkpoint(path: str | Path, checkpoint: dict[str, Any]) -> Path:
    """Write `checkpoint` atomically (tmp file + os.replace): a crash never leaves a half-written file."""
    payload = {"format": FORMAT, "version": VERSION, **checkpoint}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def checkpoint_file(path: str | Path) -> Path:
    """The file a checkpoint path means: itself, or for a run directory its selected model (best.pt, else last.pt)."""
    p = Path(path)
    if p.is_dir():
        return p / "best.pt" if (p / "best.pt").is_file() else p / "last.pt"
    return p


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a ferlab checkpoint; CheckpointError if it is missing, unreadable, or not a ferlab checkpoint."""
    p = checkpoint_file(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}")
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile,
            KeyError, IndexError, TypeError, AttributeError) as err:  # torch's unpickler on arbitrary bytes
        first = torch_load_error_text(err)
        raise CheckpointError(f"cannot read checkpoint {p} (corrupt or not a ferlab checkpoint): "
                              f"{first[:200]}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{p} is not a ferlab checkpoint")
    if int(ckpt.get("version", 0)) > VERSION:
        raise CheckpointError(f"{p} was written by a newer ferlab (checkpoint version {ckpt['version']})")
    missing = [k for k in ("model_name", "classes") if k not in ckpt]
    if missing:
        raise CheckpointError(f"{p} lacks {', '.join(missing)}")
    size = ckpt.get("image_size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or not 8 <= size <= 1024):
        raise CheckpointError(f"{p} records image_size {size!r}; a model input is 8-1024 px (damaged checkpoint?)")
    ckpt.setdefault("path", str(p))
    return ckpt


def build_model(ckpt: dict[str, Any]) -> nn.Module:
    """The checkpoint's architecture with its weights, in eval mode."""
    from ferlab.errors import ModelError
    from ferlab.models import create_model

    if "model_state" not in ckpt:
        raise CheckpointError(f"checkpoint of '{ckpt['model_name']}' holds no torch weights (use load_classifier)")
    try:
        kwargs = dict(ckpt.get("model_kwargs") or {})
        model = create_model(ckpt["model_name"], num_classes=len(ckpt["classes"]), **kwargs)
        model.load_state_dict(ckpt["model_state"])
    except (ModelError, RuntimeError, TypeError) as err:
        raise CheckpointError(f"checkpoint weights do not fit model '{ckpt['model_name']}': "
                              f"{str(err).splitlines()[0][:200]}") from None
    return model.eval()


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """(model in eval mode, checkpoint dict) from a ferlab checkpoint file."""
    ckpt = load_checkpoint(path, map_location=map_location)
    return build_model(ckpt), ckpt


# ---- test-time augmentation on uint8 batches ----

def _flip_views(x: torch.Tensor) -> list[torch.Tensor]:
    return [x, x.flip(-1)]


def _crops(x: torch.Tensor, frac: float, where: str) -> list[torch.Tensor]:
    """Crops at `frac` of the side (centre only, or 4 corners + centre), resized back to the input size."""
    h, w = x.shape[-2:]
    ch, cw = max(int(round(h * frac)), 1), max(int(round(w * frac)), 1)
    centre = ((h - ch) // 2, (w - cw) // 2)
    offsets = [centre] if where == "centre" else [(0, 0), (0, w - cw), (h - ch, 0), (h - ch, w - cw), centre]
    crops = [x[..., y:y + ch, x0:x0 + cw] for y, x0 in offsets]
    return [F.interpolate(c.unsqueeze(1).float(), size=(h, w), mode="bilinear", align_corners=False,
                          antialias=False).squeeze(1).round().clamp(0, 255).to(torch.uint8) for c in crops]


def _flipcrop_views(x: torch.Tensor, frac: float = 0.9) -> list[torch.Tensor]:
    """The face and its centre crop at `frac` of the side, each with its mirror image: 4 views."""
    centre = _crops(x, frac, "centre")[0]
    return [x, x.flip(-1), centre, centre.flip(-1)]


def _tencrop_views(x: torch.Tensor, frac: float = 0.9) -> list[torch.Tensor]:
    """4 corner + centre crops at `frac` of the side, resized back, and their mirror images."""
    resized = _crops(x, frac, "all")
    return resized + [r.flip(-1) for r in resized]


#: tta name -> function(uint8 N x H x W tensor) -> list of views whose softmax outputs are averaged.
TTA_MODES: dict[str, Callable[[torch.Tensor], list[torch.Tensor]]] = {
    "none": lambda x: [x],
    "flip": _flip_views,
    "flipcrop": _flipcrop_views,
    "tencrop": _tencrop_views,
}


def tta_cost(tta: str) -> int:
    """Forward passes per face for a TTA mode (its number of views)."""
    return len(tta_views(torch.zeros(1, 8, 8, dtype=torch.uint8), tta))


def check_tta(tta: str) -> None:
    """CheckpointError for an unknown TTA mode (checked before any work)."""
    if tta not in TTA_MODES:
        raise CheckpointError(f"unknown test-time augmentation '{tta}'; choose from {', '.join(TTA_MODES)}")


def tta_views(images: torch.Tensor, tta: str) -> list[torch.Tensor]:
    check_tta(tta)
    return TTA_MODES[tta](images)


def flush_denormals() -> bool:
    """Treat subnormal floats as zero on this CPU (the process-wide x86 FTZ/DAZ flags). Trained nets without batch
    norm (simple_cnn, sequential_small) carry subnormal activations that make CPU inference about 12x slower
    (benchmarks/bench_denormals.py); values under 1.2e-38 change no probability. False where unsupported."""
    return bool(torch.set_flush_denormal(True))


def zero_subnormal_weights(model: nn.Module) -> int:
    """Set parameters and buffers under float32's smallest normal (1.2e-38) to exactly zero; returns how many.
    Adam leaves such weights in trained nets, and flush_denormals() covers only the calling thread, not torch's
    worker threads, so batched inference would still stall on them (benchmarks/bench_denormals.py)."""
    count = 0
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            if t.is_floating_point():
                tiny = (t != 0) & (t.abs() < torch.finfo(t.dtype).tiny)
                count += int(tiny.sum())
                t.masked_fill_(tiny, 0.0)
    return count


# Before torch starts its worker threads (they inherit the flag from the thread that creates them; set later, it
# reaches only the calling thread): every ferlab path that builds or loads a network imports this module first.
flush_denormals()


class Classifier:
    """Anything that maps aligned uint8 faces to class probabilities. Subclasses implement `_proba_batch`."""

    torch_model: nn.Module | None = None

    def __init__(self, classes: tuple[str, ...], model_name: str, image_size: int, info: dict[str, Any]) -> None:
        self.classes, self.model_name, self.image_size, self.info = tuple(classes), model_name, int(image_size), info

    def _proba_batch(self, images: torch.Tensor) -> np.ndarray:
        """uint8 N x H x W tensor (H = W = image_size) -> probabilities N x C."""
        raise NotImplementedError

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == self.image_size and x.shape[-2] == self.image_size:
            return x
        y = F.interpolate(x.unsqueeze(1).float(), size=(self.image_size, self.image_size), mode="bilinear",
                          align_corners=False, antialias=True)
        return y.squeeze(1).round().clamp(0, 255).to(torch.uint8)

    def predict_proba(self, images: np.ndarray, batch_size: int = 256, tta: str = "none") -> np.ndarray:
        """uint8 N x H x W faces -> N x C probabilities, TTA views averaged; resized to `image_size` if needed."""
        from ferlab.models.preprocess import face_batch

        arr = face_batch(images, CheckpointError)
        out = np.empty((len(arr), len(self.classes)), dtype=np.float32)
        check_tta(tta)
        for start in range(0, len(arr), batch_size):
            batch = self._resize(torch.from_numpy(np.ascontiguousarray(arr[start:start + batch_size])))
            views = tta_views(batch, tta)
            out[start:start + len(batch)] = np.mean([self._proba_batch(v) for v in views], axis=0)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model_name}, classes={list(self.classes)}, image_size={self.image_size})"


class TorchClassifier(Classifier):
    """A torch model from a ferlab checkpoint: channels_last, inference_mode, softmax."""

    def __init__(self, model: nn.Module, classes: tuple[str, ...], model_name: str, image_size: int,
                 info: dict[str, Any], device: str | torch.device = "cpu") -> None:
        super().__init__(classes, model_name, image_size, info)
        flush_denormals()
        zero_subnormal_weights(model)
        self.device = torch.device(device)
        self.torch_model = model.to(self.device, memory_format=torch.channels_last).eval()

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> TorchClassifier:
        model = build_model(ckpt)
        info = {k: v for k, v in ckpt.items() if k not in _WEIGHT_KEYS}
        size = int(ckpt.get("image_size") or model.ferlab_cfg.input_size[1])
        return cls(model, tuple(ckpt["classes"]), ckpt["model_name"], size, info)

    def _proba_batch(self, images: torch.Tensor) -> np.ndarray:
        from ferlab.models.preprocess import preprocess

        with torch.inference_mode():
            x = preprocess(images.to(self.device), self.torch_model.ferlab_cfg)
            logits = self.torch_model(x.contiguous(memory_format=torch.channels_last))
            return torch.softmax(logits.float(), dim=1).cpu().numpy()


def _resolve(spec: str) -> Callable[..., Classifier]:
    module, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def load_classifier(source: str | Path | dict[str, Any]) -> Classifier:
    """A Classifier from a checkpoint path (or run dir), a checkpoint dict, or a file a backend knows (.onnx)."""
    if isinstance(source, dict):
        ckpt = source
    else:
        path = Path(source)
        if path.suffix.lower() in FILE_BACKENDS:
            if not path.is_file():
                raise CheckpointError(f"model file not found: {path}")
            return _resolve(FILE_BACKENDS[path.suffix.lower()])(path)
        ckpt = load_checkpoint(path)
    for key, spec in CHECKPOINT_BACKENDS.items():
        if key in ckpt:
            return _resolve(spec)(ckpt)
    raise CheckpointError(f"checkpoint of '{ckpt.get('model_name', '?')}' holds neither torch weights nor an "
                          f"estimator that a known backend can load")
