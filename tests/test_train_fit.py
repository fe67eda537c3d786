"""fit(): artifacts of a run, resume equivalence, time budget, early stopping, fine-tuning, bad input."""

from __future__ import annotations

import csv
import json

import pytest
import torch
import yaml
from train_synth import make_dataset

from ferlab.errors import CheckpointError, ConfigError, ModelError
from ferlab.labels import EMOTIONS
from ferlab.models import create_model
from ferlab.train import TrainConfig, fit, load_checkpoint, load_classifier
from ferlab.train.fit import _Run

SUMMARY_KEYS = {"model", "classes", "epochs_done", "best_epoch", "best_val_accuracy", "train_seconds",
                "train_images_per_second", "finished"}
CKPT_KEYS = {"format", "version", "model_name", "model_kwargs", "classes", "image_size", "config", "epoch", "metrics",
             "model_state", "optimizer_state", "scheduler_state", "scaler_state", "rng_state", "sampler_state",
             "elapsed_seconds"}


def _cfg(tmp_path, name="run", **kw) -> TrainConfig:
    base = dict(model="sequential_small", image_size=24, epochs=2, batch_size=16, out=str(tmp_path / name),
                progress=False, lr=3e-3)
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def tiny():
    return make_dataset(per_class=12, size=24, classes=EMOTIONS[:4], test_per_class=2)


