"""Every registry model: shape, finite outputs, gradients, one optimisation step, config paths, weight round trip."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from ferlab.models import create_model, list_models

NAMES = list_models()
BATCH = 4  # batch norm needs a few samples in train mode


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny batches: one thread avoids OpenMP spin contention on a busy 2-core machine (10x faster here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@functools.cache
def _built(name: str) -> nn.Module:
    """One default build per model for the read-only tests (building the big backbones costs seconds)."""
    torch.manual_seed(0)
    return create_model(name).eval()


def _batch(model: nn.Module, n: int = BATCH) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, *model.ferlab_cfg.input_size, generator=g)
    y = torch.arange(n) % model.ferlab_cfg.num_classes
    return x, y


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    torch.manual_seed(123)  # same dropout / drop-path masks on every call
    return nn.functional.cross_entropy(model(x), y)


def test_registry_holds_the_issue_models():
    wanted = {"simple_cnn", "sequential_small", "vgg_scratch", "vgg_fer", "mini_xception", "simple_resnet",
              "cbam_resnet", "resnet18_fer", "resnet50", "resnet50v2", "vgg16", "efficientnet_b0"}
    assert wanted <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_forward_gradients_and_one_step_lowers_loss(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=5).train()
    x, y = _batch(model)
    torch.manual_seed(123)  # same dropout / drop-path masks as _loss
    out = model(x)
    assert out.shape == (BATCH, 5) and torch.isfinite(out).all()
    before = nn.functional.cross_entropy(out, y)
    reg = getattr(model, "regularization_loss", None)
    (before + (reg() if reg else 0)).backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable
    missing = [n for n, p in trainable if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"no finite gradient for {missing[:5]}"
    assert any(p.grad.abs().sum() > 0 for _, p in trainable)
    params = [p for _, p in trainable]
    nn.utils.clip_grad_norm_(params, 1.0)  # a small step in parameter space, whatever the net's gradient scale
    torch.optim.SGD(params, lr=0.01).step()
    with torch.no_grad():
        after = _loss(model, x, y)
    assert after < before


@pytest.mark.parametrize("name", NAMES)
def test_config_paths_resolve(name):
    model = _built(name)
    cfg = model.ferlab_cfg
    assert cfg.name == name and cfg.input_size[0] == 1 and len(cfg.mean) == len(cfg.std) == 1
    assert cfg.description
    convs = (nn.Conv2d, nn.Linear)
    assert isinstance(model.get_submodule(cfg.first_conv), convs)
    head = model.get_submodule(cfg.classifier)
    assert any(isinstance(m, convs) for m in head.modules())
    seen = []
    hook = model.get_submodule(cfg.cam_layer).register_forward_hook(lambda m, i, o: seen.append(o))
    with torch.no_grad():
        model(_batch(model, 1)[0])
    hook.remove()
    assert seen and seen[0].ndim == 4 and seen[0].shape[-1] > 1, "the CAM layer must give a spatial map"


@pytest.mark.parametrize("name", NAMES)
def test_pretrained_local_file_round_trip(name, tmp_path):
    source = _built(name)
    path = tmp_path / "w.pt"
    torch.save(source.state_dict(), path)
    torch.manual_seed(99)  # a different init, so equality proves the load
    loaded = create_model(name, pretrained=str(path))
    want = source.state_dict()
    got = loaded.state_dict()
    assert want.keys() == got.keys()
    assert all(torch.equal(want[k], got[k]) for k in want)
