"""The service as a browser or an integrator meets it: a real server on loopback, real worker process."""

from __future__ import annotations

import base64
import dataclasses
import io
import re

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from PIL import Image

from imagefiles import encoded
from kiosk.settings import Settings
from web.app import create_app


# One server for the module: starting one (compose worker, preview models) takes seconds.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def module_settings(tmp_path_factory, models_dir) -> Settings:
    return Settings.load(
        environ={
            "ARTBOOTH_DATA_DIR": str(tmp_path_factory.mktemp("data")),
            "ARTBOOTH_MODELS_DIR": str(models_dir),
            "ARTBOOTH_PORT": "8765",
            "ARTBOOTH_PUBLIC_UPLOAD": "true",  # the form and /api/compose are what this module tries
        }
    )


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server(module_settings):
    test_server = TestServer(create_app(module_settings), host="127.0.0.1")
    await test_server.start_server()
    try:
        yield test_server
    finally:
        await test_server.close()


@pytest_asyncio.fixture(loop_scope="module")
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


def _upload(photo: bytes, artwork: str = "demo-golden-meadow") -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("photo", photo, filename="me.jpg", content_type="image/jpeg")
    form.add_field("artwork", artwork)
    return form


async def test_gallery_shows_the_demo_artworks_labelled_as_demos(server, http):
    async with http.get(server.make_url("/")) as response:
        assert response.status == 200
        page = await response.text()
    assert "Demo: Golden Hour Meadow" in page and "Demo: Velvet Portrait Studio" in page
    assert page.count('class="badge">Demo<') >= 3
    async with http.get(server.make_url("/artworks/demo-golden-meadow/thumbnail.jpg")) as response:
        assert response.status == 200 and response.content_type == "image/jpeg"
        assert max(Image.open(io.BytesIO(await response.read())).size) == 480
    async with http.get(server.make_url("/static/style.css")) as response:
        assert response.status == 200


async def test_compose_api_returns_the_composite_and_its_report(server, http, astronaut):
    async with http.post(server.make_url("/api/compose"), data=_upload(encoded(astronaut))) as response:
        assert response.status == 200, await response.text()
        body = await response.json()
    assert body["report"]["people"] == 1 and body["report"]["framing"] == "half-body"
    header, data = body["image"].split(",", 1)
    assert header == "data:image/jpeg;base64"
    assert Image.open(io.BytesIO(base64.b64decode(data))).size == (1920, 1080)
    # Stored, with a link to take home.
    assert body["download_url"].startswith("http://localhost:8765/p/") and len(body["photo_id"]) == 32
    async with http.get(server.make_url(body["download_url"].removeprefix("http://localhost:8765"))) as response:
        assert response.status == 200


async def test_compose_form_shows_the_result_page(server, http, grace_hopper):
    async with http.post(
        server.make_url("/compose"), data=_upload(encoded(grace_hopper), "demo-velvet-studio")
    ) as response:
        assert response.status == 200
        page = await response.text()
    assert "You, in Demo: Velvet Portrait Studio" in page and "close-up" in page
    assert '<img class="result" src="data:image/jpeg;base64,' in page
    qr_path = re.search(r'<img class="qr" src="(/p/[A-Za-z0-9_-]{32}/qr\.svg)"', page).group(1)
    async with http.get(server.make_url(qr_path)) as response:
        assert response.status == 200 and response.content_type == "image/svg+xml"


async def test_bad_uploads_get_clear_errors_not_server_errors(server, http, astronaut):
    cases = [
        (b"", 400, "empty"),
        (b"hello, I am text" * 50, 415, "not an image"),
        (encoded(astronaut)[:5000], 400, "truncated"),
    ]
    for photo, status, message in cases:
        async with http.post(server.make_url("/api/compose"), data=_upload(photo)) as response:
            assert response.status == status
            assert message in (await response.json())["error"]
    async with http.post(
        server.make_url("/api/compose"), data=_upload(encoded(astronaut), "../../etc/passwd")
    ) as response:
        assert response.status == 404
        assert "no artwork" in (await response.json())["error"]
    async with http.post(server.make_url("/compose"), data=_upload(b"not an image")) as response:
        assert response.status == 415
        assert 'role="alert">the file is not an image' in await response.text()
    form = aiohttp.FormData()
    form.add_field("artwork", "demo-golden-meadow")
    async with http.post(server.make_url("/api/compose"), data=form) as response:
        assert response.status == 400 and "photo" in (await response.json())["error"]


async def test_upload_over_the_size_limit_is_refused(settings, http, astronaut):
    small = dataclasses.replace(settings, max_upload_bytes=20_000, public_upload=True)
    test_server = TestServer(create_app(small), host="127.0.0.1")
    await test_server.start_server()
    try:
        async with http.post(
            test_server.make_url("/api/compose"), data=_upload(encoded(astronaut, quality=95))
        ) as response:
            assert response.status == 413
            assert "over the limit of 20,000 bytes" in (await response.json())["error"]
    finally:
        await test_server.close()
