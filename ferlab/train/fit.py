"""`fit(cfg)`: data -> model -> epochs of train + validate -> a run directory; resumable, DDP-aware.

Randomness per epoch comes from generators derived from (seed, epoch, rank, stream), so a run resumed from the
checkpoint of epoch k draws exactly what the uninterrupted run drew in epoch k + 1.
"""

from __future__ import annotations

import importlib.util
import math
import random
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ferlab.data.augment import resolve_augment
from ferlab.errors import CheckpointError, ConfigError, ModelError
from ferlab.io import absolute_if_exists, interrupts_deferred
from ferlab.train import artifacts
from ferlab.train.checkpoint import load_checkpoint, save_checkpoint  # its import flushes denormals
from ferlab.train.config import TrainConfig
from ferlab.train.data_prep import RunData, load_dataset, prepare_data
from ferlab.train.distill import Distiller, load_distiller
from ferlab.train.distributed import DistInfo, all_reduce_sum, any_rank, cleanup_distributed, setup_distributed
from ferlab.train.engine import StepSettings, derived_generator, epoch_indices, evaluate, train_one_epoch, unwrap
from ferlab.train.losses import balanced_indices, build_loss, class_weights
from ferlab.train.optim import Schedule, build_optimizer, build_schedule, param_groups
from ferlab.train.swa import WeightAverage, averages_epoch

__all__ = ["fit", "model_kwargs", "resolve_device"]

_RNG_STREAM_SHUFFLE, _RNG_STREAM_AUGMENT, _RNG_STREAM_TORCH, _RNG_STREAM_SWA = 0, 1, 2, 3


def resolve_device(name: str) -> torch.device:
    """`auto` -> cuda when available, else cpu; an unavailable cuda request is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device '{name}' requested but no CUDA GPU is available")
    return torch.device(name)


def _is_classical(name: str) -> bool:
    if importlib.util.find_spec("ferlab.models.classical") is None:
        return False
    from ferlab.models.classical import is_classical

    return bool(is_classical(name))


@contextmanager
def _oom_guard(cfg: TrainConfig, device: torch.device) -> Iterator[None]:
    """Out-of-memory during a step becomes a one-line ConfigError (checkpoints on disk stay intact)."""
    try:
        yield
    except (torch.OutOfMemoryError, RuntimeError) as err:
        text = str(err)
        if isinstance(err, torch.OutOfMemoryError) or "out of memory" in text or "can't allocate memory" in text:
            raise ConfigError(f"batch size {cfg.batch_size} does not fit in {device.type} memory for model "
                              f"'{cfg.model}'; try --batch-size {max(cfg.batch_size // 2, 1)}") from None
        raise


def _rng_snapshot() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _rng_restore(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_as_tuple(state["python"]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(obj: Any) -> Any:
    return tuple(_as_tuple(o) for o in obj) if isinstance(obj, list | tuple) else obj


def _seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def model_kwargs(cfg: TrainConfig, image_size: int, default_size: int) -> dict[str, Any]:
    """The builder options a run passes to create_model: its model_kwargs, plus input_size off the default size."""
    kwargs = dict(cfg.model_kwargs)
    if image_size != default_size:
        kwargs.setdefault("input_size", image_size)
    return kwargs


def _check_pretrained(cfg: TrainConfig) -> None:
    """A ferlab checkpoint given as `pretrained` must hold the same architecture (clear error otherwise)."""
    path = Path(cfg.pretrained or "")
    if not cfg.pretrained or cfg.pretrained == "imagenet":
        return
    if not path.is_file():
        raise ModelError(f"pretrained weights file not found: {path}")
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError:
        return  # not a ferlab checkpoint: the model zoo's weight loader checks the tensors themselves
    if ckpt["model_name"] != cfg.model:
        raise ModelError(f"pretrained checkpoint {path} holds model '{ckpt['model_name']}', not '{cfg.model}'")


def _build_model(cfg: TrainConfig, num_classes: int, kwargs: dict[str, Any]) -> nn.Module:
    from ferlab.models import create_model

    _check_pretrained(cfg)
    torch.manual_seed(cfg.seed)
    return create_model(cfg.model, num_classes=num_classes, pretrained=cfg.pretrained, **kwargs)


def _forward_error(model: nn.Module, size: int, in_chans: int, device: torch.device) -> RuntimeError | None:
    """The error of one eval-mode forward pass of a size x size input, or None: the checks below run it before any
    training so that a model that cannot take the size is a one-line ConfigError, not a traceback mid-epoch."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, in_chans, size, size, device=device))
    except RuntimeError as err:
        return err
    finally:
        model.train(was_training)
    return None


