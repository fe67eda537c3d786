"""Training throughput: ferlab's engine vs a bare PyTorch loop of the same model and batch, per model.

    .venv/bin/python benchmarks/bench_train.py [--models simple_cnn,mini_xception] [--seconds 10]
    .venv/bin/python benchmarks/bench_train.py --models fer_resnet --model-kwargs '{"widths": [32, 64, 128, 256]}' \
        --channels-last on --precision fp32,bf16 --batch-size 128

For each model and memory format (channels_last on/off) it alternates short chunks of the bare loop (normalised
float tensors ready in memory: forward, cross-entropy, backward, Adam step) and of `ferlab.train.engine.
train_one_epoch` (uint8 batches indexed from memory, augmentation "none" and "standard", normalisation, loss,
step, metrics), and prints the median images/s of each, the ratio ferlab/bare, and seconds per FER2013 epoch
(28,709 images) with the standard augmentation. Alternating keeps the comparison fair on a shared machine.
`--precision bf16` runs both loops' forward pass under bfloat16 autocast (ferlab.train.engine.PRECISIONS).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import statistics
import time

import torch
import torch.nn.functional as F

from ferlab.data.augment import AUGMENT_PRESETS
from ferlab.models import create_model, list_models
from ferlab.models.profile import count_params, mflops
from ferlab.train.engine import PRECISIONS, StepSettings, autocast, train_one_epoch
from ferlab.train.losses import build_loss
from ferlab.train.optim import Schedule, build_optimizer

FER2013_TRAIN = 28_709
DEFAULT_MODELS = ("simple_cnn", "mini_xception", "vgg_fer", "cbam_resnet", "resnet18_fer")


def _bare_chunk(model, opt, x, y, batch: int, steps: int,  # noqa: ANN001
                forward_context=contextlib.nullcontext) -> float:  # noqa: ANN001
    start = time.perf_counter()
    for i in range(steps):
        lo = (i * batch) % (len(x) - batch + 1)
        with forward_context():
            logits = model(x[lo:lo + batch])
        loss = F.cross_entropy(logits.float(), y[lo:lo + batch])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps * batch / (time.perf_counter() - start)


def _engine_chunk(model, opt, sched, loss_fn, images, labels, settings, batch: int, steps: int,  # noqa: ANN001
                  gen: torch.Generator) -> float:
    order = torch.randperm(len(images), generator=gen)[: steps * batch]
    start = time.perf_counter()
    train_one_epoch(model, opt, sched, loss_fn, images, labels, order, settings, gen, batch_size=batch)
    return len(order) / (time.perf_counter() - start)


def bench_model(name: str, *, batch: int, seconds: float, chunk_steps: int, channels_last: bool,
                precision: str = "fp32", model_kwargs: dict | None = None) -> dict:
    torch.manual_seed(0)
    model = create_model(name, **(model_kwargs or {}))
    cfg = model.ferlab_cfg
    c, h, w = cfg.input_size
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt).train()
    n = batch * chunk_steps * 2
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 1, h, w), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, cfg.num_classes, (n,), generator=gen)
    mean = torch.tensor(cfg.mean).view(1, -1, 1, 1)
    std = torch.tensor(cfg.std).view(1, -1, 1, 1)
    x = ((images.float() / 255).expand(-1, c, -1, -1) - mean) / std
    x = x.contiguous(memory_format=fmt)
    opt = build_optimizer("adam", model, lr=1e-4, momentum=0.9, weight_decay=0.0)
    sched = Schedule(opt, "none", total_steps=10**9)
    loss_fn = build_loss("ce")
    settings = {aug: StepSettings(num_classes=cfg.num_classes, mean=tuple(cfg.mean), std=tuple(cfg.std), in_chans=c,
                                  augment=AUGMENT_PRESETS[aug], channels_last=channels_last,
                                  precision=precision)
                for aug in ("none", "standard")}
    forward_context = functools.partial(autocast, settings["none"])
    _bare_chunk(model, opt, x, labels, batch, 1, forward_context)  # warm-up
    _engine_chunk(model, opt, sched, loss_fn, images, labels, settings["standard"], batch, 1, gen)
    rates: dict[str, list[float]] = {"bare": [], "none": [], "standard": []}
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(rates["bare"]) < 2:
        rates["bare"].append(_bare_chunk(model, opt, x, labels, batch, chunk_steps, forward_context))
        for aug in ("none", "standard"):
            rates[aug].append(_engine_chunk(model, opt, sched, loss_fn, images, labels, settings[aug], batch,
                                            chunk_steps, gen))
    med = {k: statistics.median(v) for k, v in rates.items()}
    flops = mflops(model.to(memory_format=torch.contiguous_format), cfg.input_size)
    return {"model": name, "params": count_params(model), "mflops": flops,
            "channels_last": channels_last, "precision": precision,
            "bare": med["bare"], "none": med["none"], "standard": med["standard"],
            "chunks": len(rates["bare"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated registry names")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring time per model and memory format")
    parser.add_argument("--chunk-steps", type=int, default=3, help="optimisation steps per alternating chunk")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--channels-last", default="off,on", help="memory formats to measure: off,on")
    parser.add_argument("--precision", default="fp32", help=f"comma-separated: {', '.join(PRECISIONS)}")
    parser.add_argument("--model-kwargs", default="{}", help="JSON options passed to every model's builder")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    known = set(list_models())
    models = [m for m in args.models.split(",") if m in known]
    skipped = [m for m in args.models.split(",") if m not in known]
    if not models:
        parser.error(f"no known model in --models {args.models}; choose from {', '.join(sorted(known))}")
    bad_formats = [f for f in args.channels_last.split(",") if f not in ("on", "off")]
    if bad_formats:
        parser.error(f"--channels-last takes on and/or off, got {', '.join(bad_formats)}")
    formats = [f == "on" for f in args.channels_last.split(",")]
    precisions = args.precision.split(",")
    unknown = [p for p in precisions if p not in PRECISIONS]
    if unknown:
        parser.error(f"unknown precision {', '.join(unknown)}; choose from {', '.join(PRECISIONS)}")
    model_kwargs = json.loads(args.model_kwargs)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}, Adam, CPU"
          + (f", model options {model_kwargs}" if model_kwargs else "")
          + (f"; not registered: {', '.join(skipped)}" if skipped else ""))
    header = ("| model | params | MFLOPs | channels_last | precision | bare img/s | ferlab img/s (aug none) | ratio | "
              "ferlab img/s (aug standard) | ratio | s / FER2013 epoch |")
    print(header)
    print("|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for name in models:
        for cl, precision in ((cl, p) for cl in formats for p in precisions):
            r = bench_model(name, batch=args.batch_size, seconds=args.seconds, chunk_steps=args.chunk_steps,
                            channels_last=cl, precision=precision, model_kwargs=model_kwargs)
            print(f"| {name} | {r['params'] / 1e6:.2f} M | {r['mflops']:.0f} | {'on' if cl else 'off'} | {precision} | "
                  f"{r['bare']:.0f} | {r['none']:.0f} | {r['none'] / r['bare']:.0%} | {r['standard']:.0f} | "
                  f"{r['standard'] / r['bare']:.0%} | {FER2013_TRAIN / r['standard']:.0f} |", flush=True)


if __name__ == "__main__":
    from _cli import run

    run(main)
