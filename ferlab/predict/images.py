"""Decode any image PIL or OpenCV can read into RGB uint8, EXIF-rotated, with a decompression-bomb guard."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from ferlab.errors import ImageDecodeError, SourceNotFoundError

__all__ = ["MAX_PIXELS", "load_image", "as_rgb"]

#: Largest image accepted (pixels). An 8,000 x 8,000 photo passes; a 30k x 30k "bomb" does not.
MAX_PIXELS = 64_000_000


def _check_size(width: int, height: int, max_pixels: int, prefix: str) -> None:
    if width * height > max_pixels:
        raise ImageDecodeError(
            f"{prefix}image of {width}x{height} pixels exceeds the {max_pixels:,}-pixel limit"
            " (decompression-bomb guard)"
        )


def _decode_pil(data: bytes, prefix: str, max_pixels: int) -> np.ndarray | None:
    from PIL import Image, ImageOps, UnidentifiedImageError

    from ferlab.data.decode import WIDE_RANGE_MODES, gray_8bit

    try:
        with Image.open(io.BytesIO(data)) as img:
            _check_size(img.width, img.height, max_pixels, prefix)
            img = ImageOps.exif_transpose(img)
            if img.mode in WIDE_RANGE_MODES:  # 16-bit, 32-bit or float data: scaled, not clipped to white
                img = gray_8bit(img)
            return np.asarray(img.convert("RGB"))
    except UnidentifiedImageError:
        return None
    except Image.DecompressionBombError as err:
        raise ImageDecodeError(f"{prefix}refused as a decompression bomb ({err})") from None
    except (OSError, ValueError, SyntaxError) as err:  # truncated / corrupt data PIL recognised
        raise ImageDecodeError(f"{prefix}corrupt or truncated image ({err})") from None


def _decode_cv2(data: bytes, prefix: str, max_pixels: int) -> np.ndarray | None:
    import cv2

    buf = np.frombuffer(data, dtype=np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if img is None:
        return None
    _check_size(img.shape[1], img.shape[0], max_pixels, prefix)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def load_image(path_or_bytes: str | os.PathLike | bytes, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file (or its bytes) into an RGB uint8 H x W x 3 array, respecting EXIF orientation.

    Raises ImageDecodeError for empty, corrupt, non-image or oversized input; SourceNotFoundError for a missing path.
    """
    if isinstance(path_or_bytes, bytes | bytearray | memoryview):
        data, prefix = bytes(path_or_bytes), ""  # uploaded bytes have no name to put before the message
    else:
        path = Path(path_or_bytes)
        prefix = f"{path}: "
        if not path.is_file():
            raise SourceNotFoundError(f"{prefix}no such file")
        try:
            data = path.read_bytes()
        except OSError as err:
            raise ImageDecodeError(f"{prefix}cannot read file ({err.strerror or err})") from None
    if not data:
        raise ImageDecodeError(f"{prefix}empty file (0 bytes)")
    rgb = _decode_pil(data, prefix, max_pixels)
    if rgb is None:
        rgb = _decode_cv2(data, prefix, max_pixels)
    if rgb is None:
        raise ImageDecodeError(f"{prefix}not an image that PIL or OpenCV can decode")
    return np.ascontiguousarray(rgb)


def as_rgb(image: Any, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Path, bytes, PIL image or numpy array (gray, RGB or RGBA) -> RGB uint8 H x W x 3."""
    if isinstance(image, str | os.PathLike | bytes | bytearray | memoryview):
        return load_image(image, max_pixels=max_pixels)
    if hasattr(image, "convert") and hasattr(image, "size"):  # PIL image
        from PIL import ImageOps

        from ferlab.data.decode import WIDE_RANGE_MODES, gray_8bit

        image = ImageOps.exif_transpose(image)
        if image.mode in WIDE_RANGE_MODES:  # 16-bit, 32-bit or float: scaled as files are, not clipped to white
            image = gray_8bit(image)
        return np.asarray(image.convert("RGB"))
    try:
        arr = np.asarray(image)
    except (TypeError, ValueError) as err:
        raise ImageDecodeError(f"not an image: {type(image).__name__} ({err})") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or arr.size == 0:
        raise ImageDecodeError(f"not an image: expected a path, bytes, a PIL image or a non-empty numeric array, got "
                               f"{type(image).__name__}" + (f" of dtype {arr.dtype}, shape {arr.shape}"
                                                             if isinstance(image, np.ndarray) else ""))
    if arr.dtype != np.uint8:
        if arr.dtype in (np.uint16, np.int32, np.uint32) and arr.max() > 255 and arr.min() >= 0 \
                and arr.max() <= 65535:  # 16-bit data: value >> 8, the data layer's rule
            arr = (arr.astype(np.uint32) >> 8).astype(np.uint8)
        elif np.issubdtype(arr.dtype, np.floating) and float(np.nanmax(arr)) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.nan_to_num(np.asarray(arr, dtype=np.float64)), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        return np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        return np.ascontiguousarray(arr[:, :, :3])
    if arr.ndim == 3 and arr.shape[2] == 1:
        return np.repeat(arr, 3, axis=2)
    raise ImageDecodeError(f"expected an H x W, H x W x 3 or H x W x 4 image array, got shape {arr.shape}")
