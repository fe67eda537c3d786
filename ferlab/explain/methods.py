"""Attribution methods by name: CAM family from pytorch-grad-cam, occlusion and integrated gradients from captum.

Every method maps (model, preprocessed batch N x C x H x W, target class indices N) to a raw, non-negative
attribution map N x H x W; `normalise` scales each map to [0, 1] for display.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ferlab.errors import ConfigError, ModelError

__all__ = [
    "AttributionMethod",
    "register_method",
    "unregister_method",
    "list_methods",
    "get_method",
    "cam_layer",
    "attribute",
    "normalise",
]

AttributionFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], np.ndarray]


@dataclass(frozen=True)
class AttributionMethod:
    """A named attribution method; `needs_cam_layer` ones hook `model.ferlab_cfg.cam_layer`."""

    name: str
    fn: AttributionFn
    needs_cam_layer: bool
    description: str


_METHODS: dict[str, AttributionMethod] = {}


def register_method(name: str, *, needs_cam_layer: bool = False) -> Callable[[AttributionFn], AttributionFn]:
    """Register `fn(model, x, targets) -> raw N x H x W` under `name`."""

    def decorator(fn: AttributionFn) -> AttributionFn:
        if name in _METHODS:
            raise ValueError(f"attribution method '{name}' registered twice")
        doc = (fn.__doc__ or "").strip().split("\n")[0]
        _METHODS[name] = AttributionMethod(name, fn, needs_cam_layer, doc)
        return fn

    return decorator


def unregister_method(name: str) -> None:
    """Remove a method (tests register throw-away ones)."""
    _METHODS.pop(name, None)


def list_methods() -> list[str]:
    """Registered method names, in registration order."""
    return list(_METHODS)


def get_method(name: str) -> AttributionMethod:
    if name not in _METHODS:
        raise ConfigError(f"unknown explanation method '{name}'; choose from {', '.join(_METHODS)}")
    return _METHODS[name]


def cam_layer(model: nn.Module) -> nn.Module:
    """The module named by `model.ferlab_cfg.cam_layer`; ModelError when the model has none usable."""
    cfg = getattr(model, "ferlab_cfg", None)
    name = getattr(cfg, "cam_layer", "") if cfg is not None else ""
    model_name = getattr(cfg, "name", type(model).__name__)
    if not name:
        raise ModelError(f"model '{model_name}' declares no CAM layer; use --method occlusion or ig")
    try:
        layer = model.get_submodule(name)
    except AttributeError as err:
        raise ModelError(f"model '{model_name}': CAM layer '{name}' does not exist ({err})") from None
    return layer


@contextlib.contextmanager
def _contiguous_weights(model: nn.Module) -> Iterator[None]:
    """Run a backward pass on standard-layout weights, then give inference back its channels_last ones: torch 2.14's
    CPU backward through channels_last mini_xception corrupts memory (odd batches at 48 px, any batch at 64-96 px)."""
    channels_last = any(p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last)
                        and not p.is_contiguous() for p in model.parameters())
    if not channels_last:
        yield
        return
    model.to(memory_format=torch.contiguous_format)
    try:
        yield
    finally:
        model.to(memory_format=torch.channels_last)


def attribute(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, method: str = "gradcam") -> np.ndarray:
    """Raw non-negative attribution maps N x H x W of `targets` (class indices) for a preprocessed batch."""
    spec = get_method(method)
    if spec.needs_cam_layer:
        cam_layer(model)
    model.eval()
    n = x.shape[0]
    x, targets = x.detach().clone().contiguous(), targets.detach().long().cpu()
    with torch.enable_grad(), _contiguous_weights(model):
        raw = spec.fn(model, x, targets)
    raw = np.nan_to_num(np.asarray(raw, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if raw.shape != (n, *x.shape[-2:]):
        raise RuntimeError(f"method '{method}' returned shape {raw.shape}, expected {(n, *x.shape[-2:])}")
    return np.clip(raw, 0.0, None)


def normalise(raw: np.ndarray) -> np.ndarray:
    """Each map divided by its maximum (so 0 stays 0 and the hottest pixel is 1); all-zero maps stay 0."""
    raw = np.clip(np.asarray(raw, dtype=np.float32), 0.0, None)
    peak = raw.reshape(len(raw), -1).max(axis=1).reshape(-1, 1, 1)
    return np.divide(raw, peak, out=np.zeros_like(raw), where=peak > 0)


# ---- CAM family (pytorch-grad-cam) -------------------------------------------------------------------------


class _RawCamMixin:
    """Keep the ReLU'd CAM at input resolution *before* pytorch-grad-cam's per-image min-max scaling.

    Region shares need the raw map: min-max scaling shifts mass between regions.
    """

    def compute_cam_per_layer(self, input_tensor, targets, eigen_smooth):  # noqa: ANN001, ANN201
        acts = [a.cpu().numpy() for a in self.activations_and_grads.activations]
        grads = [g.cpu().numpy() for g in self.activations_and_grads.gradients]
        size = tuple(input_tensor.shape[-2:])
        out = []
        for i, layer in enumerate(self.target_layers):
            cam = self.get_cam_image(input_tensor, layer, targets, acts[i] if i < len(acts) else None,
                                     grads[i] if i < len(grads) else None, eigen_smooth)
            cam = torch.from_numpy(np.maximum(np.asarray(cam, dtype=np.float32), 0))[:, None]
            out.append(nn.functional.interpolate(cam, size=size, mode="bilinear", align_corners=False).numpy())
        return out

    def aggregate_multi_layers(self, cam_per_target_layer):  # noqa: ANN001, ANN201
        return np.mean(np.concatenate(cam_per_target_layer, axis=1), axis=1)


@contextlib.contextmanager
def _quiet_stderr():
    """pytorch-grad-cam's ScoreCAM draws a tqdm bar per image; keep stderr for our own progress bar."""
    with contextlib.redirect_stderr(io.StringIO()):
        yield


