"""Slim inference checkpoints: keep what a Classifier needs, drop optimiser/RNG state, optionally store fp16 weights.

fp16 storage halves the file (the bundled model must stay under 20 MB); weights are cast back to float32 when
loaded (`load_state_dict` copies into the model's float32 parameters), so inference still runs in fp32.
"""

from __future__ import annotations

from pathlib import Path

from ferlab.errors import CheckpointError, ConfigError
from ferlab.train.checkpoint import load_checkpoint, save_checkpoint

__all__ = ["INFERENCE_KEYS", "slim_checkpoint"]

#: Checkpoint keys an inference-only file keeps.
INFERENCE_KEYS = ("format", "version", "model_name", "model_kwargs", "classes", "image_size", "config", "epoch",
                  "metrics", "model_state", "estimator", "elapsed_seconds", "data_fingerprint", "val_digest")


def slim_checkpoint(source: str | Path, out: str | Path, *, half: bool = False) -> Path:
    """Write `out` (atomically) holding only INFERENCE_KEYS of `source`; `half` stores float weights as fp16."""
    ckpt = load_checkpoint(source)
    if "model_state" not in ckpt and "estimator" not in ckpt:
        raise CheckpointError(f"{source} holds no model weights to bundle")
    if half and "model_state" not in ckpt:  # it printed "fp16 weights" and wrote the estimator unchanged
        raise ConfigError(f"--half stores network weights as fp16; {source} holds a classical estimator, which "
                          "has none (bundle it without --half)")
    slim = {k: ckpt[k] for k in INFERENCE_KEYS if k in ckpt}
    if half:
        slim["model_state"] = {k: v.half() if v.is_floating_point() else v for k, v in slim["model_state"].items()}
        slim["weights_dtype"] = "float16"
    return save_checkpoint(out, slim)
