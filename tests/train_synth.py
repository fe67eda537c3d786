"""Tiny synthetic face datasets for the training tests: each class draws its own learnable pattern."""

from __future__ import annotations

import numpy as np

from ferlab.data import FaceDataset
from ferlab.labels import EMOTIONS


def make_dataset(per_class: int = 20, size: int = 48, classes: tuple[str, ...] = EMOTIONS, seed: int = 0,
                 test_per_class: int = 0) -> FaceDataset:
    """`per_class` train (+ `test_per_class` test) images per class: a bright bar whose row depends on the class."""
    rng = np.random.default_rng(seed)
    images, labels, splits = [], [], []
    for k in range(len(classes)):
        for i in range(per_class + test_per_class):
            img = rng.integers(0, 60, (size, size)).astype(np.uint8)
            row = int((k + 0.5) * size / len(classes))
            img[max(row - 2, 0):row + 2, 4:size - 4] = 220
            images.append(img)
            labels.append(k)
            splits.append("train" if i < per_class else "test")
    n = len(images)
    return FaceDataset(
        images=np.stack(images), labels=np.asarray(labels, dtype=np.int64), splits=np.asarray(splits),
        classes=tuple(classes), ids=np.asarray([f"synth/{i}.png" for i in range(n)]),
        hashes=np.asarray([f"h{i}" for i in range(n)]), source="synthetic", fingerprint="synthetic",
    )
