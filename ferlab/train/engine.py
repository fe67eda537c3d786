"""One epoch of training or evaluation on uint8 tensors in memory; each function returns a metric dict."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ferlab.data.augment import AugmentConfig, augment_batch
from ferlab.train.mixing import mix_batch

if TYPE_CHECKING:
    from ferlab.train.distill import Distiller

__all__ = ["StepSettings", "derived_generator", "epoch_indices", "normalise", "train_one_epoch", "evaluate",
           "unwrap"]


@dataclass(frozen=True)
class StepSettings:
    """What a training step needs besides the model: preprocessing, augmentation, mixing, loss, clipping."""

    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    in_chans: int = 1
    augment: AugmentConfig = AugmentConfig()
    mixup: float = 0.0
    cutmix: float = 0.0
    grad_clip: float | None = None
    channels_last: bool = True
    device: str = "cpu"
    precision: str = "fp32"  # a key of PRECISIONS


PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16}
"""Training precisions: None runs plain fp32; a dtype runs the forward pass under autocast to it (weights,
gradients and the loss stay fp32). bf16 doubles training speed on CPUs with AMX (docs/benchmarks.md)."""


def autocast(settings: StepSettings) -> contextlib.AbstractContextManager:
    """The forward-pass context for `settings.precision` (a no-op for fp32)."""
    dtype = PRECISIONS[settings.precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(settings.device).type, dtype=dtype)


def derived_generator(seed: int, *keys: int) -> torch.Generator:
    """A CPU generator seeded from (seed, *keys): every epoch/rank/stream gets its own reproducible stream."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *[int(k) for k in keys]]).generate_state(2)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def epoch_indices(order: torch.Tensor, rank: int = 0, world: int = 1) -> torch.Tensor:
    """This rank's share of an epoch's sample order, padded (by wrapping) so every rank gets as many."""
    if world == 1:
        return order
    per_rank = -(-len(order) // world)
    padded = torch.cat([order, order[: per_rank * world - len(order)]])
    return padded[rank::world]


def normalise(x: torch.Tensor, s: StepSettings) -> torch.Tensor:
    """Float [0, 1] N x 1 x H x W -> model input (channels repeated, mean/std applied, memory format)."""
    if x.shape[1] != s.in_chans:
        x = x.expand(-1, s.in_chans, -1, -1)
    mean = torch.tensor(s.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(s.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    x = (x - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if s.channels_last else x.contiguous()


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper (or the model itself)."""
    return getattr(model, "module", model)


def _batches(n: int, batch_size: int) -> list[tuple[int, int]]:
    """Full batches only (the epoch's order changes, so every sample still gets its turn): a short last batch
    breaks batch norm at size 1, and odd sizes crash torch 2.14's CPU backward of some channels_last strided
    1x1 convolutions (e.g. mini_xception's shortcuts) when two threads run, so a set smaller than one batch
    trains on an even number of its images (TrainConfig refuses odd batch sizes)."""
    if n <= batch_size:
        even = n - n % 2
        return [(0, even)] if even >= 2 else []
    return [(s, s + batch_size) for s in range(0, n - batch_size + 1, batch_size)]


def train_one_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule,  # noqa: ANN001 - ferlab.train.optim.Schedule (kept loose to avoid a cycle)
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    labels: torch.Tensor,
    order: torch.Tensor,
    settings: StepSettings,
    gen: torch.Generator,
    *,
    batch_size: int,
    on_batch: Callable[[int, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    distiller: Distiller | None = None,
) -> dict[str, float]:
    """One pass over `order` (indices into images/labels), with a teacher's soft targets blended into the loss when
    `distiller` is given. Returns loss, accuracy, images, seconds, stopped."""
    model.train()
    device = torch.device(settings.device)
    regularizer = getattr(unwrap(model), "regularization_loss", None)
    total_loss = torch.zeros((), dtype=torch.float64)
    correct = torch.zeros((), dtype=torch.int64)
    seen, stopped, start = 0, False, time.perf_counter()
    for lo, hi in _batches(len(order), batch_size):
        idx = order[lo:hi]
        y = labels[idx].to(device, non_blocking=True)
        x = augment_batch(images[idx].to(device, non_blocking=True), settings.augment, gen)
        x, targets = mix_batch(x, y, settings.num_classes, mixup_alpha=settings.mixup,
                               cutmix_alpha=settings.cutmix, gen=gen)
        with autocast(settings):
            logits = model(normalise(x, settings))
        logits = logits.float()
        loss = loss_fn(logits, targets)
        if distiller is not None:
            loss = distiller.blend(loss, logits, x)
        if regularizer is not None:
            loss = loss + regularizer()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if settings.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
        optimizer.step()
        schedule.step_batch()
        n = hi - lo
        batch_loss = loss.detach().double().cpu()
        total_loss += batch_loss * n
        correct += (logits.detach().argmax(1) == y).sum().cpu()
        seen += n
        if on_batch is not None:
            on_batch(n, float(batch_loss))
        if should_stop is not None and hi < len(order) and should_stop():  # after the last batch: a whole epoch
            stopped = True
            break
    seconds = time.perf_counter() - start
    return {"loss": float(total_loss) / max(seen, 1), "accuracy": float(correct) / max(seen, 1), "images": seen,
            "seconds": seconds, "images_per_second": seen / max(seconds, 1e-9), "stopped": stopped}


def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, settings: StepSettings, *,
             batch_size: int = 256) -> dict[str, float]:
    """Mean cross-entropy and accuracy of `model` on uint8 images (no augmentation)."""
    model.eval()
    device = torch.device(settings.device)
    total_loss, correct = 0.0, 0
    with torch.inference_mode():
        for lo in range(0, len(images), batch_size):
            x = images[lo:lo + batch_size].to(device).float().div_(255.0)
            y = labels[lo:lo + batch_size].to(device)
            logits = model(normalise(x, settings)).float()
            total_loss += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
    n = max(len(images), 1)
    return {"loss": total_loss / n, "accuracy": correct / n}
