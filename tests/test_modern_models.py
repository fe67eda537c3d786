"""vit_tiny_fer and convnext_fer: registered, right output shape, every parameter learns, CAM layer is a map."""

from __future__ import annotations

import pytest
import torch

from ferlab.errors import ModelError
from ferlab.models import create_model, list_models

MODERN = ("vit_tiny_fer", "convnext_fer")


@pytest.mark.parametrize("name", MODERN)
def test_registered_with_family_and_cam_layer(name: str) -> None:
    assert name in list_models()
    model = create_model(name, num_classes=4)
    modules = dict(model.named_modules())
    cfg = model.ferlab_cfg
    assert cfg.family in ("vit", "convnext")
    for path in (cfg.cam_layer, cfg.first_conv, cfg.classifier):
        assert path in modules, path


@pytest.mark.parametrize("name", MODERN)
def test_forward_shape_and_every_parameter_gets_a_gradient(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=5).train()
    logits = model(torch.randn(3, 1, 48, 48))
    assert logits.shape == (3, 5) and torch.isfinite(logits).all()
    logits.logsumexp(1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


@pytest.mark.parametrize("name", MODERN)
def test_cam_layer_output_is_a_spatial_map(name: str) -> None:
    """Grad-CAM hooks the cam_layer like a conv layer: its output must be N x C x h x w with h, w > 1."""
    model = create_model(name).eval()
    seen: list[torch.Size] = []
    layer = dict(model.named_modules())[model.ferlab_cfg.cam_layer]
    handle = layer.register_forward_hook(lambda _m, _i, out: seen.append(out.shape))
    with torch.no_grad():
        model(torch.zeros(2, 1, 48, 48))
    handle.remove()
    assert len(seen[0]) == 4 and seen[0][0] == 2 and seen[0][2] > 1 and seen[0][3] > 1


def test_vit_rejects_a_patch_that_does_not_tile_the_image() -> None:
    with pytest.raises(ModelError, match="patch_size"):
        create_model("vit_tiny_fer", patch_size=5)


def test_convnext_rejects_mismatched_stage_lists() -> None:
    with pytest.raises(ModelError, match="same length"):
        create_model("convnext_fer", dims=(32, 64), depths=(1, 1, 1))
