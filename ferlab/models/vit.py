"""A small Vision Transformer for 48x48 faces (timm's VisionTransformer, trained from scratch)."""

from __future__ import annotations

import torch
from torch import nn

from ferlab.errors import ModelError
from ferlab.models._registry import register_model

__all__ = ["vit_tiny_fer", "TokensToMap", "ViTFer"]


class TokensToMap(nn.Module):
    """N x L x D patch tokens -> N x D x h x w map, so Grad-CAM hooks it like a conv layer (no reshape hook)."""

    def __init__(self, grid: int) -> None:
        super().__init__()
        self.grid = grid

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        n, length, dim = tokens.shape
        return tokens.transpose(1, 2).reshape(n, dim, self.grid, length // self.grid)


class ViTFer(nn.Module):
    """timm ViT body without class token; patch tokens become a map, then global average pool + linear head."""

    def __init__(self, *, num_classes: int, in_chans: int, input_size: int, patch_size: int, embed_dim: int,
                 depth: int, num_heads: int, dropout: float, drop_path: float) -> None:
        super().__init__()
        from timm.models.vision_transformer import VisionTransformer

        if input_size % patch_size:
            raise ModelError(f"vit_tiny_fer: input_size {input_size} is not a multiple of patch_size {patch_size}")
        self.body = VisionTransformer(
            img_size=input_size, patch_size=patch_size, in_chans=in_chans, num_classes=0, global_pool="",
            class_token=False, embed_dim=embed_dim, depth=depth, num_heads=num_heads, drop_path_rate=drop_path,
        )
        self.to_map = TokensToMap(input_size // patch_size)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout))
        self.classifier = nn.Linear(embed_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.to_map(self.body.forward_features(x))))


@register_model(family="vit", cam_layer="to_map", first_conv="body.patch_embed.proj", classifier="classifier")
def vit_tiny_fer(*, num_classes: int = 7, in_chans: int = 1, pretrained: str | None = None, input_size: int = 48,
                 patch_size: int = 6, embed_dim: int = 192, depth: int = 6, num_heads: int = 3,
                 dropout: float = 0.1, drop_path: float = 0.1) -> nn.Module:
    """ViT-Tiny-style transformer for 48x48 (patch 6 -> 8x8 tokens, dim 192, depth 6, 3 heads), from scratch."""
    return ViTFer(num_classes=num_classes, in_chans=in_chans, input_size=input_size, patch_size=patch_size,
                  embed_dim=embed_dim, depth=depth, num_heads=num_heads, dropout=dropout, drop_path=drop_path)