def _run_cam(cam_class: type, model: nn.Module, x: torch.Tensor, targets: torch.Tensor, **attrs: object) -> np.ndarray:
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    raw_class = type(f"Raw{cam_class.__name__}", (_RawCamMixin, cam_class), {})
    cam = raw_class(model=model, target_layers=[cam_layer(model)])
    for key, value in attrs.items():
        setattr(cam, key, value)
    try:  # release() in finally: the hooks never outlive the call, even on error
        x = x.requires_grad_(True)  # gradients reach the CAM layer even when the weights are frozen
        with _quiet_stderr():
            return cam(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in targets])
    finally:
        cam.activations_and_grads.release()


@register_method("gradcam", needs_cam_layer=True)
def _gradcam(model: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017): CAM-layer activations weighted by their mean gradient."""
    from pytorch_grad_cam import GradCAM

    return _run_cam(GradCAM, model, x, targets)


@register_method("gradcam++", needs_cam_layer=True)
def _gradcam_pp(model: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """Grad-CAM++ (Chattopadhay et al. 2018): higher-order gradient weights, better for several instances."""
    from pytorch_grad_cam import GradCAMPlusPlus

    return _run_cam(GradCAMPlusPlus, model, x, targets)


@register_method("scorecam", needs_cam_layer=True)
def _scorecam(model: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """Score-CAM (Wang et al. 2020): gradient-free, each activation map weighted by the score it alone yields."""
    from pytorch_grad_cam import ScoreCAM

    return _run_cam(ScoreCAM, model, x, targets, batch_size=128)


# ---- perturbation and path methods (captum) ----------------------------------------------------------------


@register_method("occlusion")
def _occlusion(model: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """Occlusion (Zeiler & Fergus 2014): score drop when a sliding grey patch (1/8 of the side) hides a spot."""
    from captum.attr import Occlusion

    chans, side = x.shape[1], x.shape[-1]
    window = max(side // 8, 2)
    stride = max(window // 2, 1)
    attr = Occlusion(model).attribute(
        x, sliding_window_shapes=(chans, window, window), strides=(chans, stride, stride), target=targets,
        baselines=0.0, perturbations_per_eval=64,
    )
    return attr.sum(dim=1).detach().cpu().numpy()


@register_method("ig")
def _integrated_gradients(model: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """Integrated gradients (Sundararajan et al. 2017) from the normalisation-mean (grey) image, 32 steps."""
    from captum.attr import IntegratedGradients

    attr = IntegratedGradients(model).attribute(
        x, baselines=torch.zeros_like(x), target=targets, n_steps=32, internal_batch_size=256
    )
    return attr.sum(dim=1).detach().cpu().numpy()