def _check_crop_input(model: nn.Module, crop_size: int, in_chans: int, name: str, device: torch.device) -> None:
    """Training on random crops (augment `crop_size`) needs a model that takes crops as well as whole faces."""
    if crop_size and _forward_error(model, crop_size, in_chans, device) is not None:
        raise ConfigError(f"model '{name}' cannot take {crop_size}x{crop_size} inputs (augment crop_size): its layers "
                          f"fix the input size; train it without crop_size, or use a model with global pooling such "
                          f"as fer_resnet or mini_xception")


def _check_image_input(model: nn.Module, image_size: int, in_chans: int, name: str, device: torch.device) -> None:
    """A net whose pooling stages run out of pixels at the training image size (vgg_scratch at 24 px)."""
    if (err := _forward_error(model, image_size, in_chans, device)) is not None:
        raise ConfigError(f"model '{name}' cannot take {image_size}x{image_size} images ("
                          f"{str(err).splitlines()[0][:160]}); use a larger image_size")


def _backbone_ids(model: nn.Module, cfg: TrainConfig) -> set[int] | None:
    if not cfg.freeze_backbone_epochs:
        return None
    from ferlab.models.finetune import split_backbone_head

    backbone, _ = split_backbone_head(model)
    return {id(p) for p in backbone}


