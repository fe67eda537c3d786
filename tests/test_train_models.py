"""Every registry model goes through ferlab's training engine: one step on a tiny batch, then evaluation."""

from __future__ import annotations

import pytest
import torch

from ferlab.data.augment import AUGMENT_PRESETS
from ferlab.models import create_model, get_model_config, list_models
from ferlab.train.engine import StepSettings, evaluate, train_one_epoch
from ferlab.train.losses import build_loss
from ferlab.train.optim import build_optimizer, build_schedule

_FAST_FAMILIES = {"simple_cnn", "xception"}  # the others take seconds per step on 2 loaded cores: marked slow


def _models() -> list:
    return [name if get_model_config(name).family in _FAST_FAMILIES else pytest.param(name, marks=pytest.mark.slow)
            for name in list_models()]


@pytest.mark.parametrize("name", _models())
def test_engine_trains_every_model(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=3).to(memory_format=torch.channels_last)
    cfg = model.ferlab_cfg
    c, h, w = cfg.input_size
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (4, 1, h, w), dtype=torch.uint8, generator=gen)
    labels = torch.tensor([0, 1, 2, 0])
    settings = StepSettings(num_classes=3, mean=tuple(cfg.mean), std=tuple(cfg.std), in_chans=c,
                            augment=AUGMENT_PRESETS["strong"], mixup=0.2)
    opt = build_optimizer("adamw", model, lr=1e-3, momentum=0.9, weight_decay=1e-4)
    sched = build_schedule("cosine", opt, epochs=1, steps_per_epoch=2)
    before = {k: v.clone() for k, v in model.state_dict().items() if v.is_floating_point()}
    train = train_one_epoch(model, opt, sched, build_loss("ce", smoothing=0.1), images, labels, torch.arange(4),
                            settings, gen, batch_size=2)
    assert train["images"] == 4 and torch.isfinite(torch.tensor(train["loss"]))
    after = model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    val = evaluate(model, images, labels, settings, batch_size=3)
    assert 0.0 <= val["accuracy"] <= 1.0 and val["loss"] > 0
