"""Split a registry model into backbone and head parameters for two-phase fine-tuning."""

from __future__ import annotations

from torch import nn

from ferlab.errors import ModelError

__all__ = ["split_backbone_head", "set_backbone_trainable"]


def split_backbone_head(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(backbone params, head params): the head is the module at `model.ferlab_cfg.classifier`.

    Phase 1 trains the head with the backbone frozen; phase 2 trains both, the backbone at a lower learning rate.
    """
    cfg = getattr(model, "ferlab_cfg", None)
    if cfg is None or not cfg.classifier:
        raise ModelError("model has no ferlab_cfg.classifier; build it with ferlab.models.create_model")
    head_ids = {id(p) for p in model.get_submodule(cfg.classifier).parameters()}
    params = list(model.parameters())
    return [p for p in params if id(p) not in head_ids], [p for p in params if id(p) in head_ids]


def set_backbone_trainable(model: nn.Module, trainable: bool) -> None:
    """Freeze (False) or unfreeze (True) the backbone; parameters frozen by the model's own design stay frozen."""
    backbone, _ = split_backbone_head(model)
    fixed = getattr(model, "fixed_parameters", lambda: [])()
    fixed_ids = {id(p) for p in fixed}
    for p in backbone:
        if id(p) not in fixed_ids:
            p.requires_grad_(trainable)
