"""Issue 13's booth features staff steer from the dashboard, through the real service (one server for
the module, plain HTTP clients: nothing here needs a browser): the privacy notice per language, demo
artworks hidden once a real artwork is enabled, and example photos on the booth's attract screen."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
import skimage
from markupsafe import escape
from sqlalchemy import select, update

from api_helpers import ADMIN, CHEAP_HASHES, OPERATOR, browser, running_with_staff, sign_in
from booth_helpers import paired_booth, registered_kiosk
from db import service
from db.models import AuditRow, DownloadLinkRow, PhotoRow
from imagefiles import encoded
from servers import loopback_settings
from web.keys import STORAGE_KEY

pytestmark = pytest.mark.asyncio(loop_scope="module")

KIOSK = "front-hall"
DEMO = "demo-golden-meadow"
FRENCH_NOTICE = "Nous gardons votre photo 7 jours. <script>alert('x')</script>"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory, models_dir):
    settings = loopback_settings(tmp_path_factory.mktemp("booth-rest"), models_dir, **CHEAP_HASHES)
    async with running_with_staff(settings) as test_server:
        yield test_server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def admin(server):
    async with browser() as session:
        token = await sign_in(session, server, ADMIN)
        yield session, token


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def booth(server):
    client = await paired_booth(server, KIOSK)
    yield client
    await client.close()


async def _booth_page(booth, server, language: str) -> str:
    async with booth.get(server.make_url(f"/kiosk/{KIOSK}").with_query(lang=language)) as response:
        assert response.status == 200
        return await response.text()


async def test_staff_write_the_privacy_notice_per_language_and_the_booth_shows_the_visitors(server, admin, booth):
    session, token = admin
    async with session.get(server.make_url("/staff/privacy")) as response:
        assert response.status == 200
        page = await response.text()
    assert 'name="notice-fr"' in page and 'name="notice-ja"' in page and "Français" in page

    form = {"csrf_token": token, "notice-fr": FRENCH_NOTICE, "notice-de": ""}
    async with session.post(server.make_url("/staff/privacy"), data=form, allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"].endswith("notice=saved")

    french = await _booth_page(booth, server, "fr")
    assert escape(FRENCH_NOTICE) in french, "the French booth shows staff's French notice, escaped"
    assert "<script>alert" not in french
    german = await _booth_page(booth, server, "de")
    assert "Nous gardons" not in german and "Tage" in german, "German keeps its generated notice"
    async with session.get(server.make_url("/staff/privacy")) as response:
        page = await response.text()
    assert escape(FRENCH_NOTICE) in page and "<script>alert" not in page

    async with server.app[STORAGE_KEY].sessions() as db:
        audited = (await db.scalars(select(AuditRow).where(AuditRow.subject == "privacy_notices"))).all()
    assert [(row.actor, row.detail["value"]) for row in audited] == [(ADMIN[0], {"fr": FRENCH_NOTICE})]

    # Emptied: the French booth is back to the notice made from the settings, in French.
    form = {"csrf_token": token, "notice-fr": ""}
    async with session.post(server.make_url("/staff/privacy"), data=form, allow_redirects=False) as response:
        assert response.status == 303
    assert "Nous gardons" not in await _booth_page(booth, server, "fr")


async def test_only_administrators_edit_the_privacy_notice(server):
    async with browser() as session:
        token = await sign_in(session, server, OPERATOR)
        async with session.get(server.make_url("/staff/privacy"), allow_redirects=False) as response:
            assert response.status == 403
        form = {"csrf_token": token, "notice-fr": "Opérateur"}
        async with session.post(server.make_url("/staff/privacy"), data=form, allow_redirects=False) as response:
            assert response.status == 403
    assert "fr" not in server.app[STORAGE_KEY].settings.privacy_notices


async def _offered_on_the_booth(booth, server) -> set[str]:
    page = await _booth_page(booth, server, "en")
    embedded = page.split('<script type="application/json" id="artworks">')[1].split("</script>")[0]
    return {artwork["id"] for artwork in json.loads(embedded)}


async def _front_page(server) -> str:
    async with aiohttp.ClientSession() as http, http.get(server.make_url("/")) as response:
        assert response.status == 200
        return await response.text()


async def test_demos_step_aside_once_a_real_artwork_is_enabled(server, admin, booth):
    session, token = admin
    assert DEMO in await _offered_on_the_booth(booth, server) and f"/artworks/{DEMO}/" in await _front_page(server)

    upload = aiohttp.FormData({"csrf_token": token, "title": "Morning Coffee", "artist": "A. Painter", "year": "1901"})
    upload.add_field("image", encoded(skimage.data.coffee()), filename="coffee.jpg", content_type="image/jpeg")
    async with session.post(server.make_url("/staff/artworks"), data=upload, allow_redirects=False) as response:
        assert response.status == 303, await response.text()
        real = response.headers["Location"].split("?")[0].rsplit("/", 1)[1]

    offered = await _offered_on_the_booth(booth, server)
    assert real in offered and not any(artwork.startswith("demo-") for artwork in offered), "carousel and attract screen"
    front = await _front_page(server)
    assert f"/artworks/{real}/" in front and "/artworks/demo-" not in front
    async with aiohttp.ClientSession() as http:
        async with http.get(server.make_url(f"/artworks/{DEMO}/thumbnail.jpg")) as response:
            assert response.status == 404
        form = aiohttp.FormData({"artwork": DEMO})
        form.add_field("photo", encoded(skimage.data.astronaut()), filename="me.jpg", content_type="image/jpeg")
        async with http.post(server.make_url("/api/compose"), data=form) as response:
            assert response.status == 404, "a hidden demo cannot be composed with"
    async with session.get(server.make_url("/staff/artworks")) as response:
        listing = await response.text()
    demo_row = listing.split(f'data-artwork="{DEMO}"')[1].split("</tr>")[0]
    assert "Hidden while real artworks are enabled" in demo_row
    assert "Hidden while" not in listing.split(f'data-artwork="{real}"')[1].split("</tr>")[0]

    # Disabling the museum's artwork brings the demos back.
    form = {"csrf_token": token, "enabled": "0"}
    async with session.post(server.make_url(f"/staff/artworks/{real}/enabled"), data=form, allow_redirects=False) as response:
        assert response.status == 303
    assert DEMO in await _offered_on_the_booth(booth, server)


async def _save(server, picture: np.ndarray, kiosk: str | None, *, raw: np.ndarray | None = None):
    report = {"framing": "half-body", "people": 1, "timings_ms": {"faces": 1.0}, "variant": {"name": "gentle"}, "score": 0.4}
    return await server.app[STORAGE_KEY].save(
        encoded(picture), report, artwork_id=DEMO, kiosk_id=kiosk, raw_photo=encoded(raw) if raw is not None else None
    )


def _examples_on(page: str) -> list[str]:
    return re.findall(rf'src="(/api/kiosks/{KIOSK}/examples/[0-9a-f]+\.jpg)"', page)


async def test_the_attract_screen_shows_recent_photos_of_its_own_booth_only_when_staff_allow(server, admin, booth):
    session, token = admin
    colours = np.random.default_rng(7).integers(0, 255, (5, 240, 320, 3), dtype=np.uint8)
    shown, older = await _save(server, colours[0], KIOSK, raw=colours[4]), await _save(server, colours[1], KIOSK)
    withdrawn, deleted = await _save(server, colours[2], KIOSK), await _save(server, colours[3], KIOSK)
    storage = server.app[STORAGE_KEY]
    await registered_kiosk(storage.sessions, "other-booth")
    elsewhere = await _save(server, colours[0], "other-booth")
    async with storage.sessions() as db, db.begin():  # taken before the retention period
        await db.execute(update(PhotoRow).where(PhotoRow.id == older.photo_id).values(created_at=datetime.now(timezone.utc) - timedelta(days=31)))
        await db.execute(update(DownloadLinkRow).where(DownloadLinkRow.photo_id == withdrawn.photo_id).values(revoked=True))
    async with aiohttp.ClientSession() as phone:  # the visitor deletes theirs from the phone page
        async with phone.post(server.make_url(f"/p/{deleted.token}/delete"), allow_redirects=False) as response:
            assert response.status in (200, 303)
    url = f"/api/kiosks/{KIOSK}/examples/{shown.photo_id}.jpg"

    # Off by default: none on the screen, and the route has nothing to give.
    assert _examples_on(await _booth_page(booth, server, "en")) == []
    async with booth.get(server.make_url(url)) as response:
        assert response.status == 404

    form = {"csrf_token": token, "attract_example_photos": "true"}
    async with session.post(server.make_url("/staff/settings"), data=form, allow_redirects=False) as response:
        assert response.status == 303
    page = await _booth_page(booth, server, "en")
    assert _examples_on(page) == [url] and "Taken here recently" in page
    async with booth.get(server.make_url(url)) as response:
        assert response.status == 200 and response.content_type == "image/jpeg"
        assert response.headers["Cache-Control"] == "no-store"
        served = await response.read()
    assert served == await storage.store.get((await service.get_photo(storage.sessions, shown.photo_id)).result_key)
    for hidden in (older, withdrawn, deleted, elsewhere):  # nor can the booth fetch any other photo
        async with booth.get(server.make_url(f"/api/kiosks/{KIOSK}/examples/{hidden.photo_id}.jpg")) as response:
            assert response.status == 404

    # Only this booth's screen: a stranger and another paired booth are refused.
    async with aiohttp.ClientSession() as stranger, stranger.get(server.make_url(url)) as response:
        assert response.status == 401
    async with await paired_booth(server, "other-booth") as other:
        async with other.get(server.make_url(url)) as response:
            assert response.status in (401, 403)
        async with other.get(server.make_url(f"/api/kiosks/other-booth/examples/{shown.photo_id}.jpg")) as response:
            assert response.status == 404
