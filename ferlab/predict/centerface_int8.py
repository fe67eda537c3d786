"""CenterFace quantised to int8 (static QDQ: per-channel int8 weights, uint8 activations), built once into the cache.

Nothing is shipped or downloaded: the int8 copy is derived from the installed fp32 weights at first use, calibrated
on offline face images bundled with scikit-image, and stored atomically under the ferlab cache
(`<cache>/detectors/centerface-int8-<key>.onnx`, the key covering the source weights, ONNX Runtime and this recipe).
When the cache cannot be written the model is kept in memory for the process.
"""

from __future__ import annotations

import hashlib
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["RECIPE", "calibration_images", "int8_model", "int8_model_path", "quantize_centerface"]

#: Bump when the calibration images or quantisation settings change (invalidates cached copies).
RECIPE = 1


def calibration_images() -> list[np.ndarray]:
    """RGB uint8 scenes for calibration: the astronaut and the cameraman at face sizes from ~15 to ~170 px on plain
    and textured backgrounds, plus face-free photos (activation ranges must cover backgrounds too)."""
    import cv2
    from skimage import data

    astronaut, camera = data.astronaut(), np.repeat(data.camera()[..., None], 3, axis=2)
    images = [cv2.resize(astronaut, (512, 512)), cv2.resize(camera, (384, 384)), data.coffee(), data.chelsea()]
    backgrounds = [np.full((384, 640, 3), 90, np.uint8), np.full((384, 640, 3), 230, np.uint8),
                   cv2.resize(data.rocket(), (640, 384))]
    for k, size in enumerate((480, 320, 200, 120, 80)):
        canvas = backgrounds[k % len(backgrounds)].copy()
        h = min(size, canvas.shape[0])
        face = cv2.resize(astronaut if k % 2 == 0 else camera, (h, h), interpolation=cv2.INTER_AREA)
        x = (37 * k) % max(1, canvas.shape[1] - h)
        canvas[:h, x:x + h] = face
        images.append(canvas)
    return images


def _blob(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    blob = np.zeros((1, 3, -(-h // 32) * 32, -(-w // 32) * 32), dtype=np.float32)
    blob[0, :, :h, :w] = rgb.transpose(2, 0, 1)
    return blob


def quantize_centerface(model: Any) -> bytes:
    """Serialized int8 QDQ copy of a CenterFace graph (as made by `detectors.centerface_graph`)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._blobs = iter([_blob(img) for img in calibration_images()])

        def get_next(self) -> dict | None:
            blob = next(self._blobs, None)
            return None if blob is None else {"input.1": blob}

    with tempfile.TemporaryDirectory(prefix="ferlab-quant-") as tmp:
        src, pre, out = Path(tmp, "fp32.onnx"), Path(tmp, "pre.onnx"), Path(tmp, "int8.onnx")
        onnx.save(model, str(src))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)  # folds the batch norms first
            quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8)
        return out.read_bytes()


def int8_model_path(model: Any, cache_dir: str | Path | None = None) -> Path:
    """Where the int8 copy of `model` is cached: `<cache_dir or the ferlab cache>/detectors/centerface-int8-<key>`."""
    import onnxruntime

    from ferlab.data.cache import default_cache_dir

    digest = hashlib.sha256(model.SerializeToString())
    digest.update(f"ort={onnxruntime.__version__};recipe={RECIPE}".encode())
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir() / "detectors"
    return root / f"centerface-int8-{digest.hexdigest()[:16]}.onnx"


def int8_model(model: Any, cache_dir: str | Path | None = None) -> bytes:
    """The int8 copy of `model`: read from the cache, else quantised (a few seconds) and cached atomically."""
    import onnx

    from ferlab.io import atomic_write_bytes

    path = int8_model_path(model, cache_dir)
    if path.is_file():
        payload = path.read_bytes()
        try:
            onnx.load_from_string(payload)
            return payload
        except Exception:  # noqa: BLE001 - a damaged cache file is a miss
            pass
    payload = quantize_centerface(model)
    try:
        atomic_write_bytes(path, payload)
    except OSError as err:  # read-only cache: still usable, rebuilt next process
        warnings.warn(f"could not cache the int8 CenterFace at {path}: {err}", stacklevel=2)
    return payload
