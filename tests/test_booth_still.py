"""The booth captures at the camera's best still size (issue 12), and the capture's size is recorded
with the photo: in the capture's answer, in the photo's row and on the staff photo page.

Debian's Chromium plays a fake camera from a file; its ImageCapture offers stills at the file's own
size (photoCapabilities: exactly that size) while the stream the booth asks for, at most 1920x1080, is
scaled down from it: a camera whose still is larger than its video frames. (Chromium's built-in fake
device, without a file, announces stills up to 1920x1080 but takes them at the stream's size, and
runs at 20 fps: no use for this.) The server on loopback is the real one, its booth paired through
the real pairing link."""

from __future__ import annotations

import re

import aiohttp
import numpy as np
import pytest
import pytest_asyncio

from api_helpers import CHEAP_HASHES, OPERATOR, browser, running_with_staff, sign_in
from booth_helpers import paired_booth, pairing_link
from db import service
from fakecamera import CHROMIUM, CHROMIUM_ARGS, fake_camera_args, visitor_in_room, write_y4m
from imagefiles import encoded, with_exif_orientation
from servers import loopback_settings
from web.keys import STORAGE_KEY

# One server for the module: starting one (compose worker, preview models) takes seconds.
pytestmark = pytest.mark.asyncio(loop_scope="module")

CAMERA_SIZE = (2048, 1152)  # the fake camera's stills
STREAM_SIZE = (1920, 1080)  # what kiosk.js asks the camera's stream for, at most
# The preview goes to the server fitted into this (kiosk.js PREVIEW_MAX_SIZE).
PREVIEW_MAX_SIZE = (640, 480)
# Low enough that a 4032x3024 still (12 MP, a phone camera's) is over it, high enough for the camera's.
MAX_IMAGE_PIXELS = 4_000_000
ARTWORK = "demo-golden-meadow"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server(tmp_path_factory, models_dir):
    settings = loopback_settings(
        tmp_path_factory.mktemp("data"),
        models_dir,
        ARTBOOTH_KIOSK_COUNTDOWN_SECONDS="0",
        ARTBOOTH_MAX_IMAGE_PIXELS=str(MAX_IMAGE_PIXELS),
        **CHEAP_HASHES,
    )
    async with running_with_staff(settings) as test_server:
        yield test_server


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def booth(server):
    """A booth screen paired over HTTP, for the tests that need no browser."""
    async with await paired_booth(server, "still-http") as client:
        yield client


@pytest.fixture(scope="module")
def camera_file(tmp_path_factory, grace_hopper):
    # Few frames: each is 3.5 MB of YUV, and the fake camera plays them in a loop.
    frames = visitor_in_room(grace_hopper, size=CAMERA_SIZE, frames=4)
    return write_y4m(tmp_path_factory.mktemp("camera") / "visitor.y4m", frames)


SENT_VIDEO = """async () => {
  for (const stat of (await window.kioskPeer().getStats()).values()) {
    if (stat.type === "outbound-rtp" && stat.kind === "video" && stat.frameWidth) return [stat.frameWidth, stat.frameHeight];
  }
  return null;
}"""


async def test_the_booth_captures_the_cameras_full_size_still_not_its_video_frame(server, camera_file):
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *fake_camera_args(camera_file)]
        )
        try:
            page = await chromium.new_page(viewport={"width": 1280, "height": 800})
            await page.goto(await pairing_link(server, "still-1"))
            await page.click("#pair")
            await page.wait_for_url("**/kiosk/still-1")
            await page.click("#attract")
            await page.click(f'#carousel [data-artwork="{ARTWORK}"]')
            await page.wait_for_function("document.body.dataset.connection === 'connected'", timeout=30_000)
            await page.wait_for_function("document.getElementById('camera').videoWidth > 0", timeout=30_000)
            stream = await page.evaluate("(video => [video.videoWidth, video.videoHeight])(document.getElementById('camera'))")
            assert tuple(stream) == STREAM_SIZE
            for _ in range(100):  # until the first frames went out
                if (sent := await page.evaluate(SENT_VIDEO)) is not None:
                    break
                await page.wait_for_timeout(100)
            assert sent is not None, "the booth sent no preview"
            assert sent[0] <= PREVIEW_MAX_SIZE[0] and sent[1] <= PREVIEW_MAX_SIZE[1], sent  # not at the camera's size

            await page.click("#shoot")
            await page.click("#agree")
            async with page.expect_response(lambda response: response.url.endswith("/capture"), timeout=120_000) as captured:
                await page.click('#look [data-look="realistic"]')
            response = await captured.value
            answer = await response.json()
            await page.wait_for_selector("#result.active", timeout=30_000)
        finally:
            await chromium.close()

    assert response.status == 200, answer
    # The still the camera offers, larger than the stream's frames (a canvas grab would be 1920x1080).
    assert answer["capture_size"] == {"width": CAMERA_SIZE[0], "height": CAMERA_SIZE[1]}
    photo = await service.get_photo(server.app[STORAGE_KEY].sessions, answer["photo_id"])
    assert photo.capture_size == CAMERA_SIZE

    async with browser() as staff:
        await sign_in(staff, server, OPERATOR)
        async with staff.get(server.make_url(f"/staff/photos/{answer['photo_id']}")) as page_response:
            assert page_response.status == 200
            html = await page_response.text()
    assert re.search(rf'id="capture-size">Captured at {CAMERA_SIZE[0]}x{CAMERA_SIZE[1]}<', html)


async def test_a_still_over_the_pixel_limit_is_refused_clearly_and_nothing_is_stored(server, booth):
    sessions = server.app[STORAGE_KEY].sessions
    before, _ = await service.list_photos(sessions)
    form = aiohttp.FormData()
    form.add_field("artwork", ARTWORK)
    phone_sized = encoded(np.full((3024, 4032, 3), 128, np.uint8), quality=80)
    form.add_field("photo", phone_sized, filename="still.jpg", content_type="image/jpeg")
    async with booth.post(server.make_url("/api/kiosks/still-http/capture"), data=form) as response:
        assert response.status == 413
        answer = await response.json()
    assert answer["code"] == "image_too_large" and "too large for this booth" in answer["error"]
    after, _ = await service.list_photos(sessions)
    assert after == before


async def test_the_recorded_size_is_the_photo_the_right_way_up(server, booth, grace_hopper):
    # A camera that says in EXIF to turn its picture a quarter (as phones do): stored 640x480, upright 480x640.
    upright = next(visitor_in_room(grace_hopper, size=(480, 640), frames=1))
    form = aiohttp.FormData()
    form.add_field("artwork", ARTWORK)
    form.add_field("look", "realistic")
    form.add_field("photo", with_exif_orientation(np.rot90(upright), 6), filename="still.jpg", content_type="image/jpeg")
    async with booth.post(server.make_url("/api/kiosks/still-http/capture"), data=form) as response:
        answer = await response.json()
        assert response.status == 200, answer
    assert answer["capture_size"] == {"width": 480, "height": 640}
