"""The museum's identity through the real service: an administrator sets the name, accent colour and
logo on the dashboard's Museum page; the stored photo carries the credit strip (or not); the pages
get the accent. One server for the module, one signed-in administrator, plain HTTP (no browser:
nothing here needs one)."""

from __future__ import annotations

import io
import re

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
from PIL import Image
from sqlalchemy import select

from api_helpers import ADMIN, CHEAP_HASHES, OPERATOR, browser, running_with_staff, sign_in
from db import service
from db.models import AuditRow
from imagefiles import encoded
from kiosk.museum import adopt_logo_file, load_identity
from kiosk.settings import Settings
from kiosk.storage import Storage
from pipeline.codec import decode_image
from servers import loopback_settings
from web.keys import PAGES_KEY, STORAGE_KEY

pytestmark = pytest.mark.asyncio(loop_scope="module")

LOGO_LIMIT = 100_000
ACCENT = "#1a6b3c"


@pytest.fixture(scope="module")
def museum_settings(tmp_path_factory, models_dir):
    return loopback_settings(
        tmp_path_factory.mktemp("museum"), models_dir, **CHEAP_HASHES, ARTBOOTH_MUSEUM_LOGO_MAX_BYTES=str(LOGO_LIMIT)
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(museum_settings):
    async with running_with_staff(museum_settings) as test_server:
        yield test_server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def admin(server):
    """A signed-in administrator's browser session and its CSRF token."""
    async with browser() as session:
        token = await sign_in(session, server, ADMIN)
        yield session, token


async def _save_museum(admin, server, **fields: str) -> aiohttp.ClientResponse:
    session, token = admin
    form = {"csrf_token": token, "museum_name": "", "museum_accent_colour": "#8a2d1f"} | fields
    async with session.post(server.make_url("/staff/museum"), data=form, allow_redirects=False) as response:
        await response.read()
        return response


async def _upload_logo(admin, server, data: bytes, filename: str = "logo.png") -> tuple[int, str]:
    session, token = admin
    form = aiohttp.FormData()
    form.add_field("csrf_token", token)
    form.add_field("logo", data, filename=filename, content_type="application/octet-stream")
    async with session.post(server.make_url("/staff/museum/logo"), data=form, allow_redirects=False) as response:
        return response.status, await response.text()


async def _logo(server) -> bytes | None:
    async with aiohttp.ClientSession() as http, http.get(server.make_url("/museum/logo.png")) as response:
        return await response.read() if response.status == 200 else None


async def _stored_photo(server, astronaut) -> tuple[np.ndarray, str]:
    """Compose through /api/compose and decode the file the service stored; also the photo's link."""
    form = aiohttp.FormData()
    form.add_field("photo", encoded(astronaut), filename="me.jpg", content_type="image/jpeg")
    form.add_field("artwork", "demo-golden-meadow")
    async with aiohttp.ClientSession() as http, http.post(server.make_url("/api/compose"), data=form) as response:
        assert response.status == 200, await response.text()
        body = await response.json()
    storage = server.app[STORAGE_KEY]
    photo = await service.get_photo(storage.sessions, body["photo_id"])
    stored = await storage.store.get(photo.result_key)
    return decode_image(stored, max_pixels=10**8), body["download_url"]


async def _audit(server, *conditions) -> list[AuditRow]:
    async with server.app[STORAGE_KEY].sessions() as session:
        return list((await session.scalars(select(AuditRow).where(*conditions).order_by(AuditRow.id))).all())


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


async def test_only_administrators_change_the_museum(server):
    async with browser() as session:
        await sign_in(session, server, OPERATOR)
        async with session.get(server.make_url("/staff/museum"), allow_redirects=False) as response:
            assert response.status == 403
    async with aiohttp.ClientSession() as http:
        async with http.get(server.make_url("/staff/museum"), allow_redirects=False) as response:
            assert response.status in (302, 303) and "/staff/login" in response.headers["Location"]


def _green_logo() -> Image.Image:
    green = Image.new("RGBA", (300, 120), (0, 0, 0, 0))
    green.paste((0, 255, 0, 255), (20, 20, 280, 100))
    return green


async def test_logo_upload_refuses_broken_files_and_keeps_the_previous_logo(server, admin):
    green = _green_logo()
    status, _ = await _upload_logo(admin, server, _png(green))
    assert status == 303
    kept = await _logo(server)
    assert kept is not None and Image.open(io.BytesIO(kept)).size == (300, 120)

    noise = np.random.default_rng(1).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    bomb = Image.new("L", (5000, 5000))  # 25 MP of zeros: a small file that decodes huge
    refusals = {
        "not an image": (b"this is not a picture\n" * 10, 415, "not a picture"),
        "oversized": (_png(Image.fromarray(noise)), 413, "over the limit of"),
        "decompression bomb": (_png(bomb), 413, "more than"),
        "truncated": (_png(green)[:200], 400, "damaged or cut short"),
        "GIF": (encoded(Image.new("RGB", (64, 64)), "GIF"), 415, "GIF"),
    }
    for name, (data, expected, words) in refusals.items():
        assert len(data) <= LOGO_LIMIT or name == "oversized"
        status, page = await _upload_logo(admin, server, data)
        assert status == expected, (name, page)
        assert words in page and "The logo was not changed" in page, name
        assert await _logo(server) == kept, f"{name}: the previous logo is kept"

    rows = await _audit(server, AuditRow.action == "museum.logo")
    assert [row.actor for row in rows] == [ADMIN[0]], "the one accepted upload is audited"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def photos(server, admin, astronaut):
    """The same capture stored with the strip on (with the logo uploaded by then) and off, and the
    first one's link; the museum's name and accent set through the Museum page."""
    fields = {"museum_name": "Musée de l’Essai", "museum_accent_colour": ACCENT}
    # The logo test above uploads it when it runs in this process first (pytest-xdist may run it in the other).
    if await _logo(server) is None:
        assert (await _upload_logo(admin, server, _png(_green_logo())))[0] == 303
    assert (await _save_museum(admin, server, **fields, credit_strip="on")).status == 303
    striped, link = await _stored_photo(server, astronaut)
    assert (await _save_museum(admin, server, **fields)).status == 303
    plain, _ = await _stored_photo(server, astronaut)
    return striped, plain, link


async def test_the_stored_photo_carries_the_credit_strip_and_none_when_off(photos):
    striped, plain, _ = photos
    height = striped.shape[0]
    difference = np.abs(striped.astype(np.int16) - plain.astype(np.int16))
    changed = difference.mean(axis=(1, 2)) > 8
    band = int(height - np.argmax(changed))
    assert 0.04 * height <= band <= 0.06 * height, band
    assert changed[-band:].all(), "every row of the strip differs from the photo without it"
    # Above the strip (and the JPEG block it shares), the photo is the same composite.
    assert difference[: -band - 8].mean() < 1.0

    strip = striped[-band + 2 : -2]
    accent = np.array([int(ACCENT[i : i + 2], 16) for i in (1, 3, 5)])
    near_accent = np.abs(strip.astype(np.int16) - accent).max(axis=2) < 24
    assert near_accent.mean() > 0.6, "the strip is the accent colour"
    assert strip.std(axis=(0, 2)).max() > 40, "with text on it, not a uniform band"
    green_logo = (strip[..., 1] > 200) & (strip[..., 0] < 80) & (strip[..., 2] < 80)
    assert green_logo[:, : band * 6].sum() > 100, "the uploaded logo at the strip's left"
    # Off, the bottom rows are the composite's own: nothing of the band is left.
    plain_bottom = plain[-band + 2 : -2]
    assert (np.abs(plain_bottom.astype(np.int16) - accent).max(axis=2) < 24).mean() < 0.05


async def test_the_accent_reaches_the_phone_pages_css_and_bad_values_are_refused(server, admin, photos):
    response = await _save_museum(admin, server, museum_accent_colour="red", museum_name="Kept?")
    assert response.status == 400
    assert server.app[STORAGE_KEY].settings.museum_name != "Kept?", "nothing saved"
    assert (await _save_museum(admin, server, museum_name="<script>alert(1)</script>", museum_accent_colour=ACCENT)).status == 303
    # What the booth's and phone's templates get as ``identity`` (they escape it).
    assert server.app[PAGES_KEY].identity["name"] == "<script>alert(1)</script>"
    async with aiohttp.ClientSession() as http:
        async with http.get(photos[2]) as response:
            assert response.status == 200
            page = await response.text()
        stylesheet = re.search(r'<link rel="stylesheet" href="(/museum/identity\.css\?v=\w+)">', page).group(1)
        async with http.get(server.make_url(stylesheet)) as response:
            assert response.status == 200 and response.content_type == "text/css"
            assert f"--accent: {ACCENT};" in await response.text()
        assert "<script>alert(1)</script>" not in page
    rows = await _audit(server, AuditRow.action == "settings.change", AuditRow.subject == "museum_accent_colour")
    assert rows and rows[-1].actor == ADMIN[0], "the change is audited"


async def test_a_logo_file_of_an_older_version_moves_into_the_shared_database(tmp_path):
    # Before the logo was shared it was a file in each node's data folder; the next start adopts it.
    settings = Settings.load(environ={"ARTBOOTH_DATA_DIR": str(tmp_path)})
    old = tmp_path / "museum" / "logo.png"
    old.parent.mkdir(parents=True)
    old.write_bytes(encoded(np.full((40, 80, 3), 200, np.uint8), "PNG"))
    storage = await Storage.open(settings)
    try:
        await adopt_logo_file(storage)
        assert (await load_identity(storage)).logo_png == encoded(np.full((40, 80, 3), 200, np.uint8), "PNG")
        assert not old.exists()
        async with storage.sessions() as session:
            [entry] = await session.scalars(select(AuditRow).where(AuditRow.action == "museum.logo"))
        assert entry.actor == "upgrade"
    finally:
        await storage.close()
