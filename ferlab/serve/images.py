"""Check an uploaded image before decoding it: format from the bytes' magic, size from the header only."""

from __future__ import annotations

import io
import warnings

import numpy as np

from ferlab.data.decode import pil_error_text
from ferlab.errors import DataError
from ferlab.serve.errors import ApiError

__all__ = ["ACCEPTED_FORMATS", "sniff_format", "check_header", "decode_image"]

#: Magic prefixes of the formats we accept, mapped to their MIME type. The name and the declared
#: content type of an upload are never trusted.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)
ACCEPTED_FORMATS: tuple[str, ...] = ("image/jpeg", "image/png", "image/webp", "image/bmp", "image/gif", "image/tiff")


def sniff_format(data: bytes | bytearray) -> str | None:
    """MIME type of `data` judged from its first bytes, or None when it is not an image we accept."""
    head = bytes(data[:16])
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return next((mime for magic, mime in _MAGIC if head.startswith(magic)), None)


def check_header(data: bytes | bytearray, max_pixels: int) -> tuple[str, int, int]:
    """Return (mime, width, height) read from the header alone; refuse non-images (415) and bombs (413).

    PIL's `Image.open` is lazy: it parses the header without decoding pixels, so a 50000 x 50000 PNG
    of a few hundred bytes is refused here before it can allocate gigabytes.
    """
    from PIL import Image

    mime = sniff_format(data)
    if mime is None:
        raise ApiError(415, "unsupported_media_type",
                       f"the upload is not an image ({', '.join(ACCEPTED_FORMATS)}), judging from its content")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(bytes(data))) as img:
                width, height = img.size
    except Image.DecompressionBombError as err:
        raise ApiError(413, "image_too_large", f"image refused as a decompression bomb: {err}") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise ApiError(422, "bad_image", f"image header cannot be read: {pil_error_text(err)}") from err
    if width * height > max_pixels:
        raise ApiError(413, "image_too_large",
                       f"image is {width} x {height} = {width * height:,} pixels; the limit is {max_pixels:,}")
    return mime, width, height


def decode_image(data: bytes | bytearray, max_pixels: int) -> np.ndarray:
    """Decode a checked upload to RGB uint8 through the shared loader; a corrupt body becomes a 422."""
    from ferlab.predict.faces import load_image

    try:
        return load_image(bytes(data), max_pixels=max_pixels)
    except DataError as err:
        raise ApiError(422, "bad_image", str(err)) from err