@dataclass
class _Progress:
    """What the run has done so far; saved in every checkpoint so a resume continues from it."""

    epoch: int = 0  # completed epochs
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_val_accuracy: float = -1.0
    bad_epochs: int = 0
    elapsed_seconds: float = 0.0
    train_seconds: float = 0.0
    train_images: int = 0
    stop_reason: str = ""
    swa: dict[str, Any] = field(default_factory=dict)  # the weight average's validation result, once scored

    def state(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class _Run:
    cfg: TrainConfig
    out: Path
    data: RunData
    model: nn.Module
    kwargs: dict[str, Any]
    image_size: int
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    settings: StepSettings
    loss_fn: Any
    dist: DistInfo
    device: torch.device
    progress: _Progress = field(default_factory=_Progress)
    ddp: nn.Module | None = None
    swa: WeightAverage | None = None
    distiller: Distiller | None = None
    _frozen: bool | None = None

    # ---- checkpoints and files (rank 0 only) ----
    def checkpoint(self, metrics: dict[str, Any], model: nn.Module | None = None) -> dict[str, Any]:
        """Everything a resume needs; `model` (default: the trained one) gives the weights stored."""
        return {
            "model_name": self.cfg.model, "model_kwargs": self.kwargs, "classes": list(self.data.classes),
            "image_size": self.image_size, "config": self.cfg.to_dict(), "epoch": self.progress.epoch,
            "metrics": metrics, "model_state": unwrap(self.model if model is None else model).state_dict(),
            "optimizer_state": self.optimizer.state_dict(), "scheduler_state": self.schedule.state_dict(),
            "scaler_state": None, "rng_state": _rng_snapshot(),
            "sampler_state": {"seed": self.cfg.seed, "next_epoch": self.progress.epoch},
            "elapsed_seconds": self.progress.elapsed_seconds, "progress": self.progress.state(),
            "data_fingerprint": self.data.fingerprint, "val_digest": self.data.val_digest,
            "train_digest": self.data.train_digest,
            "world_size": self.dist.world,
            "swa_state": self.swa.state_dict() if self.swa is not None else None,
        }

    def summary(self, finished: bool) -> dict[str, Any]:
        p = self.progress
        return {
            "model": self.cfg.model, "classes": list(self.data.classes), "epochs_done": p.epoch,
            "epochs": self.cfg.epochs, "best_epoch": p.best_epoch, "best_val_accuracy": max(p.best_val_accuracy, 0.0),
            "train_seconds": round(p.train_seconds, 3),
            "train_images_per_second": round(p.train_images / max(p.train_seconds, 1e-9), 2),
            "elapsed_seconds": round(p.elapsed_seconds, 3), "finished": finished, "stop_reason": p.stop_reason,
            "train_images": len(self.data.train_labels), "val_images": len(self.data.val_labels),
            "device": str(self.device), "world_size": self.dist.world,
            "params": sum(t.numel() for t in unwrap(self.model).parameters()),
            **({"swa": p.swa} if p.swa else {}),
        }

    def write_files(self, metrics: dict[str, Any], *, finished: bool, best: nn.Module | None = None,
                    best_metrics: dict[str, Any] | None = None) -> None:
        """last.pt (the trained weights after `metrics`), best.pt when `best` gives weights that won validation
        (scored as `best_metrics`, default `metrics`), the metrics CSV, the curves and summary.json."""
        if not self.dist.is_main:
            return
        if best is not None:
            save_checkpoint(self.out / "best.pt", self.checkpoint(best_metrics or metrics, best))
        save_checkpoint(self.out / "last.pt", self.checkpoint(metrics))
        artifacts.write_metrics_csv(self.out / "metrics.csv", self.progress.history)
        artifacts.plot_curves(self.out / "curves.png", self.progress.history,
                              title=f"{self.cfg.model} ({len(self.data.classes)} classes)")
        artifacts.write_summary(self.out / "summary.json", self.summary(finished))

    # ---- phases ----
    def set_phase(self, epoch: int) -> None:
        """Two-phase fine-tuning: backbone frozen for `freeze_backbone_epochs`, then trained at a lower rate."""
        frozen = epoch < self.cfg.freeze_backbone_epochs
        if frozen != self._frozen and self.cfg.freeze_backbone_epochs:
            from ferlab.models.finetune import set_backbone_trainable

            set_backbone_trainable(self.model, not frozen)
            self.schedule.set_phase_factor(1.0 if frozen else self.cfg.finetune_lr_factor)
            self.ddp = None
        self._frozen = frozen
        if self.ddp is None:
            self.ddp = self._wrap()

    def _wrap(self) -> nn.Module:
        if not self.dist.enabled:
            return self.model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(self.model, device_ids=ids)

    # ---- one epoch ----
    def epoch_order(self, epoch: int) -> torch.Tensor:
        gen = derived_generator(self.cfg.seed, epoch, 0, _RNG_STREAM_SHUFFLE)  # same on every rank
        labels, n = self.data.train_labels.cpu(), len(self.data.train_labels)
        order = balanced_indices(labels, n, gen) if self.cfg.balanced_sampler else torch.randperm(n, generator=gen)
        return epoch_indices(order, self.dist.rank, self.dist.world)

    def run_epoch(self, epoch: int, started: float) -> tuple[dict[str, Any], bool]:
        cfg, d = self.cfg, self.dist
        self.set_phase(epoch)
        torch.manual_seed(derived_generator(cfg.seed, epoch, d.rank, _RNG_STREAM_TORCH).initial_seed())
        order = self.epoch_order(epoch)
        gen = derived_generator(cfg.seed, epoch, d.rank, _RNG_STREAM_AUGMENT)
        budget = cfg.time_budget_minutes * 60 if cfg.time_budget_minutes else None
        # elapsed_seconds already counts this session up to the end of the last epoch: add only this epoch's time
        base_elapsed, epoch_started = self.progress.elapsed_seconds, time.perf_counter()

        def over_budget() -> bool:
            return any_rank(base_elapsed + time.perf_counter() - epoch_started > budget, d, self.device)

        bar = _progress_bar(cfg, d, epoch, len(order) * d.world)

        def on_batch(n: int, loss: float) -> None:
            bar.update(n * d.world)
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

        try:
            with _oom_guard(cfg, self.device):
                train = train_one_epoch(
                    self.ddp, self.optimizer, self.schedule, self.loss_fn, self.data.train_images,
                    self.data.train_labels, order, self.settings, gen, batch_size=cfg.batch_size,
                    on_batch=on_batch if bar is not None else None, should_stop=over_budget if budget else None,
                    distiller=self.distiller,
                )
                val_idx = torch.arange(d.rank, len(self.data.val_labels), d.world)  # each rank scores its share
                val = evaluate(unwrap(self.model), self.data.val_images[val_idx], self.data.val_labels[val_idx],
                               self.settings, batch_size=cfg.eval_batch_size)
        finally:
            if bar is not None:
                bar.close()
        n_val = float(len(val_idx))
        loss_sum, correct, images, seconds, val_loss, val_correct, n_val = all_reduce_sum(
            [train["loss"] * train["images"], train["accuracy"] * train["images"], float(train["images"]),
             train["seconds"], val["loss"] * n_val, val["accuracy"] * n_val, n_val], d, self.device)
        seconds /= d.world
        val = {"loss": val_loss / max(n_val, 1), "accuracy": val_correct / max(n_val, 1)}
        self.schedule.step_epoch(val["loss"])
        row = {"epoch": epoch + 1, "lr": self.schedule.lr, "train_loss": loss_sum / max(images, 1),
               "train_accuracy": correct / max(images, 1), "val_loss": val["loss"], "val_accuracy": val["accuracy"],
               "seconds": seconds, "images_per_second": images / max(seconds, 1e-9),
               "partial": int(bool(train["stopped"]))}
        p = self.progress
        p.train_seconds += seconds
        p.train_images += int(images)
        return row, bool(train["stopped"])


def _progress_bar(cfg: TrainConfig, d: DistInfo, epoch: int, total: int):  # noqa: ANN202
    if not (cfg.progress and d.is_main):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="img", unit_scale=True, leave=False,
                file=sys.stderr, dynamic_ncols=True, mininterval=0.5)


