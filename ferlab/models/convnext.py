"""A small ConvNeXt for 48x48 faces (timm's ConvNeXt with a 2x2 patchify stem and narrow stages)."""

from __future__ import annotations

from torch import nn

from ferlab.errors import ModelError
from ferlab.models._registry import register_model

__all__ = ["convnext_fer"]


@register_model(family="convnext", cam_layer="stages.2", first_conv="stem.0", classifier="head.fc")
def convnext_fer(*, num_classes: int = 7, in_chans: int = 1, pretrained: str | None = None, input_size: int = 48,
                 dims: tuple[int, ...] = (48, 96, 192, 384), depths: tuple[int, ...] = (2, 2, 6, 2),
                 dropout: float = 0.1, drop_path: float = 0.1) -> nn.Module:
    """ConvNeXt-style net (2x2 patch stem, 7x7 depthwise blocks, LayerNorm, inverted MLP, GELU): 24->12->6->3."""
    from timm.models.convnext import ConvNeXt

    if len(dims) != len(depths):
        raise ModelError(f"convnext_fer: dims {dims} and depths {depths} must have the same length")
    return ConvNeXt(in_chans=in_chans, num_classes=num_classes, dims=tuple(dims), depths=tuple(depths),
                    patch_size=2, drop_rate=dropout, drop_path_rate=drop_path)
