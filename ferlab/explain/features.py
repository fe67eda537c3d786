"""Look inside a network: its first-layer filters as a picture, and per-layer activation maps for one face.

Works for every registry model through its ModelConfig (`first_conv`, `cam_layer`). Families with named
channels register them in `FAMILY_FEATURES`: `cbam_resnet`'s hand-crafted facial kernels (`stem.facial`, see
`ferlab.models.cbam.FACIAL_KERNEL_NAMES`) are shown and labelled by name, next to its learned stem filters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ferlab.errors import ConfigError, ModelError

__all__ = ["FilterBank", "FamilyFeatures", "FAMILY_FEATURES", "first_layer_filters", "default_layers",
           "activation_maps", "filters_png", "activations_png", "write_features"]


@dataclass(frozen=True)
class FilterBank:
    """Filters of one conv layer, summed over input channels (what a grayscale face sees): K x kh x kw."""

    layer: str
    weights: np.ndarray
    names: tuple[str, ...]


@dataclass(frozen=True)
class FamilyFeatures:
    """Where a family's first-layer filters live and which layers' channels have names."""

    filter_layers: Callable[[nn.Module], list[str]]
    channel_names: Callable[[], dict[str, tuple[str, ...]]] = field(default=lambda: {})


def _cbam_names() -> dict[str, tuple[str, ...]]:
    from ferlab.models.cbam import FACIAL_KERNEL_NAMES

    return {"stem.facial": FACIAL_KERNEL_NAMES}


#: model family -> its first-layer filter layers and named channels; other families use `first_conv` alone.
FAMILY_FEATURES: dict[str, FamilyFeatures] = {
    "cbam": FamilyFeatures(lambda model: ["stem.facial", "stem.learned"], _cbam_names),
}


def _family(model: nn.Module) -> FamilyFeatures:
    cfg = _cfg(model)
    return FAMILY_FEATURES.get(cfg.family, FamilyFeatures(lambda m: [_cfg(m).first_conv]))


def _cfg(model: nn.Module):  # noqa: ANN202 - ModelConfig
    cfg = getattr(model, "ferlab_cfg", None)
    if cfg is None:
        raise ModelError(f"{type(model).__name__} is not a ferlab model (no ferlab_cfg)")
    return cfg


def _module(model: nn.Module, path: str) -> nn.Module:
    try:
        return model.get_submodule(path)
    except AttributeError:
        raise ModelError(f"model '{_cfg(model).name}' has no layer '{path}'") from None


def first_layer_filters(model: nn.Module, *, max_filters: int = 64) -> list[FilterBank]:
    """The first conv layer(s)' filters; named filters keep their order, unnamed ones are sorted by L2 norm."""
    cfg = _cfg(model)
    paths = [p for p in _family(model).filter_layers(model) if p]
    if not paths:
        raise ModelError(f"model '{cfg.name}' declares no first conv layer to show")
    names = _family(model).channel_names()
    banks, left = [], max_filters
    for path in paths:
        weight = getattr(_module(model, path), "weight", None)
        if weight is None or weight.ndim != 4:
            raise ModelError(f"layer '{path}' of model '{cfg.name}' is not a 2-D convolution")
        w = weight.detach().float().sum(dim=1).cpu().numpy()  # K x kh x kw
        if path in names:
            labels = tuple(names[path])[:len(w)]
            order = np.arange(len(labels))
        else:
            order = np.argsort(-np.linalg.norm(w.reshape(len(w), -1), axis=1), kind="stable")
            labels = tuple(f"{path}[{k}]" for k in order)
        keep = order[:left]
        if len(keep):
            banks.append(FilterBank(path, w[keep], labels[:len(keep)]))
        left -= len(keep)
    return banks


def _conv_children(model: nn.Module, parent_path: str, cam: str) -> list[str]:
    """Children of `parent_path` holding a conv, up to the one that contains the CAM layer (replaced by it)."""
    parent = _module(model, parent_path) if parent_path else model
    out = []
    for name, child in parent.named_children():
        path = f"{parent_path}.{name}" if parent_path else name
        if path == cam or cam.startswith(path + "."):
            return [*out, cam]
        if any(isinstance(m, nn.Conv2d) for m in child.modules()):
            out.append(path)
    return out


def default_layers(model: nn.Module, *, max_layers: int = 6) -> list[str]:
    """First conv, then the network's stages up to the CAM layer (the CAM layer's ancestor with the most conv
    children), evenly thinned to `max_layers`."""
    cfg = _cfg(model)
    stages: list[str] = []
    if cfg.cam_layer:
        parts = cfg.cam_layer.split(".")
        for depth in range(len(parts) - 1, -1, -1):  # deepest ancestor first: ties keep the finer split
            found = _conv_children(model, ".".join(parts[:depth]), cfg.cam_layer)
            if len(found) > len(stages):
                stages = found
    first = [cfg.first_conv] if cfg.first_conv else []
    layers = first + [p for p in stages if p not in first and not cfg.first_conv.startswith(p + ".")]
    if len(layers) > max_layers:  # keep the first and the last, thin the middle evenly
        picks = np.linspace(0, len(layers) - 1, num=max_layers).round().astype(int)
        layers = [layers[i] for i in sorted(set(picks.tolist()))]
    return layers


