"""Load a local weights file into a registry model: ferlab checkpoints, plain state dicts, library (ImageNet) files."""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from ferlab.errors import ModelError
from ferlab.io import torch_load_error_text

__all__ = ["load_weights", "read_state_dict", "adapt_first_conv_weight"]

_NESTED_KEYS = ("model_state", "state_dict", "model")  # ferlab checkpoint, lightning/timm-train, misc


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensor dict inside a weights file (a state dict, or a checkpoint that nests one); DDP's `module.` dropped."""
    file = Path(path)
    if not file.is_file():
        raise ModelError(f"weights file not found: {file}")
    try:
        obj = torch.load(file, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError) as err:
        raise ModelError(f"cannot read weights file {file} (corrupt or not a weights file: "
                         f"{torch_load_error_text(err)})") from None
    for key in _NESTED_KEYS:
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelError(f"{file} holds no state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def adapt_first_conv_weight(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """RGB first-conv weights for `in_chans` inputs: summed for grayscale (a gray image repeated 3x gives the same
    response), tiled and rescaled otherwise."""
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    reps = -(-in_chans // weight.shape[1])
    return weight.repeat(1, reps, 1, 1)[:, :in_chans] * (weight.shape[1] / in_chans)


def _under(key: str, prefix: str) -> bool:
    return bool(prefix) and (key == prefix or key.startswith(prefix + "."))


def load_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load `path` into `model` (in place) and return it.

    Every backbone tensor must match. Tolerated, so library files (e.g. torchvision's ImageNet `.pth`) load into
    a FER-sized model: a classification head of another size (kept freshly initialised), an RGB first conv for a
    grayscale model (adapted), and keys lacking the model's `weights_prefix` (the wrapper's own attribute name).
    """
    cfg = getattr(model, "ferlab_cfg", None)
    head = cfg.classifier if cfg else ""
    first = (cfg.first_conv + ".weight") if cfg and cfg.first_conv else ""
    source = read_state_dict(path)
    prefix = getattr(model, "weights_prefix", "")
    if prefix and not any(k.startswith(prefix) for k in source):
        source = {prefix + k: v for k, v in source.items()}
    target = model.state_dict()
    loaded: dict[str, torch.Tensor] = {}
    problems: list[str] = []
    for key, value in source.items():
        if key not in target:
            if not _under(key, head):
                problems.append(f"unexpected {key}")
            continue
        want = target[key].shape
        if value.shape == want:
            loaded[key] = value
        elif key == first and value.ndim == 4 and value.shape[0] == want[0] and value.shape[2:] == want[2:]:
            loaded[key] = adapt_first_conv_weight(value, want[1])
        elif not _under(key, head):
            problems.append(f"{key} has shape {tuple(value.shape)}, model wants {tuple(want)}")
    problems += [f"missing {k}" for k in target if k not in loaded and not _under(k, head)]
    if problems:
        name = cfg.name if cfg else type(model).__name__
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ModelError(f"weights in {path} do not fit model '{name}': {'; '.join(problems[:3])}{more}")
    model.load_state_dict(loaded, strict=False)
    return model
