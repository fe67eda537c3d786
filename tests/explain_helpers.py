"""Shared pieces of the explanation tests: a run trained once on tiny synthetic faces, and an exact linear model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from ferlab.data.synthetic import synthetic_faces, write_image_folder

CLASSES = ("angry", "happy", "sad")


def train_tiny_run(root: Path, *, n_per_class: int, seed: int) -> dict:
    """sequential_small trained 1 epoch on synthetic 3-class faces under `root`: checkpoint, data folder, one crop."""
    from ferlab.train import TrainConfig, fit

    faces = synthetic_faces(n_per_class=n_per_class, classes=CLASSES, seed=seed)
    data = write_image_folder(faces, root / "fer", "fer2013")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FERLAB_CACHE_DIR", str(root / "cache"))
        run = fit(TrainConfig(model="sequential_small", data=str(data), epochs=1, batch_size=8, augment="none",
                              val_fraction=0.2, out=str(root / "run"), progress=False))
    crop = root / "face.png"
    Image.fromarray(faces.images[0]).save(crop)
    return {"ckpt": run / "best.pt", "crop": crop, "root": root, "data": data,
            "n_test": int((faces.splits == "test").sum())}


class LinearTwoClass(nn.Module):
    """Two-class linear model on 1-channel images: the exact contribution of each pixel is w * x."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = (x[:, 0] * self.w).sum(dim=(1, 2))
        return torch.stack([s, -s], dim=1)