def activation_maps(model: nn.Module, x: torch.Tensor, layers: Sequence[str]) -> dict[str, np.ndarray]:
    """layer -> C x h x w activations of the first face of batch x (layers without a spatial output are skipped)."""
    captured: dict[str, torch.Tensor] = {}
    handles = []

    def hook(name: str) -> Callable:
        def fn(_module: nn.Module, _inputs: object, output: object) -> None:
            out = output[0] if isinstance(output, tuple | list) else output
            if isinstance(out, torch.Tensor) and out.ndim == 4:
                captured[name] = out.detach()

        return fn

    for path in layers:
        handles.append(_module(model, path).register_forward_hook(hook(path)))
    try:
        model.eval()
        with torch.inference_mode():
            model(x[:1])
    finally:
        for h in handles:
            h.remove()
    return {path: captured[path][0].float().cpu().numpy() for path in layers if path in captured}


def _figure(width: float, height: float):  # noqa: ANN202
    from ferlab.evaluate.plots import _figure as figure

    return figure(width, height)


def filters_png(banks: Sequence[FilterBank], *, ncols: int = 10, title: str = "") -> bytes:
    """Grid of filters (blue negative, red positive, each scaled to its own maximum), captioned; one block per layer."""
    from ferlab.evaluate.plots import _png

    rows_per_bank = [-(-len(b.weights) // ncols) for b in banks]
    nrows = max(sum(rows_per_bank), 1)
    fig = _figure(1.25 * ncols, 1.45 * nrows + 0.6)
    row = 0
    for bank, nr in zip(banks, rows_per_bank, strict=True):
        for k, (w, name) in enumerate(zip(bank.weights, bank.names, strict=True)):
            ax = fig.add_subplot(nrows, ncols, (row + k // ncols) * ncols + k % ncols + 1)
            peak = float(np.abs(w).max()) or 1.0
            ax.imshow(w, cmap="RdBu_r", vmin=-peak, vmax=peak, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(name, fontsize=6)
            if k == 0:
                ax.set_ylabel(bank.layer, fontsize=7)
        row += nr
    fig.suptitle(title or "first-layer filters (red +, blue -)", fontsize=10)
    return _png(fig)


def activations_png(face: np.ndarray, acts: dict[str, np.ndarray], *, top_k: int = 8,
                    channel_names: dict[str, tuple[str, ...]] | None = None, title: str = "") -> bytes:
    """Rows: layers; first column the face, then its named channels or the top-k channels by mean |activation|."""
    from ferlab.evaluate.plots import _png

    names = channel_names or {}
    picks: dict[str, list[tuple[int, str]]] = {}
    for layer, a in acts.items():
        if layer in names:
            picks[layer] = [(k, n) for k, n in enumerate(names[layer][:len(a)])]
        else:
            strength = np.abs(a).reshape(len(a), -1).mean(axis=1)
            picks[layer] = [(int(k), f"ch {int(k)}") for k in np.argsort(-strength, kind="stable")[:top_k]]
    ncols = 1 + max((len(p) for p in picks.values()), default=0)
    nrows = max(len(acts), 1)
    fig = _figure(1.3 * ncols, 1.5 * nrows + 0.6)
    for r, (layer, a) in enumerate(acts.items()):
        ax = fig.add_subplot(nrows, ncols, r * ncols + 1)
        ax.imshow(face, cmap="gray", vmin=0, vmax=255)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(f"{layer}\n{a.shape[0]}x{a.shape[1]}x{a.shape[2]}", fontsize=7)
        for c, (k, label) in enumerate(picks[layer]):
            ax = fig.add_subplot(nrows, ncols, r * ncols + c + 2)
            ax.imshow(a[k], cmap="viridis", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(label, fontsize=6)
    if not acts:
        fig.text(0.5, 0.5, "no layer produced a spatial map", ha="center")
    fig.suptitle(title or "activation maps per layer (each map scaled to its own range)", fontsize=10)
    return _png(fig)


def write_features(model: nn.Module, face: np.ndarray, out_dir: str | Path, stem: str, *,
                   layers: Sequence[str] | None = None, top_k: int = 8) -> dict[str, Path]:
    """Write `<stem>.filters.png` and `<stem>.activations.png` for an aligned uint8 face; returns name -> path."""
    from ferlab.io import atomic_write_bytes
    from ferlab.models.preprocess import preprocess

    cfg = _cfg(model)
    face = np.asarray(face)
    if face.ndim != 2:
        raise ConfigError(f"expected one grayscale face H x W, got shape {face.shape}")
    chosen = list(layers) if layers else default_layers(model)
    x = preprocess(torch.from_numpy(np.ascontiguousarray(face, dtype=np.uint8))[None], cfg).contiguous()
    acts = activation_maps(model, x, chosen)
    out = Path(out_dir)
    paths = {"filters": out / f"{stem}.filters.png", "activations": out / f"{stem}.activations.png"}
    atomic_write_bytes(paths["filters"], filters_png(first_layer_filters(model),
                                                     title=f"{cfg.name}: first-layer filters (red +, blue -)"))
    atomic_write_bytes(paths["activations"], activations_png(face, acts, top_k=top_k,
                                                             channel_names=_family(model).channel_names(),
                                                             title=f"{cfg.name}: activation maps per layer"))
    return paths
