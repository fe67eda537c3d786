"""Model registry: builders registered by decorator, created by name, each carrying its own ModelConfig."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from torch import nn

from ferlab.errors import ModelError

__all__ = ["ModelConfig", "register_model", "create_model", "list_models", "get_model_config", "model_entrypoint"]


@dataclass(frozen=True)
class ModelConfig:
    """What the data pipeline, explainers and exporters need to know about a model."""

    name: str
    family: str
    input_size: tuple[int, int, int] = (1, 48, 48)  # C, H, W
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)
    cam_layer: str = ""  # dotted module path of the layer Grad-CAM hooks (last conv block)
    first_conv: str = ""  # dotted path of the first conv (filter visualisation)
    classifier: str = ""  # dotted path of the final layer
    num_classes: int = 7
    pretrained_source: str = ""  # e.g. "torchvision:ResNet50_Weights.IMAGENET1K_V2" when weights exist
    description: str = ""


_BUILDERS: dict[str, Callable[..., nn.Module]] = {}
_CONFIGS: dict[str, ModelConfig] = {}


def register_model(**cfg: Any) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register `fn` under its own name with a default `ModelConfig(**cfg)`."""

    def decorator(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = fn.__name__
        if name in _BUILDERS:
            raise ValueError(f"model '{name}' registered twice")
        _BUILDERS[name] = fn
        _CONFIGS[name] = ModelConfig(name=name, description=(fn.__doc__ or "").strip().split("\n")[0], **cfg)
        return fn

    return decorator


def _ensure_families_loaded() -> None:
    import ferlab.models  # noqa: F401  (imports every family module, which registers its builders)


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style pattern, sorted."""
    _ensure_families_loaded()
    return sorted(n for n in _BUILDERS if fnmatch.fnmatch(n, pattern))


def model_entrypoint(name: str) -> Callable[..., nn.Module]:
    _ensure_families_loaded()
    if name not in _BUILDERS:
        close = difflib.get_close_matches(name, list(_BUILDERS), n=4, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(sorted(_BUILDERS))}"
        raise ModelError(f"unknown model '{name}'{hint}")
    return _BUILDERS[name]


def get_model_config(name: str) -> ModelConfig:
    model_entrypoint(name)
    return _CONFIGS[name]


def create_model(
    name: str, *, num_classes: int = 7, in_chans: int = 1, pretrained: str | None = None, **kwargs: Any
) -> nn.Module:
    """Build a registered model; `model.ferlab_cfg` holds its ModelConfig (with the actual classes/channels)."""
    builder = model_entrypoint(name)
    if num_classes < 2:
        raise ModelError(f"a classifier needs at least 2 classes, got {num_classes}")
    model = builder(num_classes=num_classes, in_chans=in_chans, pretrained=pretrained, **kwargs)
    base = _CONFIGS[name]
    size = kwargs.get("input_size", base.input_size[1])
    mean = base.mean if len(base.mean) == in_chans else (base.mean[0],) * in_chans
    std = base.std if len(base.std) == in_chans else (base.std[0],) * in_chans
    cfg = getattr(model, "ferlab_cfg", None) or replace(
        base, input_size=(in_chans, size, size), num_classes=num_classes, mean=mean, std=std
    )
    model.ferlab_cfg = cfg
    return model
