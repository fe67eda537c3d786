"""REST API of `ferlab serve`: every endpoint and every bad input, with a fake predictor injected."""

from __future__ import annotations

import base64
import io
import struct
import threading
import zlib
from dataclasses import dataclass, field

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from ferlab.errors import ConfigError
from ferlab.serve.app import create_app
from ferlab.serve.service import ExplainResult
from ferlab.serve.settings import ServeSettings

CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


@dataclass
class FakeFace:
    box: tuple[int, int, int, int]
    score: float
    label: str
    probs: dict[str, float]


@dataclass
class FakePredictor:
    """Finds one face covering the whole image (none for an all-black one); optionally waits on a gate."""

    classes: tuple[str, ...] = CLASSES
    model_name: str = "fake_cnn"
    image_size: int = 48
    info: dict = field(default_factory=lambda: {"metrics": {"test_accuracy": 0.5}})
    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event | None = None
    fail: bool = False

    def predict(self, image: np.ndarray, detect: bool = True) -> list[FakeFace]:
        self.entered.set()
        if self.release is not None:
            self.release.wait(10)
        if self.fail:
            raise RuntimeError("boom")
        if not image.any():
            return []
        probs = {c: (0.94 if c == "happy" else 0.01) for c in self.classes}
        return [FakeFace(box=(0, 0, image.shape[1], image.shape[0]), score=0.99, label="happy", probs=probs)]


def fake_explainer(predictor, image, *, face_index, target, method, detect=True) -> ExplainResult:
    faces = predictor.predict(image, detect=detect)
    if face_index >= len(faces):
        from ferlab.serve.errors import ApiError

        raise ApiError(422, "bad_face_index", f"face_index {face_index} is out of range: {len(faces)} face(s)")
    return ExplainResult(face_index=face_index, box=faces[face_index].box, label="happy", target=target or "happy",
                         method=method, probs=faces[face_index].probs, regions={"mouth": 0.7, "eyes": 0.3},
                         regions_per_area={"mouth": 2.0, "eyes": 1.0}, overlay_png=png_bytes(8, 8))


