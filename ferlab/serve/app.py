"""The FastAPI application: `create_app(predictor)` wires endpoints, limits, the page and offline docs.

No model is loaded here: the caller (the `ferlab serve` command, or a test) passes a ready predictor.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from ferlab.serve.errors import ApiError, install_error_handlers
from ferlab.serve.gate import InferenceGate
from ferlab.serve.images import check_header, decode_image
from ferlab.serve.schemas import ErrorResponse, ExplainResponse, Health, ModelCard, PredictResponse
from ferlab.serve.service import Explainer, PrivateNetworkExplainer, classes_of, face_to_json, model_card, timed
from ferlab.serve.settings import ServeSettings
from ferlab.serve.upload import FormPart, read_multipart

__all__ = ["create_app", "STATIC_DIR"]

log = logging.getLogger("ferlab.serve")
STATIC_DIR = Path(__file__).with_name("static")

_ERRORS = {code: {"model": ErrorResponse} for code in (400, 408, 413, 415, 422, 503, 504)}
_UPLOAD_FIELDS = {
    "file": {"type": "string", "format": "binary", "description": "the photo (JPEG, PNG, WebP, BMP, GIF, TIFF)"},
    "detect": {"type": "boolean", "default": True,
               "description": "find faces; false: the whole image is one face crop (as `--no-detect`)"},
}
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
_EXPLAIN_FIELDS = {
    **_UPLOAD_FIELDS,
    "face_index": {"type": "integer", "default": 0, "description": "which face, left to right (0 = leftmost)"},
    "target": {"type": "string", "description": "class to explain; default: the predicted class"},
    "method": {"type": "string", "default": "gradcam", "description": "attribution method"},
}


def _multipart_doc(fields: dict) -> dict:
    """OpenAPI request body for a multipart form we parse ourselves (so the docs page can upload), plus the same
    fields as optional query parameters (a form field of the same name wins)."""
    schema = {"type": "object", "required": ["file"], "properties": fields}
    query = [{"name": name, "in": "query", "required": False, "schema": spec}
             for name, spec in fields.items() if name != "file"]
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}},
            "parameters": query}


def _with_query_fields(form: dict[str, FormPart], request: Request, fields: dict) -> dict[str, FormPart]:
    """The form, completed by query parameters named like its fields (`/v1/explain?method=ig`): they were
    ignored silently before. A form field wins over a query parameter; the file only comes in the form."""
    extra = {name: FormPart(name, data=bytearray(value.encode("utf-8")))
             for name, value in request.query_params.items() if name in fields and name != "file"}
    return {**extra, **form}


def _file_part(form: dict[str, FormPart]) -> FormPart:
    part = form.get("file")
    if part is None or not part.data:
        raise ApiError(422, "missing_file", "the form needs a non-empty field 'file' holding the image")
    return part


def _detect(form: dict[str, FormPart]) -> bool:
    raw = (form["detect"].text() if "detect" in form else "").lower()
    if raw in ("", *_TRUE):
        return True
    if raw in _FALSE:
        return False
    raise ApiError(422, "bad_detect", f"detect must be true or false, got {raw!r}")


def _face_index(form: dict[str, FormPart]) -> int:
    raw = form["face_index"].text() if "face_index" in form else "0"
    try:
        value = int(raw or "0")
    except ValueError:
        raise ApiError(422, "bad_face_index", f"face_index must be a whole number >= 0, got {raw!r}") from None
    if value < 0:
        raise ApiError(422, "bad_face_index", f"face_index must be >= 0, got {value}")
    return value


def _target(form: dict[str, FormPart], classes: tuple[str, ...]) -> str | None:
    raw = form["target"].text() if "target" in form else ""
    if not raw:
        return None
    if classes and raw not in classes:
        raise ApiError(422, "bad_target", f"target {raw!r} is not a class of this model; choose from {list(classes)}")
    return raw


def _method(form: dict[str, FormPart]) -> str:
    from ferlab.explain.methods import list_methods

    raw = (form["method"].text() if "method" in form else "") or "gradcam"
    if raw not in list_methods():
        raise ApiError(422, "bad_method", f"unknown explanation method {raw!r}; choose from {list_methods()}")
    return raw


def _mount_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from the assets of the `swagger-ui-bundle-v2` wheel, so it works offline."""
    from fastapi.openapi.docs import get_swagger_ui_html

    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:  # the page would need the CDN: say so instead of failing silently
        log.warning("swagger-ui-bundle-v2 is not installed: /docs is off; /openapi.json still works")
        return
    app.mount("/docs-assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title="ferlab API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")


def create_app(predictor: Any, *, settings: ServeSettings | None = None,
               explainer: Explainer | None = None) -> FastAPI:
    """Build the web app around a ready predictor (`.predict(image) -> list[FacePrediction]`).

    `explainer` computes /v1/explain; the default uses `ferlab.explain` on a private copy of the predictor's
    network, one explanation at a time (`PrivateNetworkExplainer`).
    """
    settings = settings or ServeSettings()
    explainer = explainer or PrivateNetworkExplainer()
    classes = classes_of(predictor)
    card = model_card(predictor)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # the gate binds to the loop that serves
        app.state.gate = InferenceGate(settings.max_concurrent_inferences, settings.queue_size,
                                       settings.request_timeout_s, settings.retry_after_s)
        try:
            yield
        finally:
            app.state.gate.shutdown()

    app = FastAPI(title="ferlab", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Facial expression recognition: faces, emotions and why. Errors are JSON "
                              '`{"error": {"code", "message"}}`. A photo without a face gives `faces: []`.')
    app.state.settings = settings
    install_error_handlers(app)
    _mount_docs(app)

    async def _upload(request: Request) -> tuple[dict[str, FormPart], bytes]:
        """The form and its image bytes; call inside `gate.admission()`, so a refused request reads nothing."""
        try:
            form = await asyncio.wait_for(read_multipart(request, settings.max_upload_bytes),
                                          settings.request_timeout_s)
        except TimeoutError:
            raise ApiError(408, "upload_timeout",
                           f"the upload did not arrive within {settings.request_timeout_s:g} s") from None
        data = bytes(_file_part(form).data)
        check_header(data, settings.max_pixels)  # not an image (415) or a bomb (413), before any decoding
        return form, data

    @app.post("/v1/predict", response_model=PredictResponse, responses=_ERRORS,
              openapi_extra=_multipart_doc(_UPLOAD_FIELDS), summary="Emotion of every face in a photo")
    async def predict(request: Request) -> dict:
        start = time.perf_counter()
        gate = request.app.state.gate
        async with gate.admission():  # held from before the upload is read until the answer
            form, data = await _upload(request)
            detect = _detect(_with_query_fields(form, request, _UPLOAD_FIELDS))

            def work() -> tuple[list, tuple[int, ...], float, float]:
                image, decode_ms = timed(decode_image, data, settings.max_pixels)
                faces, infer_ms = timed(predictor.predict, image, detect=detect)
                return faces, image.shape, decode_ms, infer_ms

            faces, shape, decode_ms, infer_ms = await gate.run(work, admitted=True)
        total = (time.perf_counter() - start) * 1000.0
        # the decoded, upright frame (EXIF orientation applied) that the boxes are in, not the stored one
        return {"faces": [face_to_json(f) for f in faces], "image": {"width": shape[1], "height": shape[0]},
                "timing_ms": {"decode": round(decode_ms, 2), "inference": round(infer_ms, 2), "total": round(total, 2)}}

    @app.post("/v1/explain", response_model=ExplainResponse, responses=_ERRORS,
              openapi_extra=_multipart_doc(_EXPLAIN_FIELDS), summary="Heat map and facial-region shares for a face")
    async def explain(request: Request) -> dict:
        start = time.perf_counter()
        gate = request.app.state.gate
        async with gate.admission():
            form, data = await _upload(request)
            form = _with_query_fields(form, request, _EXPLAIN_FIELDS)
            face_index, target = _face_index(form), _target(form, classes)
            method, detect = _method(form), _detect(form)

            def work() -> tuple[Any, float]:
                image = decode_image(data, settings.max_pixels)
                return timed(explainer, predictor, image, face_index=face_index, target=target, method=method,
                             detect=detect)

            result, explain_ms = await gate.run(work, admitted=True)
        total = (time.perf_counter() - start) * 1000.0
        return {**result.to_json(), "timing_ms": {"explain": round(explain_ms, 2), "total": round(total, 2)}}

    @app.get("/healthz", response_model=Health, summary="Liveness and load")
    async def healthz(request: Request) -> dict:
        return {"status": "ok", "model": card["name"], "busy": request.app.state.gate.admitted}

    app.head("/healthz", include_in_schema=False)(healthz)  # uptime probes and load balancers often send HEAD

    @app.get("/v1/model", response_model=ModelCard, summary="The served model")
    async def model() -> dict:
        return card

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    return app
