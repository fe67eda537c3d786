"""Flush-to-zero: loading a torch classifier (and training) turns it on; it changes no probability."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ferlab.labels import EMOTIONS
from ferlab.models import create_model
from ferlab.train.checkpoint import FORMAT, VERSION, TorchClassifier, flush_denormals, save_checkpoint


def _flushing() -> bool:
    return torch.tensor([1e-323], dtype=torch.float64).mul(1.0).item() == 0.0


def test_torch_classifier_turns_flushing_on_and_outputs_do_not_change(tmp_path) -> None:
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU has no flush-to-zero flags")
    torch.set_flush_denormal(False)  # as if something had turned it off since ferlab was imported
    torch.manual_seed(0)
    model = create_model("simple_cnn")
    with torch.no_grad():  # push part of the first layer into the subnormal range
        model.state_dict()[next(iter(model.state_dict()))].mul_(1e-37)
    ckpt = {"format": FORMAT, "version": VERSION, "model_name": "simple_cnn", "model_kwargs": {},
            "classes": list(EMOTIONS), "image_size": 48, "config": {}, "epoch": 0, "metrics": {},
            "model_state": model.state_dict()}
    save_checkpoint(tmp_path / "m.pt", ckpt)
    faces = np.random.default_rng(0).integers(0, 256, (8, 48, 48), dtype=np.uint8)
    clf = TorchClassifier.from_checkpoint(ckpt)
    assert _flushing()
    flushed = clf.predict_proba(faces)
    torch.set_flush_denormal(False)
    kept = clf.predict_proba(faces)
    np.testing.assert_allclose(flushed, kept, atol=1e-6)
    assert flush_denormals() and _flushing()
