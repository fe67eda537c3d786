"""uint8 face batches -> normalised float tensors, as every model's ModelConfig says."""

from __future__ import annotations

import torch

from ferlab.models._registry import ModelConfig

__all__ = ["preprocess"]


def preprocess(images: torch.Tensor, cfg: ModelConfig) -> torch.Tensor:
    """uint8 (N x H x W or N x 1 x H x W) -> float N x C x H x W scaled to [0, 1] then normalised by cfg.mean/std.

    Grayscale input is repeated to `cfg.input_size[0]` channels (ImageNet backbones take 3).
    """
    x = images if images.ndim == 4 else images.unsqueeze(1)
    x = x.float().div_(255.0)
    chans = cfg.input_size[0]
    if x.shape[1] != chans:
        x = x.expand(-1, chans, -1, -1)
    mean = torch.tensor(cfg.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(cfg.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - mean) / std
