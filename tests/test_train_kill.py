"""Kill -9 a training process mid-run: last.pt still loads and the run resumes to completion."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from train_synth import make_dataset

from ferlab.errors import CheckpointError
from ferlab.labels import EMOTIONS
from ferlab.train import TrainConfig, fit, load_checkpoint

TESTS = Path(__file__).resolve().parent
WORKER = """
import sys
sys.path.insert(0, {tests!r})
from train_synth import make_dataset
from ferlab.train import TrainConfig, fit
ds = make_dataset(per_class=16, size=24, classes={classes!r})
fit(TrainConfig(model="sequential_small", image_size=24, epochs=500, batch_size=4, out={out!r}, progress=False,
                threads=1), dataset=ds)
"""


def _cfg(out: Path, epochs: int) -> TrainConfig:
    return TrainConfig(model="sequential_small", image_size=24, epochs=epochs, batch_size=4, out=str(out),
                       progress=False, threads=1)


@pytest.mark.slow
def test_kill_mid_epoch_then_resume(tmp_path):
    out = tmp_path / "run"
    code = WORKER.format(tests=str(TESTS), classes=EMOTIONS[:4], out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / "metrics.csv").is_file() and len((out / "metrics.csv").read_text().splitlines()) >= 3:
                break  # two epochs done: the third is under way
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        time.sleep(0.15)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    ckpt = load_checkpoint(out / "last.pt")  # never half-written
    done = ckpt["epoch"]
    assert done >= 2
    ds = make_dataset(per_class=16, size=24, classes=EMOTIONS[:4])
    fit(_cfg(out, done + 1), dataset=ds, resume=True)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs_done"] == done + 1 and summary["finished"]
    assert load_checkpoint(out / "last.pt")["epoch"] == done + 1


def test_truncated_last_pt_is_refused_on_resume(tmp_path):
    ds = make_dataset(per_class=8, size=24, classes=EMOTIONS[:2])
    out = fit(_cfg(tmp_path / "run", 1), dataset=ds)
    data = (out / "last.pt").read_bytes()
    (out / "last.pt").write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        fit(_cfg(out, 2), dataset=ds, resume=True)
