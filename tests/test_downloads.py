"""The visitor's side of a photo: QR code, download page, download, delete; as a phone meets it,
against a real server on loopback with a real SQLite file and photo folder."""

from __future__ import annotations

import asyncio
import io
import re
import sqlite3
from datetime import datetime, timedelta, timezone

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
from babel.dates import format_datetime
from PIL import Image
from sqlalchemy import select

from db import service
from db.models import DownloadLinkRow
from imagefiles import decode_qr, encoded
from kiosk.artworks import ArtworkLibrary
from kiosk.catalogue import ArtworkCatalogue
from kiosk.storage import Storage
from servers import loopback_settings, running
from web.keys import STORAGE_KEY

# One server for the module: starting one (its compose worker loads the models) takes seconds, and
# each test composes and follows photos of its own.
pytestmark = pytest.mark.asyncio(loop_scope="module")

REPORT = {"framing": "half-body", "people": 1, "timings_ms": {"faces": 10.0}, "score": 0.5}
TOKEN_URL = re.compile(r"^http://127\.0\.0\.1:\d+/p/([A-Za-z0-9_-]{32})$")


@pytest.fixture(scope="module")
def public_settings(tmp_path_factory, models_dir):
    return loopback_settings(tmp_path_factory.mktemp("data"), models_dir)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(public_settings):
    async with running(public_settings) as test_server:
        yield test_server


@pytest_asyncio.fixture(loop_scope="module")
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def _compose(server, http, photo: np.ndarray, artwork: str = "demo-golden-meadow") -> dict:
    form = aiohttp.FormData()
    form.add_field("photo", encoded(photo), filename="me.jpg", content_type="image/jpeg")
    form.add_field("artwork", artwork)
    async with http.post(server.make_url("/api/compose"), data=form) as response:
        assert response.status == 200, await response.text()
        return await response.json()


def _stored_files(settings) -> list:
    folder = settings.resolved_photos_dir
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


async def test_qr_code_decodes_to_a_link_that_downloads_the_stored_photo(server, http, public_settings, astronaut):
    body = await _compose(server, http, astronaut)
    # No sequential ids anywhere public: a 192-bit token and a random photo id.
    assert TOKEN_URL.match(body["download_url"]) and re.fullmatch(r"[0-9a-f]{32}", body["photo_id"])
    token = TOKEN_URL.match(body["download_url"]).group(1)

    async with http.get(server.make_url(f"/p/{token}/qr.png")) as response:
        assert response.status == 200 and response.content_type == "image/png"
        png = await response.read()
    decoded = decode_qr(png)
    assert decoded == body["download_url"]
    async with http.get(server.make_url(f"/p/{token}/qr.svg")) as response:
        assert response.status == 200 and response.content_type == "image/svg+xml"
        assert (await response.text()).lstrip().startswith("<svg")

    async with http.get(decoded) as response:  # the phone opens what it scanned
        assert response.status == 200
        page = await response.text()
        assert response.headers["Cache-Control"] == "private, no-store"
        assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "Demo: Golden Hour Meadow" in page and "ArtBooth demo (generated), 2026" in page  # the credit
    expires = datetime.fromisoformat(body["expires_at"])
    # The expiry in UTC for the server, with the moment itself for the phone's script to show in local time.
    assert f"{format_datetime(expires, 'medium', tzinfo=timezone.utc, locale='en')} UTC" in page
    assert f'<time datetime="{expires:%Y-%m-%dT%H:%M:%S}' in page
    assert f'href="/p/{token}/download"' in page and f'href="/p/{token}/delete"' in page

    async with http.get(decoded + "/download") as response:
        assert response.status == 200 and response.content_type == "image/jpeg"
        assert response.headers["Cache-Control"] == "private, no-store"
        disposition = response.headers["Content-Disposition"]
        downloaded = await response.read()
    assert re.fullmatch(r'attachment; filename="artbooth-demo-golden-meadow-\d{8}-\d{6}\.jpg"', disposition)
    image = Image.open(io.BytesIO(downloaded))
    assert image.size == (1920, 1080) and not image.getexif()
    stored = [p.read_bytes() for p in _stored_files(public_settings)]
    assert downloaded in stored  # exactly the stored result, not a re-encode

    async with http.get(decoded + "/photo.jpg") as response:
        assert response.status == 200 and "Content-Disposition" not in response.headers
        assert response.headers["Cache-Control"] == "private, no-store"

    storage = server.app[STORAGE_KEY]
    await storage.flush_download_counts()  # the service does this every few seconds and at shutdown
    lookup = await service.look_up_link(storage.sessions, token, now=datetime.now(timezone.utc))
    assert lookup.link.download_count == 1  # the download, not the page or the inline image


