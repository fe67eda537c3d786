"""Model size and cost: parameter counts and forward FLOPs counted by torch's own FlopCounterMode."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_params", "mflops"]


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with requires_grad)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@torch.no_grad()
def mflops(model: nn.Module, input_size: Sequence[int]) -> float:
    """Forward MFLOPs for one C x H x W image, FLOPs = 2 x multiply-adds (FlopCounterMode's convention).

    Counts convolutions and matrix products (BN, activations, pooling are not counted), the usual convention
    of papers and of ENVIRONMENT.md (3-conv 32/64/128 CNN on 1x48x48: ~45 MFLOPs).
    """
    was_training = model.training
    model.eval()
    try:
        x = torch.zeros(1, *input_size)
        with FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() / 1e6
