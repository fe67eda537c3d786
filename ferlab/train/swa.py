"""Stochastic weight averaging (Izmailov et al., 2018): the running mean of the weights over a run's last epochs.

Why: averaging the weights a constant or slowly decaying learning rate visits lands in a flatter region of the loss
than any single epoch's weights, which usually generalises better, and the result is one model, so inference costs
nothing more (unlike an ensemble of the same snapshots). The averaged model gets its batch-norm statistics
recomputed on training batches and is scored on validation like any epoch: it becomes best.pt only if it wins there.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, update_bn

from ferlab.data.augment import augment_batch
from ferlab.train.engine import StepSettings, autocast, normalise, unwrap

__all__ = ["WeightAverage", "averages_epoch"]


def averages_epoch(epoch: int, epochs: int, swa_epochs: int) -> bool:
    """Does the average take in the weights at the end of (1-based) `epoch`? Yes for the last `swa_epochs`."""
    return swa_epochs > 0 and epoch > epochs - swa_epochs


class WeightAverage:
    """The equal-weight mean of a model's parameters over the epochs it is updated at (torch's AveragedModel)."""

    def __init__(self, model: nn.Module) -> None:
        self.averaged = AveragedModel(unwrap(model), use_buffers=False)

    @property
    def count(self) -> int:
        """How many weight snapshots the mean holds."""
        return int(self.averaged.n_averaged)

    @property
    def model(self) -> nn.Module:
        """The averaged network itself (same class and state-dict keys as the trained model)."""
        return self.averaged.module

    def update(self, model: nn.Module) -> None:
        self.averaged.update_parameters(unwrap(model))

    def state_dict(self) -> dict[str, Any]:
        return self.averaged.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.averaged.load_state_dict(state)

    def recompute_batchnorm(self, images: torch.Tensor, settings: StepSettings, gen: torch.Generator, *,
                            batch_size: int) -> None:
        """Batch-norm running statistics of the averaged weights from one augmented pass over the training images
        (the averaged weights never saw the statistics the last epoch left behind)."""
        device = torch.device(settings.device)

        def batches() -> Iterator[torch.Tensor]:
            order = torch.randperm(len(images), generator=gen)
            for lo in range(0, len(order) - 1, batch_size):
                x = augment_batch(images[order[lo:lo + batch_size]].to(device), settings.augment, gen)
                yield normalise(x, settings)

        with torch.no_grad(), autocast(settings):
            update_bn(batches(), self.model)