async def test_visitor_deletes_their_photo_after_confirming(server, http, public_settings, grace_hopper):
    others = set(_stored_files(public_settings))  # the photos of the module's other tests
    body = await _compose(server, http, grace_hopper, "demo-velvet-studio")
    url = body["download_url"]
    files = set(_stored_files(public_settings)) - others
    assert len(files) == 2  # the result and its thumbnail; no raw photo by default

    async with http.get(url + "/delete") as response:
        assert response.status == 200
        confirm = await response.text()
    assert "Delete your photo?" in confirm and 'method="post"' in confirm
    assert files <= set(_stored_files(public_settings)), "asking must not delete anything"

    async with http.post(url + "/delete") as response:
        assert response.status == 200
        assert "Your photo has been deleted" in await response.text()
    assert set(_stored_files(public_settings)) == others
    for path in ("", "/photo.jpg", "/download", "/qr.png"):
        async with http.get(url + path) as response:
            assert response.status == 410
            assert "This photo has been deleted" in await response.text()


async def test_two_visitors_deleting_at_once_one_succeeds_the_other_sees_it_gone(server, http, astronaut):
    url = (await _compose(server, http, astronaut))["download_url"]

    async def delete() -> int:
        async with http.post(url + "/delete") as response:
            return response.status

    assert sorted(await asyncio.gather(delete(), delete())) == [200, 410]


async def test_expired_and_revoked_links_get_a_friendly_410(server, http, astronaut):
    storage = server.app[STORAGE_KEY]
    expiring = (await _compose(server, http, astronaut))["download_url"]
    revoked = (await _compose(server, http, astronaut))["download_url"]
    token = TOKEN_URL.match(expiring).group(1)
    async with storage.sessions() as session, session.begin():
        link = await session.scalar(select(DownloadLinkRow).where(DownloadLinkRow.token_hash == service.hash_token(token)))
        link.expires_at = datetime.now(timezone.utc) - timedelta(minutes=1)
    lookup = await service.look_up_link(storage.sessions, TOKEN_URL.match(revoked).group(1), now=datetime.now(timezone.utc))
    assert await service.revoke_link(storage.sessions, lookup.link.id, actor="staff", now=datetime.now(timezone.utc))

    for url, reason in ((expiring, "time is up"), (revoked, "withdrawn")):
        for path in ("", "/download", "/photo.jpg"):
            async with http.get(url + path) as response:
                assert response.status == 410, (url, path)
                assert response.headers["Cache-Control"] == "private, no-store"
                assert reason in await response.text()


async def test_tampered_truncated_and_overlong_tokens_get_404_not_errors(server, http, astronaut):
    token = TOKEN_URL.match((await _compose(server, http, astronaut))["download_url"]).group(1)
    flipped = ("B" if token[5] == "A" else "A").join((token[:5], token[6:]))
    for bad in (flipped, token[:-1], token + "A", token * 100, "1", "..%2F..%2Fetc%2Fpasswd", "%C3%A9t%C3%A9" * 4):
        for method, path in (("GET", ""), ("GET", "/photo.jpg"), ("GET", "/download"), ("GET", "/qr.png"), ("POST", "/delete")):
            async with http.request(method, server.make_url(f"/p/{bad}{path}")) as response:
                assert response.status == 404, (bad, path, response.status)
                assert "could not find this photo" in await response.text()
    # Past 8 KB the request line never reaches us: the HTTP parser refuses it as a client error.
    async with http.get(server.make_url(f"/p/{token * 300}")) as response:
        assert response.status == 400
    async with http.get(server.make_url(f"/p/{token}")) as response:
        assert response.status == 200  # the real one still works


async def test_retention_at_start_deletes_photos_past_the_retention_period(tmp_path, models_dir, http, astronaut):
    settings = loopback_settings(tmp_path / "data", models_dir)  # a store of its own, started twice
    # A photo stored as the service stores a visitor's (composing one has the tests above) ...
    storage = await Storage.open(settings)
    try:
        await ArtworkCatalogue(storage, ArtworkLibrary(settings)).sync()  # as the service starts
        url = (await storage.save(encoded(astronaut), REPORT, artwork_id="demo-golden-meadow")).url
    finally:
        await storage.close()
    # ... 31 days ago, as far as the database knows.
    with sqlite3.connect(settings.data_dir / "artbooth.db") as db:
        db.execute("UPDATE photos SET created_at = ?", ((datetime.now(timezone.utc) - timedelta(days=31)).replace(tzinfo=None).isoformat(" "),))

    async with running(settings):
        for _ in range(100):
            async with http.get(url) as response:
                if response.status == 410:
                    break
            await asyncio.sleep(0.1)
        assert response.status == 410
    assert _stored_files(settings) == []
