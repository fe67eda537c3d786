"""Stochastic weight averaging: which epochs are averaged, the mean itself, batch-norm statistics, and a run."""

from __future__ import annotations

import importlib
import json

import pytest
import torch
from torch import nn
from train_synth import make_dataset

from ferlab.data.augment import resolve_augment
from ferlab.errors import ConfigError
from ferlab.labels import EMOTIONS
from ferlab.train import TrainConfig, fit, load_checkpoint
from ferlab.train.engine import StepSettings
from ferlab.train.swa import WeightAverage, averages_epoch

fit_module = importlib.import_module("ferlab.train.fit")  # ferlab.train.fit is also the name of the function


def _cfg(tmp_path, name="run", **kw) -> TrainConfig:
    base = dict(model="sequential_small", image_size=24, epochs=3, batch_size=16, out=str(tmp_path / name),
                progress=False, lr=3e-3, schedule="none", swa_epochs=2)
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def tiny():
    return make_dataset(per_class=12, size=24, classes=EMOTIONS[:4], test_per_class=2)


def test_only_the_last_swa_epochs_are_averaged():
    assert [e for e in range(1, 11) if averages_epoch(e, 10, 3)] == [8, 9, 10]
    assert not any(averages_epoch(e, 10, 0) for e in range(1, 11))
    assert all(averages_epoch(e, 4, 4) for e in range(1, 5))


def test_the_average_is_the_mean_of_the_snapshots():
    model = nn.Linear(3, 2)
    average = WeightAverage(model)
    snapshots = []
    for value in (1.0, 2.0, 6.0):
        with torch.no_grad():
            model.weight.fill_(value)
            model.bias.fill_(-value)
        average.update(model)
        snapshots.append(value)
    assert average.count == 3
    torch.testing.assert_close(average.model.weight, torch.full((2, 3), 3.0))
    torch.testing.assert_close(average.model.bias, torch.full((2,), -3.0))
    restored = WeightAverage(nn.Linear(3, 2))
    restored.load_state_dict(average.state_dict())
    assert restored.count == 3 and torch.equal(restored.model.weight, average.model.weight)


def test_batchnorm_statistics_come_from_the_training_images():
    model = nn.Sequential(nn.BatchNorm2d(1), nn.Flatten(), nn.Linear(64, 2))
    average = WeightAverage(model)
    average.update(model)
    images = torch.randint(0, 256, (64, 8, 8), dtype=torch.uint8)
    settings = StepSettings(num_classes=2, mean=(0.5,), std=(0.25,), augment=resolve_augment("none"),
                            channels_last=False)
    average.recompute_batchnorm(images, settings, torch.Generator().manual_seed(0), batch_size=16)
    normalised = (images.float() / 255 - 0.5) / 0.25
    bn = average.model[0]
    torch.testing.assert_close(bn.running_mean, normalised.mean().view(1), rtol=1e-5, atol=1e-5)
    assert bn.running_var.item() == pytest.approx(normalised.var().item(), rel=0.05)
    assert torch.equal(model[0].running_mean, torch.zeros(1))  # the trained model keeps its own statistics


@pytest.mark.parametrize("swa_wins", [True, False])
def test_a_run_scores_the_average_and_keeps_it_only_if_it_wins(tmp_path, tiny, monkeypatch, swa_wins):
    original = fit_module.evaluate
    scored = []

    def rigged(model, *args, **kwargs):  # epochs score at most 0.5; the average 1.0 (it wins) or 0.0 (it loses)
        out = original(model, *args, **kwargs)
        if any(model is m for m in scored):
            return {**out, "accuracy": 1.0 if swa_wins else 0.0}
        return {**out, "accuracy": out["accuracy"] / 2}

    real_init = WeightAverage.__init__

    def remember(self, model):
        real_init(self, model)
        scored.append(self.model)

    monkeypatch.setattr(fit_module, "evaluate", rigged)
    monkeypatch.setattr(WeightAverage, "__init__", remember)
    run = fit(_cfg(tmp_path), dataset=tiny)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["swa"]["epochs"] == 2 and summary["swa"]["selected"] is swa_wins
    assert summary["swa"]["val_accuracy"] == (1.0 if swa_wins else 0.0)
    best, last = load_checkpoint(run / "best.pt"), load_checkpoint(run / "last.pt")
    assert last["swa_state"]["n_averaged"].item() == 2
    assert ("swa_epochs" in best["metrics"]) is swa_wins
    differs = any(not torch.equal(best["model_state"][k], last["model_state"][k]) for k in last["model_state"])
    if swa_wins:
        assert differs and summary["best_val_accuracy"] == 1.0 and summary["best_epoch"] == 3
    else:
        assert not differs or summary["best_epoch"] < 3
        assert 0.0 < summary["best_val_accuracy"] <= 0.5


def test_resuming_a_finished_run_does_not_score_the_average_twice(tmp_path, tiny, monkeypatch):
    run = fit(_cfg(tmp_path), dataset=tiny)
    before = json.loads((run / "summary.json").read_text())["swa"]
    calls = []
    monkeypatch.setattr(WeightAverage, "recompute_batchnorm", lambda *a, **k: calls.append(1))
    fit(_cfg(tmp_path), dataset=tiny, resume=True)
    assert not calls and json.loads((run / "summary.json").read_text())["swa"] == before


@pytest.mark.parametrize("bad", [-1, 4])
def test_swa_epochs_must_fit_in_the_run(tmp_path, bad):
    with pytest.raises(ConfigError, match="swa_epochs must be between 0 and epochs"):
        _cfg(tmp_path, swa_epochs=bad)
