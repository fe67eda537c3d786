"""Decode one image file into a grayscale uint8 square: the resize policy every image source shares.

Policy (also in the README, "Data"):
1. Refuse absurd dimensions before decoding: more than `MAX_IMAGE_PIXELS` pixels or a side over
   `MAX_IMAGE_SIDE` (PIL's own bomb check is looser).
2. Apply the EXIF orientation when present.
3. Grayscale: 8-bit modes use PIL's ITU-R 601 luma (`convert("L")`); alpha (RGBA, LA, P with
   transparency) is composited over black; 16-bit images keep their full range (value >> 8), and so do
   32-bit integer images whose values fit in 16 bits (PIL opens 16-bit PGM/PPM as 32-bit); other 32-bit
   integer and float images are rescaled from their min..max to 0..255.
4. Center-crop to a square on the shorter side, then resize to `size` x `size`: area averaging
   (`BOX`) when shrinking, bicubic when enlarging. Images already `size` x `size` are not resampled.
"""

from __future__ import annotations

import io
import math
import re

import numpy as np
from PIL import Image, ImageOps

from ferlab.errors import ImageDecodeError, UnsafeArchiveError

__all__ = ["MAX_IMAGE_PIXELS", "MAX_IMAGE_SIDE", "RESIZE_POLICY", "WIDE_RANGE_MODES", "decode_image", "gray_8bit",
           "pil_error_text", "to_square_gray"]

#: Largest image accepted (40 megapixels) and largest side (20,000 px): beyond that it is not a face photo.
MAX_IMAGE_PIXELS = 40_000_000
MAX_IMAGE_SIDE = 20_000
#: One-line description stored in the dataset meta and part of the cache key.
RESIZE_POLICY = "gray(luma, alpha over black, 16-bit>>8); center-crop square; BOX down / BICUBIC up; v2"

_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N"}
#: Errors PIL and zlib raise on damaged files: reported as corrupt, never as a crash.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError)


#: PIL modes whose values go beyond 0-255: `convert("RGB")` clips them (a 16-bit face turns nearly white).
WIDE_RANGE_MODES = frozenset(_SIXTEEN_BIT | {"I", "F"})


def gray_8bit(im: Image.Image) -> Image.Image:
    """Any PIL image -> 8-bit grayscale (mode L) by the resize policy's rules: 16-bit >> 8, other integer or float
    data scaled to its range, alpha over black. Photo decoders use it for WIDE_RANGE_MODES."""
    return _gray(im)


def _gray(im: Image.Image) -> Image.Image:
    """Any PIL mode -> mode L, following the policy in the module docstring."""
    mode = im.mode
    if mode == "L":
        return im
    if mode in _SIXTEEN_BIT:
        return Image.fromarray((np.asarray(im, dtype=np.uint16) >> 8).astype(np.uint8))
    if mode in ("I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        if mode == "I" and lo >= 0 and hi <= 255:
            return Image.fromarray(arr.astype(np.uint8))
        if mode == "I" and lo >= 0 and hi <= 65535:  # 16-bit data in a 32-bit mode (PGM/PPM with maxval > 255)
            return Image.fromarray((arr.astype(np.uint32) >> 8).astype(np.uint8))
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in im.info):
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float32)
        luma = rgba[..., 0] * 0.299 + rgba[..., 1] * 0.587 + rgba[..., 2] * 0.114
        return Image.fromarray(np.clip(np.rint(luma * rgba[..., 3] / 255.0), 0, 255).astype(np.uint8))
    if mode in ("RGB", "P", "1"):
        return im.convert("L")
    return im.convert("RGB").convert("L")  # CMYK, YCbCr, LAB, HSV, ...


def to_square_gray(im: Image.Image, size: int) -> np.ndarray:
    """An opened PIL image -> uint8 `size` x `size` array (grayscale, center-crop, area/bicubic resize)."""
    if "exif" in im.info:
        im = ImageOps.exif_transpose(im)
    gray = _gray(im)
    w, h = gray.size
    if (w, h) == (size, size):
        return np.asarray(gray, dtype=np.uint8)
    side = min(w, h)
    left, top = (w - side) / 2.0, (h - side) / 2.0
    resample = Image.Resampling.BOX if side >= size else Image.Resampling.BICUBIC
    out = gray.resize((size, size), resample, box=(left, top, left + side, top + side))
    return np.asarray(out, dtype=np.uint8)


def decode_image(data: bytes, size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode encoded image bytes -> (uint8 `size` x `size` array, original (width, height)).

    Raises `UnsafeArchiveError` for absurd dimensions and `ImageDecodeError` for damaged or unknown files.
    """
    if not data:
        raise ImageDecodeError("empty file (0 bytes)")
    try:
        im = Image.open(io.BytesIO(data))
        w, h = im.size
        if max(w, h) > MAX_IMAGE_SIDE:
            raise UnsafeArchiveError(f"absurd image dimensions {w}x{h} (limit {MAX_IMAGE_SIDE:,} px per side)")
        if w * h > MAX_IMAGE_PIXELS:
            raise UnsafeArchiveError(f"absurd image dimensions {w}x{h} (limit {MAX_IMAGE_PIXELS:,} pixels)")
        if im.format == "JPEG" and min(w, h) > 2 * size:
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale: same result after the area resize, much faster.
            scale = size / min(w, h)
            im.draft("L" if im.mode in ("L", "RGB", "YCbCr") else im.mode, (math.ceil(w * scale), math.ceil(h * scale)))
        return to_square_gray(im, size), (w, h)
    except Image.DecompressionBombError as err:
        raise UnsafeArchiveError(f"absurd image dimensions ({err})") from err
    except UnsafeArchiveError:
        raise
    except _DECODE_ERRORS as err:
        raise ImageDecodeError(f"{type(err).__name__}: {pil_error_text(err)}") from err


def pil_error_text(err: Exception) -> str:
    """PIL's error message without the in-memory buffer it names ("<_io.BytesIO object at 0x...>"), which says
    nothing to a user and differs on every run."""
    return re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-f]+>", "", str(err)) or type(err).__name__
