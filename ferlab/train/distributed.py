"""DDP plumbing for `torchrun`: process-group setup from the environment, rank info, small collectives."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "setup_distributed", "cleanup_distributed", "all_reduce_sum", "any_rank"]


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_type: str) -> DistInfo:
    """Join the process group torchrun describes (WORLD_SIZE > 1): gloo on CPU, NCCL on CUDA."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def cleanup_distributed(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: list[float], info: DistInfo, device: torch.device) -> list[float]:
    """Element-wise sum of `values` over ranks (identity when not distributed)."""
    if not info.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def any_rank(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True on every rank when `flag` is True on any rank (keeps stop decisions in lock-step)."""
    if not info.enabled:
        return flag
    return all_reduce_sum([float(flag)], info, device)[0] > 0
