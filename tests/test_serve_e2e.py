"""The web page in headless Chromium (Playwright): upload a photo, stream a fake webcam, see faces and labels.

Needs Debian's chromium (`make browser` installs it) and the bundled model; skips with the reason otherwise.
Screenshots go to test-artifacts/ (git-ignored).
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import numpy as np
import pytest

from ferlab.serve.launch import serve_subprocess

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
MODELS = ROOT / "ferlab" / "assets" / "models"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run"]
FAKE_CAMERA_ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]

pytestmark = [pytest.mark.slow]


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 25) -> None:
    """Write RGB uint8 frames (even width and height) as a YUV4MPEG2 4:2:0 video (JPEG-range YCbCr)."""
    from PIL import Image

    height, width = frames[0].shape[:2]
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        for rgb in frames:
            ycc = np.asarray(Image.fromarray(rgb).convert("YCbCr"), dtype=np.float32)
            chroma = ycc[:, :, 1:].reshape(height // 2, 2, width // 2, 2, 2).mean(axis=(1, 3))
            out.write(b"FRAME\n")
            out.write(ycc[:, :, 0].astype(np.uint8).tobytes())
            out.write(np.rint(chroma[:, :, 0]).astype(np.uint8).tobytes())
            out.write(np.rint(chroma[:, :, 1]).astype(np.uint8).tobytes())


def astronaut_frames(count: int = 25, size: int = 384) -> list[np.ndarray]:
    """A short 'webcam' clip: the astronaut portrait panning slowly, so frames differ like a live feed."""
    from PIL import Image
    from skimage.data import astronaut

    photo = Image.fromarray(astronaut()).resize((448, 448))
    frames = []
    for i in range(count):
        dx = int(round(32 * (1 + np.sin(2 * np.pi * i / count)) / 2))
        frames.append(np.asarray(photo.crop((dx, 16, dx + size, 16 + size))))
    return frames


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    from PIL import Image
    from skimage.data import astronaut

    folder = tmp_path_factory.mktemp("e2e-media")
    photo = folder / "astronaut.png"
    Image.fromarray(astronaut()).save(photo)
    video = folder / "astronaut.y4m"
    write_y4m(video, astronaut_frames())
    return {"photo": photo, "video": video}


@pytest.fixture(scope="module")
def server() -> str:
    """`ferlab serve` with the bundled model on a free 127.0.0.1 port, for the module's tests.

    FERLAB_E2E_SERVER=http://127.0.0.1:PORT runs the tests against a server you started yourself instead.
    """
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: run `make browser` (apt-get install chromium) for the browser tests")
    pytest.importorskip("playwright.sync_api", reason="python package playwright not installed (pip install -e .[dev])")
    ARTIFACTS.mkdir(exist_ok=True)
    if os.environ.get("FERLAB_E2E_SERVER"):
        yield os.environ["FERLAB_E2E_SERVER"].rstrip("/")
        return
    if not MODELS.is_dir() or not any(MODELS.iterdir()):
        pytest.skip(f"no bundled model in {MODELS} yet")
    with open(ARTIFACTS / "serve_e2e_server.log", "wb") as log:
        try:
            with serve_subprocess(cwd=ROOT, log=log) as url:
                yield url
        except RuntimeError as err:
            pytest.fail(f"{err}; see {log.name}")


@pytest.fixture(scope="module")
def playwright(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright, media):
    """Chromium whose webcam is a fake device playing the astronaut clip."""
    camera = [*FAKE_CAMERA_ARGS, f"--use-file-for-fake-video-capture={media['video']}"]
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS + camera)
    yield chromium
    chromium.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(server)
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_upload_photo_shows_predicted_label_and_heat_map(page, server, media):
    expected = httpx.post(f"{server}/v1/predict", files={"file": ("a.png", media["photo"].read_bytes(), "image/png")},
                          timeout=60).json()["faces"]
    assert expected, "the bundled model found no face in the astronaut photo"
    page.set_input_files("#file-input", str(media["photo"]))
    first = page.locator("#faces li.face").first
    first.wait_for(timeout=60_000)
    assert page.locator("#faces li.face").count() == len(expected)
    assert first.get_attribute("data-label") == expected[0]["label"]
    assert expected[0]["label"] in page.locator("#status").inner_text()
    assert page.locator("#overlay").get_attribute("data-faces") == str(len(expected))
    page.screenshot(path=str(ARTIFACTS / "serve_upload.png"), full_page=True)

    page.check("#explain-toggle")
    heat = page.locator("#faces li.face .why img").first
    heat.wait_for(timeout=60_000)
    assert page.evaluate("(img) => img.complete && img.naturalWidth > 0", heat.element_handle())
    page.screenshot(path=str(ARTIFACTS / "serve_explain.png"), full_page=True)


def test_webcam_draws_overlay_on_live_video(page):
    page.click("#mode-camera")
    page.click("#camera-start")
    page.wait_for_function("() => Number(document.getElementById('overlay').dataset.faces) > 0", timeout=60_000)
    page.wait_for_function("() => Number(document.getElementById('stage').dataset.frames || 0) >= 3", timeout=60_000)
    drawn = page.evaluate("""() => {
        const c = document.getElementById('overlay');
        const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
        return n;
    }""")
    assert drawn > 500, "no box or label pixels were drawn over the video"
    label = page.locator("#faces li.face").first.get_attribute("data-label")
    assert label and label in page.locator("#overlay").get_attribute("data-labels")
    assert page.locator("#video").evaluate("(v) => v.videoWidth > 0 && !v.paused")
    page.screenshot(path=str(ARTIFACTS / "serve_webcam.png"), full_page=True)
    page.click("#camera-stop")
    assert page.locator("#camera-start").is_enabled()


def test_no_camera_gives_a_clear_message(playwright, server):
    # without the fake device headless Chromium has no camera at all
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
    try:
        page = chromium.new_page()
        page.goto(server)
        page.click("#mode-camera")
        page.click("#camera-start")
        message = page.locator("#camera-message")
        page.wait_for_function("() => document.getElementById('camera-message').textContent.length > 0",
                               timeout=30_000)
        assert "camera" in message.inner_text().lower()
        assert page.locator("#camera-start").is_enabled()
        page.screenshot(path=str(ARTIFACTS / "serve_no_camera.png"))
    finally:
        chromium.close()


def test_api_docs_render_offline(page, server):
    page.goto(f"{server}/docs")  # swagger-ui assets come from this server, never a CDN
    page.wait_for_selector(".opblock", timeout=30_000)
    assert page.locator(".opblock").count() >= 4


def test_page_is_keyboard_usable(page):
    page.keyboard.press("Tab")  # skip link first
    focused = []
    for _ in range(6):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("() => document.activeElement.id"))
    assert {"mode-photo", "mode-camera", "choose-file", "explain-toggle"} <= set(focused), focused
    page.focus("#mode-camera")
    page.keyboard.press("Enter")
    assert page.locator("#mode-camera").get_attribute("aria-pressed") == "true"
    assert page.locator("#camera-panel").is_visible()



def test_the_screen_only_shows_results_of_the_file_on_screen(page, media, tmp_path):
    """A failed upload clears the previous faces; a TIFF (no browser preview) is still analysed by the server;
    every listed face gets its heat map, with region bars wide enough to read."""
    from PIL import Image

    page.set_input_files("#file-input", str(media["photo"]))
    page.locator("#faces li.face").first.wait_for(timeout=60_000)
    junk = tmp_path / "notes.png"
    junk.write_bytes(b"not an image at all")
    page.set_input_files("#file-input", str(junk))
    page.wait_for_function("() => document.getElementById('status').classList.contains('error')", timeout=60_000)
    assert page.locator("#faces li.face").count() == 0
    assert page.locator("#overlay").get_attribute("data-faces") == "0"

    tiff = tmp_path / "astronaut.tiff"
    Image.open(media["photo"]).save(tiff)
    page.set_input_files("#file-input", str(tiff))
    page.locator("#faces li.face").first.wait_for(timeout=60_000)
    assert "cannot preview" in page.locator("#status").inner_text()

    page.set_input_files("#file-input", str(media["photo"]))
    page.locator("#faces li.face").first.wait_for(timeout=60_000)
    page.check("#explain-toggle")
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('Heat maps ready')",
                           timeout=120_000)
    faces = page.locator("#faces li.face").count()
    assert page.locator("#faces li.face .why img").count() == faces
    widths = page.eval_on_selector_all(".why dd.bar", "(bars) => bars.map((b) => b.getBoundingClientRect().width)")
    assert widths and min(widths) >= 60, widths
    page.screenshot(path=str(ARTIFACTS / "serve_results_follow_the_file.png"), full_page=True)
