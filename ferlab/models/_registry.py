"""Model registry: builders registered by decorator, created by name, each carrying its own ModelConfig.

Builders have the signature `(*, num_classes=7, in_chans=1, pretrained=None, input_size=48, **options)`.
They only ever see `pretrained="imagenet"` (the library's own download, for models whose config names a
`pretrained_source`); a local weights file is loaded by `create_model` after the build (`ferlab.models.weights`).
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import operator
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
    classifier: str = ""  # dotted path of the classification head (freshly initialised when fine-tuning)
    num_classes: int = 7
    pretrained_source: str = ""  # e.g. "torchvision:ResNet50_Weights.IMAGENET1K_V2" when weights exist
    description: str = ""
    channels_last_max_size: int | None = None  # largest input size where channels_last training is safe (None: any)


_BUILDERS: dict[str, Callable[..., nn.Module]] = {}
_CONFIGS: dict[str, ModelConfig] = {}
LIBRARY_WEIGHTS = "imagenet"  # the `pretrained=` value that asks a backbone for its library's download


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
    """The registered builder for `name`; an unknown name raises ModelError listing the close names."""
    _ensure_families_loaded()
    if name not in _BUILDERS:
        close = difflib.get_close_matches(name, list(_BUILDERS), n=4, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(sorted(_BUILDERS))}"
        raise ModelError(f"unknown model '{name}'{hint}")
    return _BUILDERS[name]


def get_model_config(name: str) -> ModelConfig:
    """The registered default config of `name` (1 channel, 7 classes)."""
    model_entrypoint(name)
    return _CONFIGS[name]


def _check_options(name: str, builder: Callable[..., nn.Module], kwargs: dict[str, Any]) -> None:
    """Unknown builder options are a user error (a one-line ModelError), not a TypeError traceback."""
    params = inspect.signature(builder).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    known = sorted(set(params) - {"num_classes", "in_chans", "pretrained"})
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        raise ModelError(f"model '{name}' has no option {', '.join(unknown)}; options: {', '.join(known) or 'none'}")


def _channel_stats(values: tuple[float, ...], in_chans: int) -> tuple[float, ...]:
    """Per-channel mean/std for `in_chans`; a 3-channel (RGB) statistic collapses to its average for 1 channel."""
    if len(values) == in_chans:
        return values
    return (round(sum(values) / len(values), 4),) * in_chans


def create_model(
    name: str, *, num_classes: int = 7, in_chans: int = 1, pretrained: str | None = None, **kwargs: Any
) -> nn.Module:
    """Build a registered model; `model.ferlab_cfg` holds its ModelConfig (with the actual classes/channels).

    `pretrained` is a local weights file (state dict or checkpoint, see `ferlab.models.weights.load_weights`) or
    "imagenet" for the library's download (network needed; only models with a `pretrained_source`).
    """
    builder = model_entrypoint(name)
    try:
        whole = not isinstance(num_classes, bool) and operator.index(num_classes) == num_classes  # numpy ints too
    except TypeError:
        whole = False
    if not whole or num_classes < 2:
        raise ModelError(f"a classifier needs a whole number of at least 2 classes, got {num_classes!r}")
    num_classes = int(num_classes)
    if in_chans < 1:
        raise ModelError(f"in_chans must be >= 1, got {in_chans}")
    _check_options(name, builder, kwargs)
    base = _CONFIGS[name]
    library = pretrained == LIBRARY_WEIGHTS
    if library and not base.pretrained_source:
        raise ModelError(f"model '{name}' has no library weights; pass a local weights file as pretrained")
    try:
        model = builder(num_classes=num_classes, in_chans=in_chans, pretrained=LIBRARY_WEIGHTS if library else None,
                        **kwargs)
    except (TypeError, ValueError) as err:  # an option of the right name but a value the layers refuse
        raise ModelError(f"model '{name}' cannot be built with options {kwargs}: {err}") from None
    size = kwargs.get("input_size", base.input_size[1])
    cfg = getattr(model, "ferlab_cfg", None) or replace(
        base, input_size=(in_chans, size, size), num_classes=num_classes,
        mean=_channel_stats(base.mean, in_chans), std=_channel_stats(base.std, in_chans),
    )
    model.ferlab_cfg = cfg
    if pretrained and not library:
        from ferlab.models.weights import load_weights

        load_weights(model, pretrained)
    return model
