"""Read a multipart upload into memory with a hard size cap: nothing is ever spooled to disk.

Starlette's form parser spools files above 1 MB to a temporary file; we stream the body ourselves through
python-multipart's parser instead, and stop reading as soon as the cap is passed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request
from python_multipart.multipart import MultipartParseError, MultipartParser, MultipartState, parse_options_header

from ferlab.serve.errors import ApiError

__all__ = ["FormPart", "read_multipart"]

#: Room for boundaries, part headers and small text fields on top of the file itself.
FORM_OVERHEAD_BYTES = 64 * 1024
#: The forms have at most four fields; a body of thousands of tiny parts would only keep the event loop busy.
MAX_FORM_PARTS = 16


@dataclass
class FormPart:
    """One field of a multipart form: its name, the file name if any, and the raw bytes."""

    name: str
    filename: str | None = None
    content_type: str | None = None
    data: bytearray = field(default_factory=bytearray)

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace").strip()


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"upload is larger than the limit of {limit:,} bytes")


class _Collector:
    """python-multipart callbacks that gather parts in memory."""

    def __init__(self) -> None:
        self.parts: list[FormPart] = []
        self._headers: dict[str, str] = {}
        self._field = bytearray()
        self._value = bytearray()
        self._current: FormPart | None = None

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self._field.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._value.extend(d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": lambda d, s, e: self._current.data.extend(d[s:e]) if self._current else None,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        if len(self.parts) >= MAX_FORM_PARTS:
            raise ApiError(400, "too_many_parts", f"the form has more than {MAX_FORM_PARTS} fields")
        self._headers = {}

    def _header_end(self) -> None:
        self._headers[self._field.decode("latin-1").lower()] = self._value.decode("latin-1")
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get("content-disposition", ""))
        name = params.get(b"name", b"").decode("utf-8", errors="replace")
        filename = params.get(b"filename")
        self._current = FormPart(
            name=name,
            filename=filename.decode("utf-8", errors="replace") if filename is not None else None,
            content_type=self._headers.get("content-type"),
        )

    def _part_end(self) -> None:
        if self._current is not None:
            self.parts.append(self._current)
        self._current = None


async def read_multipart(request: Request, max_file_bytes: int) -> dict[str, FormPart]:
    """Parse a `multipart/form-data` body of at most `max_file_bytes` (+ form overhead) held in memory.

    Raises ApiError 415 for another content type, 413 past the cap (checked on Content-Length first,
    then while streaming), 400 for a malformed body. The first part of each name wins.
    """
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise ApiError(415, "unsupported_media_type", "send the image as multipart/form-data with a field 'file'")
    limit = max_file_bytes + FORM_OVERHEAD_BYTES
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(max_file_bytes)
    collector = _Collector()
    parser = MultipartParser(params[b"boundary"], collector.callbacks())
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise _too_large(max_file_bytes)
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as err:
        raise ApiError(400, "malformed_form", f"multipart body cannot be parsed: {err}") from err
    if parser.state != MultipartState.END:  # a cut-off body looked like a form without its file (422 missing_file)
        raise ApiError(400, "malformed_form", "multipart body ends before its closing boundary (truncated upload?)")
    form: dict[str, FormPart] = {}
    for part in collector.parts:
        form.setdefault(part.name, part)
    file_part = form.get("file")
    if file_part is not None and len(file_part.data) > max_file_bytes:
        raise _too_large(max_file_bytes)
    return form
