"""Knowledge distillation (Hinton et al., 2015): the model also learns a frozen teacher's softened predictions on
the same augmented batch, so a fast net can inherit some of a slower or earlier net's accuracy."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ferlab.errors import ConfigError
from ferlab.train.engine import StepSettings, autocast, normalise

__all__ = ["Distiller", "distillation_loss", "load_distiller"]


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) of the predictions softened by `temperature`, times T² so its gradients keep the scale
    of the label loss's at any temperature."""
    t = temperature
    return F.kl_div(F.log_softmax(student_logits / t, 1), F.log_softmax(teacher_logits / t, 1),
                    reduction="batchmean", log_target=True) * t * t


@dataclass
class Distiller:
    """A frozen teacher (eval mode, its own input normalisation) and how much its soft targets weigh."""

    teacher: nn.Module
    settings: StepSettings  # the teacher's preprocessing
    weight: float
    temperature: float

    def blend(self, label_loss: torch.Tensor, student_logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """(1 - weight) x the label loss + weight x the distillation term on `images` (float [0, 1] batch, already
        augmented and mixed, as the student saw it)."""
        with torch.no_grad(), autocast(self.settings):  # the student's precision: bf16 halves the teacher's cost
            teacher_logits = self.teacher(normalise(images, self.settings)).float()
        soft = distillation_loss(student_logits, teacher_logits, self.temperature)
        return (1 - self.weight) * label_loss + self.weight * soft


def load_distiller(path: str | Path, *, classes: list[str], image_size: int, student: StepSettings,
                   weight: float, temperature: float, device: torch.device) -> Distiller:
    """The teacher checkpoint at `path` (a ferlab .pt, or a run directory: its selected model, as every command
    reads one), checked to predict the same classes in the same order at the run's image size."""
    from ferlab.errors import CheckpointError
    from ferlab.train.checkpoint import load_model

    try:
        teacher, ckpt = load_model(path)
    except CheckpointError as err:  # missing, corrupt, or not a ferlab checkpoint
        raise ConfigError(f"teacher {err}") from None
    path = ckpt["path"]
    if list(ckpt["classes"]) != list(classes):
        raise ConfigError(f"teacher {path} predicts {list(ckpt['classes'])}, the data has {list(classes)}")
    teacher_size = int(ckpt.get("image_size") or teacher.ferlab_cfg.input_size[1])
    if teacher_size != image_size:
        raise ConfigError(f"teacher {path} takes {teacher_size}x{teacher_size} images, this run {image_size}")
    teacher.requires_grad_(False)
    tcfg = teacher.ferlab_cfg
    settings = replace(student, mean=tuple(tcfg.mean), std=tuple(tcfg.std), in_chans=tcfg.input_size[0])
    if settings.channels_last:
        teacher = teacher.to(memory_format=torch.channels_last)
    return Distiller(teacher.to(device).eval(), settings, weight, temperature)