def _epoch_line(cfg: TrainConfig, row: dict[str, Any], improved: bool) -> str:
    return (f"epoch {row['epoch']}/{cfg.epochs}  train loss {row['train_loss']:.4f} acc {row['train_accuracy']:.4f}"
            f"  | val loss {row['val_loss']:.4f} acc {row['val_accuracy']:.4f}  | lr {row['lr']:.2e}"
            f"  | {row['images_per_second']:.0f} img/s {row['seconds']:.1f}s" + ("  *best" if improved else "")
            + ("  (stopped mid-epoch: time budget)" if row["partial"] else ""))


def _setup_run(cfg: TrainConfig, dataset: Any, resume_ckpt: dict[str, Any] | None, dist_info: DistInfo,
               device: torch.device) -> tuple[_Run, TrainConfig]:
    from ferlab.models import get_model_config

    model_cfg = get_model_config(cfg.model)
    image_size = cfg.image_size or model_cfg.input_size[1]
    largest = model_cfg.channels_last_max_size
    if cfg.channels_last and largest and image_size > largest:
        raise ConfigError(f"{cfg.model} at {image_size} px with channels_last crashes torch's CPU backward (it is "
                          f"safe up to {largest} px); set channels_last=false")
    manifest = str(Path(cfg.manifest).expanduser().resolve()) if cfg.manifest else None  # evaluable from anywhere
    cfg = cfg.replace(image_size=image_size, manifest=manifest, data=absolute_if_exists(cfg.data))
    data = prepare_data(cfg, image_size, dataset)
    if device.type == "cuda":  # uint8 images live on the GPU: batches never cross the bus
        data = replace(data, **{f: getattr(data, f).to(device) for f in ("train_images", "train_labels",
                                                                          "val_images", "val_labels")})
    if resume_ckpt is not None and list(resume_ckpt["classes"]) != list(data.classes):
        raise CheckpointError(f"checkpoint classes {resume_ckpt['classes']} differ from the data's "
                              f"{list(data.classes)}")
    if resume_ckpt is not None and any(resume_ckpt.get(f"{k}_digest") not in (None, "", getattr(data, f"{k}_digest"))
                                       for k in ("train", "val")):
        raise CheckpointError(f"{cfg.data} gives other training or validation images than the run's (other data, "
                              "or another version of it): resuming would mix the two in its metrics and its "
                              "best.pt; resume with the run's data (it may have moved: same files, any path)")
    kwargs = model_kwargs(cfg, image_size, model_cfg.input_size[1])
    model = _build_model(cfg, len(data.classes), kwargs).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    groups = param_groups(model.named_parameters(), cfg.weight_decay, _backbone_ids(model, cfg))
    optimizer = build_optimizer(cfg.optimizer, model, lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay, groups=groups)
    steps = _steps_per_epoch(len(data.train_labels), dist_info.world, cfg.batch_size)
    schedule = build_schedule(cfg.schedule, optimizer, epochs=cfg.epochs, steps_per_epoch=steps,
                              warmup_epochs=cfg.warmup_epochs)
    schedule.plateau_patience = cfg.plateau_patience
    weight = class_weights(data.train_labels.numpy(), len(data.classes)).to(device) if cfg.class_weights else None
    loss_fn = build_loss(cfg.loss, smoothing=cfg.label_smoothing, weight=weight, gamma=cfg.focal_gamma)
    mcfg = model.ferlab_cfg
    settings = StepSettings(
        num_classes=len(data.classes), mean=tuple(mcfg.mean), std=tuple(mcfg.std), in_chans=mcfg.input_size[0],
        augment=resolve_augment(cfg.augment, cfg.augment_options), mixup=cfg.mixup, cutmix=cfg.cutmix,
        grad_clip=cfg.grad_clip, channels_last=cfg.channels_last, device=str(device),
        precision=cfg.precision,
    )
    _check_image_input(model, image_size, settings.in_chans, cfg.model, device)
    _check_crop_input(model, settings.augment.crop_size, settings.in_chans, cfg.model, device)
    distiller = None
    if cfg.teacher:
        distiller = load_distiller(cfg.teacher, classes=list(data.classes), image_size=image_size, student=settings,
                                   weight=cfg.distill_weight, temperature=cfg.distill_temperature, device=device)
    run = _Run(cfg, Path(cfg.out), data, model, kwargs, image_size, optimizer, schedule, settings, loss_fn,
               dist_info, device, swa=WeightAverage(model) if cfg.swa_epochs else None, distiller=distiller)
    if resume_ckpt is not None:
        _restore(run, resume_ckpt)
    return run, cfg


