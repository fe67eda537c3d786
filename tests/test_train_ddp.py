"""DDP: two CPU processes under torchrun (gloo) train one model; rank 0 alone writes the run directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ferlab.train import load_checkpoint

TESTS = Path(__file__).resolve().parent
SCRIPT = """
import os, sys
sys.path.insert(0, {tests!r})
import torch
from train_synth import make_dataset
from ferlab.train import TrainConfig, fit
from ferlab.train.checkpoint import load_checkpoint
ds = make_dataset(per_class=10, size=24, classes=("angry", "happy", "sad"))
cfg = TrainConfig(model="sequential_small", image_size=24, epochs=2, batch_size=8, out={out!r}, progress=False,
                  threads=1, augment="standard")
fit(cfg, dataset=ds)
"""


@pytest.mark.slow
def test_two_process_ddp_run(tmp_path):
    out = tmp_path / "run"
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT.format(tests=str(TESTS), out=str(out)))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["epochs_done"] == 2 and summary["finished"]
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["world_size"] == 2 and ckpt["epoch"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["model_state"].values() if v.is_floating_point())
    assert len((out / "metrics.csv").read_text().splitlines()) == 3
    assert not list(out.glob(".*.tmp"))
    # one epoch summary line per epoch: only rank 0 reports
    assert proc.stderr.count("epoch 2/2  train loss") == 1
