"""JSON errors for the API: one exception type and the handlers that turn every failure into the same shape."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ferlab.errors import FerlabError

__all__ = ["ApiError", "error_body", "install_error_handlers"]

log = logging.getLogger("ferlab.serve")


class ApiError(Exception):
    """A request we refuse, with its HTTP status, a stable machine code and a message a user can act on."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def error_body(code: str, message: str) -> dict:
    """The one error shape of the API: `{"error": {"code": ..., "message": ...}}`."""
    return {"error": {"code": code, "message": message}}


def _json(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type"}


def install_error_handlers(app: FastAPI) -> None:
    """Route API errors, library errors, framework errors and crashes through the JSON error shape."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, err: ApiError) -> JSONResponse:
        return _json(err.status, err.code, err.message, err.headers)

    @app.exception_handler(FerlabError)
    async def _ferlab_error(_: Request, err: FerlabError) -> JSONResponse:
        return _json(422, "unprocessable", str(err))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _json(422, "invalid_request", f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
        return _json(err.status_code, _HTTP_CODES.get(err.status_code, "http_error"), str(err.detail), err.headers)

    @app.exception_handler(Exception)
    async def _crash(_: Request, err: Exception) -> JSONResponse:
        log.exception("unhandled error while serving a request")
        return _json(500, "internal_error", f"internal server error ({type(err).__name__}); see the server log")
