"""uint8 face batches -> normalised float tensors, as every model's ModelConfig says."""

from __future__ import annotations

import numpy as np
import torch

from ferlab.errors import ConfigError, FerlabError
from ferlab.models._registry import ModelConfig

__all__ = ["face_batch", "preprocess"]


def face_batch(images: object, error: type[FerlabError] = ConfigError) -> np.ndarray:
    """Grayscale faces as uint8 N x H x W: one face (H x W) gets a batch axis, float faces in [0, 1] are scaled to
    0-255 as `Predictor` scales photos, 16-bit values are shifted (>> 8); other values are clipped.

    A single colour image (H x W x 3/4) is refused: read as a batch it became H faces of W x 3 pixels.
    """
    arr = np.asarray(images)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim == 3 and arr.shape[-1] in (3, 4) and arr.shape[1] > 4:
        raise error(f"got one colour image of shape {arr.shape}; pass grayscale faces N x H x W "
                    "(ferlab.predict.faces.to_gray converts one)")
    if arr.ndim != 3 or len(arr) == 0 or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise error(f"expected grayscale faces N x H x W (uint8), got shape {arr.shape} of dtype {arr.dtype}")
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype in (np.uint16, np.int32, np.uint32) and arr.min() >= 0 and 255 < arr.max() <= 65535:
        return (arr.astype(np.uint32) >> 8).astype(np.uint8)
    floating = np.issubdtype(arr.dtype, np.floating)
    arr = np.nan_to_num(arr.astype(np.float64))
    if floating and arr.max() <= 1.0:
        arr = arr * 255.0
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


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