def png_bytes(width: int = 64, height: int = 48, *, black: bool = False, noise: bool = False) -> bytes:
    rng = np.random.default_rng(0)
    if noise:
        arr = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    else:
        arr = np.zeros((height, width, 3), np.uint8) if black else np.full((height, width, 3), 128, np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def bomb_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A valid PNG header claiming a huge image, followed by a tiny compressed body."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + body


@pytest.fixture
def client():
    with TestClient(create_app(FakePredictor(), explainer=fake_explainer)) as c:
        yield c


def assert_error(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body


def post_file(client, url: str, data: bytes, name: str = "face.png", ctype: str = "image/png", **form):
    return client.post(url, files={"file": (name, data, ctype)}, data=form)


# --- endpoints ---------------------------------------------------------------------------------------


def test_healthz_and_model_card(client):
    health = client.get("/healthz").json()
    assert health == {"status": "ok", "model": "fake_cnn", "busy": 0}
    card = client.get("/v1/model").json()
    assert card == {"name": "fake_cnn", "classes": list(CLASSES), "input_size": [1, 48, 48],
                    "metrics": {"test_accuracy": 0.5}, "tta": "none", "card": None}


def test_predict_returns_faces_image_size_and_timing(client):
    resp = post_file(client, "/v1/predict", png_bytes(64, 48))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["image"] == {"width": 64, "height": 48}
    (face,) = body["faces"]
    assert face["box"] == [0, 0, 64, 48] and face["label"] == "happy" and face["score"] == pytest.approx(0.99)
    assert set(face["probs"]) == set(CLASSES)
    assert set(body["timing_ms"]) == {"decode", "inference", "total"}
    assert body["timing_ms"]["total"] >= body["timing_ms"]["inference"] >= 0


def test_predict_without_face_is_200_with_empty_list(client):
    resp = post_file(client, "/v1/predict", png_bytes(black=True))
    assert resp.status_code == 200 and resp.json()["faces"] == []


def test_explain_returns_overlay_png_and_regions(client):
    resp = post_file(client, "/v1/explain", png_bytes(), face_index="0", target="sad", method="gradcam")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["target"] == "sad" and body["label"] == "happy" and body["method"] == "gradcam"
    assert body["regions"] == {"mouth": 0.7, "eyes": 0.3} and body["box"] == [0, 0, 64, 48]
    assert base64.b64decode(body["overlay_png_base64"]).startswith(b"\x89PNG\r\n\x1a\n")


def test_explain_defaults_to_first_face_and_predicted_class(client):
    body = post_file(client, "/v1/explain", png_bytes()).json()
    assert body["face_index"] == 0 and body["target"] == "happy" and body["method"] == "gradcam"


def test_page_static_assets_and_offline_docs(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("/static/app.js", "/static/style.css"):
        assert asset in page.text
        assert client.get(asset).status_code == 200
    assert "http://" not in page.text and "https://" not in page.text  # no CDN
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/explain", "/v1/model", "/healthz"} <= set(schema["paths"])
    body = schema["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["properties"]["file"]["format"] == "binary"


# --- bad input ---------------------------------------------------------------------------------------


def test_oversized_upload_is_413():
    app = create_app(FakePredictor(), settings=ServeSettings(max_upload_bytes=2000))
    with TestClient(app) as c:
        assert_error(post_file(c, "/v1/predict", png_bytes(100, 100, noise=True)), 413, "payload_too_large")
        assert post_file(c, "/v1/predict", png_bytes(16, 16)).status_code == 200


def test_oversized_body_refused_while_streaming_without_content_length():
    app = create_app(FakePredictor(), settings=ServeSettings(max_upload_bytes=2000))
    boundary = "xyz"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n".encode()
            + png_bytes(200, 200, noise=True) + f"\r\n--{boundary}--\r\n".encode())

    def chunks():
        for i in range(0, len(body), 8192):
            yield body[i:i + 8192]

    with TestClient(app) as c:
        headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
        resp = c.post("/v1/predict", content=chunks(), headers=headers)
        assert_error(resp, 413, "payload_too_large")


def test_text_named_jpg_is_415(client):
    resp = post_file(client, "/v1/predict", b"hello, I am not a picture\n" * 20, name="face.jpg", ctype="image/jpeg")
    assert_error(resp, 415, "unsupported_media_type")


def test_truncated_image_is_422(client):
    data = png_bytes(64, 64, noise=True)
    body = assert_error(post_file(client, "/v1/predict", data[: len(data) // 2]), 422, "bad_image")
    assert body["error"]["message"].startswith("corrupt or truncated image")  # no internal "<bytes>:" name


def test_corrupt_header_is_422(client):
    assert_error(post_file(client, "/v1/predict", b"\x89PNG\r\n\x1a\n" + b"garbage" * 10), 422, "bad_image")


@pytest.mark.parametrize("url", ["/v1/predict", "/v1/explain"])
def test_decompression_bomb_is_413_before_decoding(client, url):
    assert_error(post_file(client, url, bomb_png()), 413, "image_too_large")


def test_max_pixels_setting_applies():
    with TestClient(create_app(FakePredictor(), settings=ServeSettings(max_pixels=1000))) as c:
        body = assert_error(post_file(c, "/v1/predict", png_bytes(64, 48)), 413, "image_too_large")
        assert "64 x 48" in body["error"]["message"]


def test_missing_file_field_is_422(client):
    resp = client.post("/v1/predict", files={"photo": ("a.png", png_bytes(), "image/png")})
    assert_error(resp, 422, "missing_file")
    assert_error(client.post("/v1/predict", files={"file": ("a.png", b"", "image/png")}), 422, "missing_file")


def test_not_multipart_is_415(client):
    assert_error(client.post("/v1/predict", content=png_bytes(), headers={"content-type": "image/png"}),
                 415, "unsupported_media_type")
    assert_error(client.post("/v1/predict", json={"file": "x"}), 415, "unsupported_media_type")


def test_malformed_multipart_is_400(client):
    resp = client.post("/v1/predict", content=b"--b\r\nnot a header line without colon\r\n\r\n",
                       headers={"content-type": "multipart/form-data; boundary=b"})
    assert_error(resp, 400, "malformed_form")


def test_a_truncated_upload_is_400_not_a_missing_file(client):
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\nContent-Type: image/png\r\n\r\n'
    whole = head + png_bytes() + b"\r\n--b--\r\n"
    headers = {"content-type": "multipart/form-data; boundary=b"}
    assert client.post("/v1/predict", content=whole, headers=headers).status_code == 200
    for cut in (len(head) - 10, len(head) + 30, len(whole) - 5):
        body = assert_error(client.post("/v1/predict", content=whole[:cut], headers=headers), 400, "malformed_form")
        assert "truncated" in body["error"]["message"]


@pytest.mark.parametrize(("form", "code"), [
    ({"face_index": "abc"}, "bad_face_index"),
    ({"face_index": "-1"}, "bad_face_index"),
    ({"face_index": "3"}, "bad_face_index"),
    ({"target": "smug"}, "bad_target"),
    ({"method": "telepathy"}, "bad_method"),
])
def test_explain_bad_fields_are_422(client, form, code):
    assert_error(post_file(client, "/v1/explain", png_bytes(), **form), 422, code)


def test_fields_may_come_as_query_parameters_and_the_form_wins(client):
    assert post_file(client, "/v1/explain?method=ig&target=sad", png_bytes()).json()["method"] == "ig"
    assert post_file(client, "/v1/explain?target=sad", png_bytes()).json()["target"] == "sad"
    assert post_file(client, "/v1/explain?method=ig", png_bytes(), method="occlusion").json()["method"] == "occlusion"
    assert_error(post_file(client, "/v1/explain?method=telepathy", png_bytes()), 422, "bad_method")
    assert_error(post_file(client, "/v1/explain?face_index=-2", png_bytes()), 422, "bad_face_index")
    assert_error(post_file(client, "/v1/predict?detect=maybe", png_bytes()), 422, "bad_detect")
    assert post_file(client, "/v1/predict?detect=false&unrelated=1", png_bytes()).status_code == 200
    spec = client.get("/openapi.json").json()["paths"]["/v1/explain"]["post"]
    assert {p["name"] for p in spec["parameters"]} == {"face_index", "target", "method", "detect"}


def test_unknown_route_and_method_are_json(client):
    assert_error(client.get("/v1/nothing"), 404, "not_found")
    assert_error(client.get("/v1/predict"), 405, "method_not_allowed")


def test_predictor_crash_is_json_500():
    app = create_app(FakePredictor(fail=True))
    with TestClient(app, raise_server_exceptions=False) as c:
        body = assert_error(post_file(c, "/v1/predict", png_bytes()), 500, "internal_error")
        assert "RuntimeError" in body["error"]["message"]
        assert c.get("/healthz").json()["busy"] == 0


# --- limits ------------------------------------------------------------------------------------------


def test_back_pressure_503_when_saturated_then_recovers():
    predictor = FakePredictor(release=threading.Event())
    app = create_app(predictor, settings=ServeSettings(max_concurrent_inferences=1, queue_size=0))
    with TestClient(app) as c:
        first: dict = {}
        worker = threading.Thread(target=lambda: first.update(resp=post_file(c, "/v1/predict", png_bytes())))
        worker.start()
        try:
            assert predictor.entered.wait(10), "the first request never reached the predictor"
            assert c.get("/healthz").json()["busy"] == 1  # the event loop still answers while inference runs
            busy = post_file(c, "/v1/predict", png_bytes())
            assert_error(busy, 503, "overloaded")
            assert busy.headers["retry-after"] == "1"
        finally:
            predictor.release.set()
            worker.join(10)
        assert first["resp"].status_code == 200
        assert post_file(c, "/v1/predict", png_bytes()).status_code == 200


def test_an_upload_still_arriving_holds_a_place_so_further_requests_get_503(monkeypatch):
    """Uploads in flight count against the limit: otherwise any number of bodies could be read into memory at once."""
    import asyncio

    import ferlab.serve.app as app_module

    arriving, arrive = threading.Event(), threading.Event()
    real_read = app_module.read_multipart

    async def slow_read(request, limit):
        arriving.set()
        while not arrive.is_set():  # the body is still on its way
            await asyncio.sleep(0.01)
        return await real_read(request, limit)

    monkeypatch.setattr(app_module, "read_multipart", slow_read)
    app = create_app(FakePredictor(), settings=ServeSettings(max_concurrent_inferences=1, queue_size=0))
    with TestClient(app) as c:
        first: dict = {}
        worker = threading.Thread(target=lambda: first.update(resp=post_file(c, "/v1/predict", png_bytes())))
        worker.start()
        try:
            assert arriving.wait(10), "the first upload never started"
            assert c.get("/healthz").json()["busy"] == 1
            assert_error(post_file(c, "/v1/explain", png_bytes()), 503, "overloaded")
        finally:
            arrive.set()
            worker.join(10)
        assert first["resp"].status_code == 200 and c.get("/healthz").json()["busy"] == 0
        monkeypatch.setattr(app_module, "read_multipart", real_read)
        assert post_file(c, "/v1/predict", png_bytes()).status_code == 200
        assert_error(post_file(c, "/v1/predict", b"not an image"), 415, "unsupported_media_type")
        assert c.get("/healthz").json()["busy"] == 0  # a refused upload gives its place back


def test_timeout_is_504():
    predictor = FakePredictor(release=threading.Event())
    app = create_app(predictor, settings=ServeSettings(request_timeout_s=0.2))
    with TestClient(app) as c:
        try:
            assert_error(post_file(c, "/v1/predict", png_bytes()), 504, "timeout")
        finally:
            predictor.release.set()


def test_uploads_are_never_spooled_to_disk(client, monkeypatch):
    import tempfile

    import starlette.formparsers

    def refuse(*args, **kwargs):
        raise AssertionError("an upload was written to a temporary file")

    for name in ("SpooledTemporaryFile", "TemporaryFile", "NamedTemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, refuse)
    monkeypatch.setattr(starlette.formparsers, "SpooledTemporaryFile", refuse)
    big = png_bytes(1200, 1000, noise=True)  # ~3.6 MB: Starlette would spool this past 1 MB
    assert len(big) > 2 * 1024 * 1024
    resp = post_file(client, "/v1/predict", big)
    assert resp.status_code == 200 and resp.json()["image"] == {"width": 1200, "height": 1000}


@pytest.mark.parametrize("kwargs", [{"max_upload_bytes": 0}, {"queue_size": -1}, {"request_timeout_s": 0},
                                    {"request_timeout_s": float("nan")}, {"request_timeout_s": float("inf")},
                                    {"max_concurrent_inferences": 0}])
def test_settings_reject_nonsense(kwargs):
    with pytest.raises(ConfigError):
        ServeSettings(**kwargs)


def test_cli_registers_serve():
    from ferlab.cli.main import build_parser

    args = build_parser().parse_args(["serve", "--port", "8123", "--max-upload-mb", "2", "--workers-concurrency", "3"])
    assert (args.port, args.max_upload_mb, args.workers_concurrency, args.host) == (8123, 2.0, 3, "127.0.0.1")


# --- the default explainer on a real (untrained) network ---------------------------------------------


@pytest.fixture(scope="module")
def real_client():
    """The default explainer (ferlab.explain) over an untrained simple_cnn and the real face detector."""
    from types import SimpleNamespace

    pytest.importorskip("ferlab.explain.api")
    from ferlab.labels import EMOTIONS
    from ferlab.models import create_model
    from ferlab.train.checkpoint import load_classifier

    model = create_model("simple_cnn", num_classes=len(EMOTIONS))
    clf = load_classifier({"format": "ferlab-checkpoint", "version": 1, "model_name": "simple_cnn",
                           "model_kwargs": {}, "classes": list(EMOTIONS), "image_size": 48,
                           "metrics": {"val_accuracy": 0.25}, "model_state": model.state_dict()})
    predictor = SimpleNamespace(classifier=clf, predict=lambda image, detect=True: [])
    with TestClient(create_app(predictor)) as c:
        yield c


@pytest.fixture(scope="module")
def astronaut_png() -> bytes:
    from skimage.data import astronaut

    buf = io.BytesIO()
    Image.fromarray(astronaut()).save(buf, format="PNG")
    return buf.getvalue()


def test_default_explainer_on_a_real_face(real_client, astronaut_png):
    assert real_client.get("/v1/model").json()["name"] == "simple_cnn"
    resp = post_file(real_client, "/v1/explain", astronaut_png, target="sad")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["target"] == "sad" and body["label"] in body["probs"]
    shares = body["regions"]  # an untrained network may attribute nothing (all shares 0), never more than 1
    assert shares and all(0 <= v <= 1 for v in shares.values()) and sum(shares.values()) <= 1 + 1e-3
    x, y, w, h = body["box"]
    assert 100 < x + w / 2 < 350 and 30 < y + h / 2 < 250  # the astronaut's face, upper middle of 512 x 512
    overlay = Image.open(io.BytesIO(base64.b64decode(body["overlay_png_base64"])))
    assert overlay.format == "PNG" and overlay.width > 0
    assert_error(post_file(real_client, "/v1/explain", astronaut_png, face_index="4"), 422, "bad_face_index")


def test_default_explainer_without_face_is_422(real_client):
    assert_error(post_file(real_client, "/v1/explain", png_bytes(black=True)), 422, "no_face")


@pytest.mark.parametrize("argv", [["--port", "0"], ["--max-upload-mb", "0"], ["--workers-concurrency", "0"],
                                  ["--timeout", "-1"], ["--max-upload-mb", "nan"], ["--max-upload-mb", "inf"],
                                  ["--timeout", "nan"], ["--timeout", "inf"], ["--host", "999.1.1.1"],
                                  ["--max-upload-mb", "-1"], ["--max-upload-mb", "1e-7"], ["--queue-size", "-1"]])
def test_cli_rejects_bad_limits_before_loading_a_model(argv, capsys):
    from ferlab.cli.main import main

    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ferlab: error: ") and err.count("\n") == 1
    if argv[0] != "--host":  # named by the flag the user typed, not an internal setting
        assert err.startswith(f"ferlab: error: {argv[0]} must be") and "serve setting" not in err


def test_slow_upload_is_408():
    import asyncio

    app = create_app(FakePredictor(), settings=ServeSettings(request_timeout_s=0.3))
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n' + png_bytes()[:50]
    sent: list[dict] = []

    async def receive():  # an ASGI client that sends part of the body, then stalls
        if not sent:
            sent.append({})
            return {"type": "http.request", "body": head, "more_body": True}
        await asyncio.sleep(5)
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    async def run():
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/v1/predict", "raw_path": b"/v1/predict", "query_string": b"",
                 "root_path": "", "headers": [(b"content-type", b"multipart/form-data; boundary=b")],
                 "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
        async with app.router.lifespan_context(app):
            await app(scope, receive, send)

    asyncio.run(run())
    start = next(m for m in sent if m.get("type") == "http.response.start")
    assert start["status"] == 408
    body = b"".join(m.get("body", b"") for m in sent if m.get("type") == "http.response.body")
    assert b'"upload_timeout"' in body


# --- HTTP details: HEAD probes, EXIF-rotated photos, detect=false, form abuse ---------------------------------


def test_head_probes_of_the_page_and_health_are_200(client):
    assert client.head("/healthz").status_code == 200
    assert client.head("/").status_code == 200


def test_image_size_is_the_upright_frame_the_boxes_are_in(client):
    """A phone photo stored 30 x 90 with EXIF orientation 6 shows 90 x 30; boxes are found on the upright pixels."""
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    Image.fromarray(np.full((90, 30, 3), 128, np.uint8)).save(buf, format="JPEG", exif=exif)
    body = post_file(client, "/v1/predict", buf.getvalue(), name="phone.jpg", ctype="image/jpeg").json()
    assert body["image"] == {"width": 90, "height": 30}
    assert body["faces"][0]["box"] == [0, 0, 90, 30]


def test_detect_false_reaches_the_predictor_and_bad_values_are_422():
    seen: list[bool] = []

    class Recording(FakePredictor):
        def predict(self, image, detect=True):
            seen.append(detect)
            return super().predict(image, detect)

    with TestClient(create_app(Recording(), explainer=fake_explainer)) as c:
        assert post_file(c, "/v1/predict", png_bytes(), detect="false").status_code == 200
        assert post_file(c, "/v1/predict", png_bytes()).status_code == 200
        assert post_file(c, "/v1/explain", png_bytes(), detect="0").status_code == 200
        assert seen == [False, True, False]
        assert_error(post_file(c, "/v1/predict", png_bytes(), detect="maybe"), 422, "bad_detect")


def test_a_form_of_many_parts_is_400(client):
    parts = b"".join(b'--b\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nx\r\n' % k for k in range(40))
    resp = client.post("/v1/predict", content=parts + b"--b--\r\n",
                       headers={"content-type": "multipart/form-data; boundary=b"})
    assert_error(resp, 400, "too_many_parts")


def test_unreadable_header_message_names_no_python_object(client):
    body = assert_error(post_file(client, "/v1/predict", b"\x89PNG\r\n\x1a\n"), 422, "bad_image")
    assert "object at 0x" not in body["error"]["message"]


def test_a_busy_port_is_one_line_before_the_model_loads(capsys, monkeypatch):
    import socket

    from ferlab.cli.main import main
    from ferlab.predict import Predictor

    monkeypatch.setattr(Predictor, "from_pretrained", lambda **kw: pytest.fail("the model loaded first"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    assert capsys.readouterr().err == f"ferlab: error: cannot listen on 127.0.0.1:{port}: already in use\n"