def test_two_epochs_write_every_artifact(tmp_path):
    ds = make_dataset(per_class=10, size=48, test_per_class=2)  # 7 classes x 10 train images of 48x48
    run = fit(_cfg(tmp_path, image_size=0, batch_size=32), dataset=ds)
    for name in ("best.pt", "last.pt", "metrics.csv", "config.yaml", "curves.png", "summary.json"):
        assert (run / name).is_file() and (run / name).stat().st_size > 0, name
    summary = json.loads((run / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary)
    assert summary["epochs_done"] == 2 and summary["finished"] and summary["classes"] == list(EMOTIONS)
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"] and float(rows[0]["val_accuracy"]) >= 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["image_size"] == 48 and TrainConfig.from_dict(saved).model == "sequential_small"
    last = load_checkpoint(run / "last.pt")
    assert CKPT_KEYS <= set(last) and last["epoch"] == 2
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG"
    clf = load_classifier(run / "best.pt")
    probs = clf.predict_proba(ds.images[:5])
    assert probs.shape == (5, 7)
    # model selection on a validation split carved from train; the 14 test images are never used
    assert summary["train_images"] + summary["val_images"] == 70 and summary["val_images"] == 7


def _weights(path):
    return load_checkpoint(path)["model_state"]


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, tiny, monkeypatch):
    kw = dict(augment="strong", schedule="cosine", mixup=0.2, epochs=2)
    straight = fit(_cfg(tmp_path, "straight", **kw), dataset=tiny)

    original = _Run.write_files

    def crash_after_first_epoch(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if self.progress.epoch == 1:
            raise KeyboardInterrupt  # the process dies right after epoch 1's checkpoint

    monkeypatch.setattr(_Run, "write_files", crash_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        fit(_cfg(tmp_path, "resumed", **kw), dataset=tiny)
    monkeypatch.setattr(_Run, "write_files", original)
    assert load_checkpoint(tmp_path / "resumed" / "last.pt")["epoch"] == 1
    resumed = fit(_cfg(tmp_path, "resumed", **kw), dataset=tiny, resume=True)
    a, b = _weights(straight / "last.pt"), _weights(resumed / "last.pt")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-6, atol=1e-7)
    rows = list(csv.DictReader((resumed / "metrics.csv").open()))
    assert len(rows) == 2


def test_resume_to_more_epochs_and_refusing_to_overwrite(tmp_path, tiny):
    run = fit(_cfg(tmp_path, epochs=1, schedule="none"), dataset=tiny)
    with pytest.raises(ConfigError, match="already holds a training run"):
        fit(_cfg(tmp_path, epochs=1), dataset=tiny)
    fit(_cfg(tmp_path, epochs=2, schedule="none"), dataset=tiny, resume=True)
    assert json.loads((run / "summary.json").read_text())["epochs_done"] == 2
    with pytest.raises(CheckpointError, match="not a resumable checkpoint"):
        fit(_cfg(tmp_path, model="simple_cnn", epochs=3), dataset=tiny, resume=True)


def test_time_budget_stops_mid_epoch_with_a_valid_checkpoint(tmp_path, tiny):
    run = fit(_cfg(tmp_path, epochs=50, batch_size=4, time_budget_minutes=1e-6), dataset=tiny)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stop_reason"] == "time_budget" and summary["epochs_done"] == 1 and summary["finished"]
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert rows[0]["partial"] == "1"
    assert load_checkpoint(run / "last.pt")["epoch"] == 1


def test_resuming_a_run_whose_budget_is_spent_trains_nothing(tmp_path, tiny, capsys):
    cfg = _cfg(tmp_path, epochs=50, batch_size=4, time_budget_minutes=1e-6)
    run = fit(cfg, dataset=tiny)
    before = (run / "last.pt").read_bytes()
    fit(cfg, dataset=tiny, resume=True)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs_done"] == 1 and summary["stop_reason"] == "time_budget" and summary["finished"]
    assert (run / "last.pt").read_bytes() == before
    assert "time budget (1e-06 min) is spent" in capsys.readouterr().err
    fit(cfg.with_overrides({"time_budget_minutes": 10, "epochs": 2}), dataset=tiny, resume=True)  # more budget: on
    assert json.loads((run / "summary.json").read_text())["epochs_done"] == 2


def test_time_budget_counts_each_second_once(tmp_path, tiny, monkeypatch):
    """Regression: the in-epoch check once added this session's time twice, stopping runs at half their budget."""
    import importlib
    import types

    fit_module = importlib.import_module("ferlab.train.fit")

    clock = iter(range(0, 10**9, 5))  # every reading of the training clock advances 5 fake seconds
    fake_time = types.SimpleNamespace(**{k: getattr(fit_module.time, k) for k in dir(fit_module.time)
                                         if not k.startswith("__")})
    fake_time.perf_counter = lambda: float(next(clock))
    monkeypatch.setattr(fit_module, "time", fake_time)
    run = fit(_cfg(tmp_path, epochs=500, batch_size=16, time_budget_minutes=5), dataset=tiny)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stop_reason"] == "time_budget"
    assert summary["epochs_done"] >= 2
    assert 0.9 * 300 <= summary["elapsed_seconds"] <= 300 + 60


def test_early_stopping(tmp_path, tiny):
    run = fit(_cfg(tmp_path, epochs=6, lr=1e-12, schedule="none", early_stopping_patience=2), dataset=tiny)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stop_reason"] == "early_stopping" and summary["epochs_done"] == 3


def test_imbalance_options_run(tmp_path, tiny):
    run = fit(_cfg(tmp_path, epochs=1, loss="focal", class_weights=True, balanced_sampler=True, cutmix=1.0,
                   label_smoothing=0.1, grad_clip=1.0, optimizer="sgd", schedule="onecycle", channels_last=False,
                   limit=30),
              dataset=tiny)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["train_images"] + summary["val_images"] <= 31


def test_frozen_backbone_first_phase(tmp_path, tiny):
    run = fit(_cfg(tmp_path, epochs=1, freeze_backbone_epochs=1, weight_decay=0.0), dataset=tiny)
    trained = _weights(run / "last.pt")
    torch.manual_seed(0)
    init = create_model("sequential_small", num_classes=4, input_size=24).state_dict()
    assert torch.equal(trained["features.0.0.weight"], init["features.0.0.weight"])
    assert not torch.equal(trained["classifier.weight"], init["classifier.weight"])


def test_scheme_leaving_one_class(tmp_path):
    ds = make_dataset(per_class=6, size=24, classes=("angry", "disgust"))
    with pytest.raises(ConfigError, match="leaves 1 class"):
        fit(_cfg(tmp_path, classes="2"), dataset=ds)
    with pytest.raises(ConfigError, match="fewer than 2"):
        fit(_cfg(tmp_path, classes="angry"), dataset=ds)


def test_pretrained_checkpoint_of_another_architecture(tmp_path, tiny):
    run = fit(_cfg(tmp_path, "donor", epochs=1), dataset=tiny)
    with pytest.raises(ModelError, match="holds model 'sequential_small', not 'simple_cnn'"):
        fit(_cfg(tmp_path, model="simple_cnn", pretrained=str(run / "best.pt")), dataset=tiny)
    warm = fit(_cfg(tmp_path, "warm", epochs=1, pretrained=str(run / "best.pt"), lr=1e-12, schedule="none"),
               dataset=tiny)
    torch.testing.assert_close(_weights(warm / "last.pt")["features.0.0.weight"],
                               _weights(run / "best.pt")["features.0.0.weight"])


def test_out_of_memory_is_a_one_line_error(tmp_path, tiny, monkeypatch):
    import importlib

    fit_mod = importlib.import_module("ferlab.train.fit")  # the module (ferlab.train.fit is also the function)

    def oom(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(fit_mod, "train_one_epoch", oom)
    with pytest.raises(ConfigError, match="batch size 16 does not fit"):
        fit(_cfg(tmp_path), dataset=tiny)


@pytest.mark.parametrize("precision, dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_precision_sets_the_forward_dtype_of_a_training_step(precision, dtype, tiny):
    from ferlab.train.engine import StepSettings, train_one_epoch
    from ferlab.train.losses import build_loss
    from ferlab.train.optim import Schedule, build_optimizer

    model = create_model("sequential_small", num_classes=4, input_size=24)
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    seen: set[torch.dtype] = set()
    conv.register_forward_hook(lambda mod, inp, out: seen.add(out.dtype))
    opt = build_optimizer("sgd", model, lr=0.01, momentum=0.9, weight_decay=0.0)
    cfg = model.ferlab_cfg
    settings = StepSettings(num_classes=4, mean=tuple(cfg.mean), std=tuple(cfg.std), precision=precision)
    images = torch.randint(0, 256, (32, 1, 24, 24), dtype=torch.uint8)
    labels = torch.arange(32) % 4
    before = [p.detach().clone() for p in model.parameters()]
    out = train_one_epoch(model, opt, Schedule(opt, "none", total_steps=10), build_loss("ce"), images, labels,
                          torch.arange(32), settings, torch.Generator().manual_seed(0), batch_size=16)
    assert seen == {dtype}
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast leaves the weights fp32
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert out["images"] == 32 and torch.isfinite(torch.tensor(out["loss"]))


def test_bf16_run_saves_its_precision_and_fp32_weights(tmp_path, tiny):
    run = fit(_cfg(tmp_path, epochs=1, precision="bf16"), dataset=tiny)
    floats = [v for v in _weights(run / "last.pt").values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in floats)
    assert yaml.safe_load((run / "config.yaml").read_text())["precision"] == "bf16"


def test_unknown_precision_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown precision 'fp16'; choose from fp32, bf16"):
        _cfg(tmp_path, precision="fp16")


def test_random_crop_training_then_whole_faces(tmp_path, tiny):
    """augment crop_size: a global-pooling model trains on 16x16 crops and is evaluated and saved at 24x24."""
    run = fit(_cfg(tmp_path, model="mini_xception", epochs=1, augment="none", augment_options={"crop_size": 16}),
              dataset=tiny)
    clf = load_classifier(run / "best.pt")
    assert clf.image_size == 24 and clf.predict_proba(tiny.images[:3]).shape == (3, 4)


def test_random_crop_refuses_a_fixed_size_model(tmp_path, tiny):
    with pytest.raises(ConfigError, match="cannot take 16x16 inputs"):
        fit(_cfg(tmp_path, epochs=1, augment_options={"crop_size": 16}), dataset=tiny)


def test_a_relative_manifest_is_recorded_as_an_absolute_path(tmp_path, monkeypatch):
    """So `ferlab eval RUN --split val` re-carves the cleaned run's validation split from any directory."""
    from ferlab.data import load
    from ferlab.data.manifest import write_manifest
    from ferlab.data.synthetic import synthetic_faces, write_image_folder

    data = write_image_folder(synthetic_faces(n_per_class=6, seed=4), tmp_path / "faces")
    write_manifest(tmp_path / "audit" / "clean.json", load(data, progress=False), {}, ["duplicates"])
    monkeypatch.chdir(tmp_path)
    run = fit(_cfg(tmp_path, data=str(data), manifest="audit/clean.json", epochs=1, val_fraction=0.3, image_size=48))
    recorded = yaml.safe_load((run / "config.yaml").read_text())["manifest"]
    assert recorded == str(tmp_path / "audit" / "clean.json")


def test_a_budget_spent_on_the_last_batch_leaves_a_whole_epoch_not_partial():
    from ferlab.train.engine import StepSettings, train_one_epoch
    from ferlab.train.losses import build_loss
    from ferlab.train.optim import Schedule, build_optimizer

    model = create_model("sequential_small", num_classes=4, input_size=24)
    opt = build_optimizer("sgd", model, lr=0.01, momentum=0.9, weight_decay=0.0)
    cfg = model.ferlab_cfg
    settings = StepSettings(num_classes=4, mean=tuple(cfg.mean), std=tuple(cfg.std))
    images = torch.randint(0, 256, (32, 1, 24, 24), dtype=torch.uint8)
    labels = torch.arange(32) % 4

    def epoch(batch_size: int) -> dict:
        return train_one_epoch(model, opt, Schedule(opt, "none", total_steps=10), build_loss("ce"), images, labels,
                               torch.arange(32), settings, torch.Generator().manual_seed(0), batch_size=batch_size,
                               should_stop=lambda: True)

    whole = epoch(32)  # one batch: the budget runs out with the epoch done
    assert whole["images"] == 32 and not whole["stopped"]
    cut = epoch(16)  # two batches: it stops after the first
    assert cut["images"] == 16 and cut["stopped"]


def test_the_run_records_its_data_as_an_absolute_path(tmp_path, monkeypatch):
    from ferlab.data.synthetic import synthetic_faces, write_image_folder

    write_image_folder(synthetic_faces(6, classes=EMOTIONS[:3], image_size=24), tmp_path / "faces")
    monkeypatch.setenv("FERLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    run = fit(_cfg(tmp_path, epochs=1, data="faces", val_fraction=0.25))
    recorded = yaml.safe_load((run / "config.yaml").read_text())["data"]
    assert recorded == str((tmp_path / "faces").resolve())  # resume and compare from another directory find it


def test_interrupts_are_held_until_the_files_of_an_epoch_are_written():
    import os
    import signal

    from ferlab.io import interrupts_deferred

    before = signal.getsignal(signal.SIGINT)
    written = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            written.append("summary.json")  # still runs: the interrupt waits for the block's end
    assert written == ["summary.json"] and signal.getsignal(signal.SIGINT) is before
