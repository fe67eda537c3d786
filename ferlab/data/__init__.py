"""Data layer: sources -> decoded uint8 cache -> FaceDataset; class schemes, splits, audit, augmentation."""

from ferlab.data.dataset import SPLITS, FaceDataset
from ferlab.data.schemes import PRESETS, ClassScheme, resolve_scheme

__all__ = ["FaceDataset", "SPLITS", "ClassScheme", "PRESETS", "resolve_scheme", "load"]


def load(source, **kwargs) -> FaceDataset:  # noqa: ANN001 - thin lazy wrapper, see ferlab.data.loader.load
    """Load any supported source (FER2013 zip/folder/CSV, class-per-folder) into a cached FaceDataset."""
    from ferlab.data.loader import load as _load

    return _load(source, **kwargs)