def _restore(run: _Run, ckpt: dict[str, Any]) -> None:
    """Model, optimiser, schedule, progress and RNG state from a checkpoint; the schedule spans the (maybe new)
    total of epochs."""
    try:
        run.model.load_state_dict(ckpt["model_state"])
        run.optimizer.load_state_dict(ckpt["optimizer_state"])
        run.schedule.load_state_dict(ckpt["scheduler_state"])
        run.progress = _Progress(**ckpt["progress"])
        if run.swa is not None and ckpt.get("swa_state") is not None:
            run.swa.load_state_dict(ckpt["swa_state"])
        _rng_restore(ckpt["rng_state"])
    except (KeyError, RuntimeError, ValueError, TypeError) as err:
        raise CheckpointError(f"cannot resume from {ckpt.get('path', 'checkpoint')}: "
                              f"{str(err).splitlines()[0][:200]}") from None


def _steps_per_epoch(n: int, world: int, batch_size: int) -> int:
    """Optimisation steps per epoch on each rank (full batches only, see engine._batches)."""
    return max(-(-n // world) // batch_size, 1)


def _train_loop(run: _Run, on_epoch_end: Callable[[dict[str, Any]], None] | None = None, quiet: bool = False) -> None:
    cfg, p = run.cfg, run.progress
    started = time.perf_counter()
    base = p.elapsed_seconds
    p.stop_reason = ""
    budget = cfg.time_budget_minutes * 60 if cfg.time_budget_minutes else math.inf
    while p.epoch < cfg.epochs:
        if p.elapsed_seconds >= budget:  # a resumed run whose budget is already spent trains nothing more
            p.stop_reason = "time_budget"
            if run.dist.is_main:
                print(f"ferlab: the run's time budget ({cfg.time_budget_minutes:g} min) is spent "
                      f"({p.elapsed_seconds / 60:.1f} min logged); give --time-budget MINUTES to continue",
                      file=sys.stderr)
                artifacts.write_summary(run.out / "summary.json", run.summary(True))
            break
        row, stopped = run.run_epoch(p.epoch, started)
        p.epoch += 1
        if run.swa is not None and averages_epoch(p.epoch, cfg.epochs, cfg.swa_epochs):
            run.swa.update(run.model)
        p.elapsed_seconds = base + time.perf_counter() - started
        improved = row["val_accuracy"] > p.best_val_accuracy
        if improved:
            p.best_val_accuracy, p.best_epoch, p.bad_epochs = row["val_accuracy"], p.epoch, 0
        else:
            p.bad_epochs += 1
        p.history.append(row)
        if stopped or any_rank(p.elapsed_seconds >= budget, run.dist, run.device):
            p.stop_reason = "time_budget"
        elif cfg.early_stopping_patience and p.bad_epochs >= cfg.early_stopping_patience:
            p.stop_reason = "early_stopping"
        elif p.epoch >= cfg.epochs:
            p.stop_reason = "epochs"
        with interrupts_deferred():  # a Ctrl-C here left summary.json an epoch behind last.pt and metrics.csv
            run.write_files(row, finished=bool(p.stop_reason), best=run.model if improved else None)
            if run.dist.is_main and not quiet:
                print(_epoch_line(cfg, row, improved), file=sys.stderr, flush=True)
        if run.dist.is_main:
            if on_epoch_end is not None:  # e.g. ferlab.tune reports val accuracy and may raise to prune the run
                on_epoch_end(dict(row))
        if p.stop_reason:
            break
    if not p.stop_reason:  # nothing left to do (e.g. resuming a run that already reached its epochs)
        p.stop_reason = "epochs"
        if run.dist.is_main:
            artifacts.write_summary(run.out / "summary.json", run.summary(True))
    if run.swa is not None and run.swa.count and not p.swa:
        _score_weight_average(run)


def _score_weight_average(run: _Run) -> None:
    """After the last epoch: batch-norm statistics for the averaged weights, their validation score, and best.pt
    if they beat every epoch. The time counts in the run's elapsed seconds (the training budget)."""
    cfg, p, started = run.cfg, run.progress, time.perf_counter()
    gen = derived_generator(cfg.seed, p.epoch, 0, _RNG_STREAM_SWA)
    with _oom_guard(cfg, run.device):
        run.swa.recompute_batchnorm(run.data.train_images, run.settings, gen, batch_size=cfg.batch_size)
        val = evaluate(run.swa.model, run.data.val_images, run.data.val_labels, run.settings,
                       batch_size=cfg.eval_batch_size)
    selected = val["accuracy"] > p.best_val_accuracy
    p.swa = {"epochs": run.swa.count, "val_loss": val["loss"], "val_accuracy": val["accuracy"], "selected": selected}
    p.elapsed_seconds += time.perf_counter() - started
    if selected:
        p.best_val_accuracy, p.best_epoch = val["accuracy"], p.epoch
    if not run.dist.is_main:
        return
    scored = {"epoch": p.epoch, "val_loss": val["loss"], "val_accuracy": val["accuracy"], "swa_epochs": run.swa.count}
    run.write_files(p.history[-1] if p.history else {}, finished=True,
                    best=run.swa.model if selected else None, best_metrics=scored)
    print(f"weight average of the last {run.swa.count} epochs: val loss {val['loss']:.4f} acc {val['accuracy']:.4f}"
          + ("  *best (saved as best.pt)" if selected else f"  (best epoch {p.best_epoch} stays best.pt)"),
          file=sys.stderr, flush=True)


def fit(cfg: TrainConfig, *, resume: bool = False, dataset: Any = None,
        on_epoch_end: Callable[[dict[str, Any]], None] | None = None, quiet: bool = False) -> Path:
    """Train `cfg.model` as `cfg` says (or continue the run in `cfg.out` when `resume`); returns the run dir.
    `quiet`: no per-epoch line on stderr (`ferlab tune --no-progress`; metrics.csv keeps every epoch)."""
    if _is_classical(cfg.model):
        from ferlab.train.classical import fit_classical

        return fit_classical(cfg, dataset if dataset is not None else load_dataset(cfg, cfg.image_size or 48))
    out = Path(cfg.out)
    resume_ckpt = None
    if resume:
        resume_ckpt = load_checkpoint(out / "last.pt")
        if resume_ckpt.get("model_name") != cfg.model or "progress" not in resume_ckpt:
            raise CheckpointError(f"{out / 'last.pt'} is not a resumable checkpoint of model '{cfg.model}'")
    elif (out / "last.pt").exists():
        raise ConfigError(f"{out} already holds a training run; use --resume {out} or another --out")
    device = resolve_device(cfg.device)
    dist_info = setup_distributed(device.type)
    if dist_info.enabled and device.type == "cuda":
        device = torch.device("cuda", dist_info.local_rank)
        torch.cuda.set_device(device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    _seed_everything(cfg.seed, cfg.deterministic)
    try:
        run, resolved = _setup_run(cfg, dataset, resume_ckpt, dist_info, device)
        if dist_info.is_main:
            out.mkdir(parents=True, exist_ok=True)
            artifacts.write_config(out / "config.yaml", resolved.to_yaml())
        _train_loop(run, on_epoch_end, quiet)
    finally:
        cleanup_distributed(dist_info)
    return out
