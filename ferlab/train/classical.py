"""Fit a classical estimator (`hog_svm`, `landmark_svm`) into a normal run directory, and load it back.

The checkpoint holds the fitted estimator as pickled bytes under "estimator" (so `load_checkpoint`'s
weights-only torch load still reads it); `ClassicalClassifier` is the `load_classifier` backend for it.
Unpickling runs code: load classical checkpoints only from sources you trust, as with any pickle.
"""

from __future__ import annotations

import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ferlab.data.dataset import FaceDataset
from ferlab.errors import CheckpointError, ConfigError
from ferlab.train.checkpoint import Classifier, save_checkpoint
from ferlab.train.config import TrainConfig
from ferlab.train.data_prep import prepare_data

__all__ = ["fit_classical", "ClassicalClassifier", "estimator_proba", "count_parameters"]


def estimator_proba(estimator: Any, images: np.ndarray, num_classes: int) -> np.ndarray:
    """N x C probabilities in class-index order, with zero columns for classes the estimator never saw."""
    raw = estimator.predict_proba(images)
    out = np.zeros((len(images), num_classes), dtype=np.float32)
    out[:, np.asarray(estimator.classes_, dtype=int)] = raw
    return out


def count_parameters(estimator: Any) -> int:
    """Learned numbers in a fitted scikit-learn estimator: sizes of its float array attributes, recursively."""
    seen: set[int] = set()

    def walk(obj: Any) -> int:
        if id(obj) in seen:
            return 0
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            return int(obj.size) if obj.dtype.kind in "fc" else 0
        if isinstance(obj, list | tuple):
            return sum(walk(o) for o in obj)
        if type(obj).__module__.split(".")[0] in ("sklearn", "ferlab") and hasattr(obj, "__dict__"):
            return sum(walk(v) for v in vars(obj).values())
        return 0

    return walk(estimator)


def _scores(estimator: Any, images: np.ndarray, labels: np.ndarray, num_classes: int) -> dict[str, float]:
    probs = estimator_proba(estimator, images, num_classes)
    picked = np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1.0)
    return {"loss": float(-np.log(picked).mean()), "accuracy": float((probs.argmax(1) == labels).mean())}


def fit_classical(cfg: TrainConfig, dataset: FaceDataset | None = None) -> Path:
    """Fit `cfg.model` on the train split, score it on the carved val split, write the run dir; return it."""
    from ferlab.models.classical import create_estimator, get_classical_spec
    from ferlab.train.artifacts import plot_curves, write_config, write_metrics_csv, write_summary

    spec = get_classical_spec(cfg.model)
    options = dict(cfg.model_kwargs or {})
    if "seed" in spec.options():
        options.setdefault("seed", cfg.seed)
    estimator = create_estimator(cfg.model, **options)
    # Same class scheme, --limit and validation carve as torch models; the test split is dropped unseen.
    data = prepare_data(cfg, cfg.image_size or 48, dataset)
    classes, num_classes = list(data.classes), len(data.classes)
    x_train, y_train = data.train_images[:, 0].numpy(), data.train_labels.numpy()
    x_val, y_val = data.val_images[:, 0].numpy(), data.val_labels.numpy()
    out = Path(cfg.out)
    if (out / "last.pt").exists():
        raise ConfigError(f"{out} already holds a training run; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    write_config(out / "config.yaml", cfg.to_yaml())

    start = time.perf_counter()
    estimator.fit(x_train, y_train)
    train_seconds = time.perf_counter() - start
    tr, va = _scores(estimator, x_train, y_train, num_classes), _scores(estimator, x_val, y_val, num_classes)
    row = {"epoch": 1, "lr": 0.0, "train_loss": tr["loss"], "train_accuracy": tr["accuracy"], "val_loss": va["loss"],
           "val_accuracy": va["accuracy"], "seconds": train_seconds,
           "images_per_second": len(y_train) / max(train_seconds, 1e-9), "partial": 0}
    metrics = {k: v for k, v in row.items() if k not in ("epoch", "partial")}
    ckpt = {"model_name": cfg.model, "model_kwargs": dict(cfg.model_kwargs or {}), "family": spec.family,
            "classes": classes, "image_size": int(x_train.shape[-1]), "config": cfg.to_dict(),
            "epoch": 1, "metrics": metrics, "elapsed_seconds": train_seconds, "data_fingerprint": data.fingerprint,
            "val_digest": data.val_digest, "estimator": pickle.dumps(estimator, protocol=pickle.HIGHEST_PROTOCOL)}
    save_checkpoint(out / "best.pt", ckpt)
    save_checkpoint(out / "last.pt", ckpt)
    write_metrics_csv(out / "metrics.csv", [row])
    plot_curves(out / "curves.png", [row], title=f"{cfg.model} (single fit)")
    write_summary(out / "summary.json", {
        "model": cfg.model, "classes": classes, "epochs_done": 1, "epochs": 1, "best_epoch": 1,
        "best_val_accuracy": va["accuracy"], "train_seconds": round(train_seconds, 3),
        "train_images_per_second": round(row["images_per_second"], 2), "elapsed_seconds": round(train_seconds, 3),
        "finished": True, "stop_reason": "fitted", "train_images": len(y_train), "val_images": len(y_val),
        "device": "cpu", "world_size": 1, "params": count_parameters(estimator)})
    return out


class ClassicalClassifier(Classifier):
    """`load_classifier` backend for checkpoints holding a fitted scikit-learn estimator (no torch model)."""

    def __init__(self, estimator: Any, classes: tuple[str, ...], model_name: str, image_size: int,
                 info: dict[str, Any]) -> None:
        super().__init__(classes, model_name, image_size, info)
        self.estimator = estimator

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> ClassicalClassifier:
        blob = ckpt["estimator"]
        try:
            estimator = pickle.loads(blob) if isinstance(blob, bytes | bytearray) else blob
        except (pickle.UnpicklingError, AttributeError, ImportError, EOFError, TypeError) as err:
            raise CheckpointError(f"cannot unpickle the estimator of '{ckpt.get('model_name', '?')}' "
                                  f"(written by another scikit-learn?): {str(err)[:200]}") from None
        info = {k: v for k, v in ckpt.items() if k != "estimator"}
        return cls(estimator, tuple(ckpt["classes"]), ckpt["model_name"], int(ckpt.get("image_size") or 48), info)

    def _proba_batch(self, images: torch.Tensor) -> np.ndarray:
        return estimator_proba(self.estimator, images.cpu().numpy(), len(self.classes))
