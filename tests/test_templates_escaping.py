"""Every value staff can edit reaches every page escaped (issue 13: pages from autoescaped templates).

Script payloads go into each field through the real routes (artwork title, artist and year, kiosk
name and location, the privacy notice, the public URL, an API token's name, what a refused form
echoes back: a username, an audit filter); then every staff and visitor page that shows them is
fetched and must show the payload as text, never as markup. One server for the whole module.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

import aiohttp
import numpy as np
import pytest
import pytest_asyncio

from api_helpers import ADMIN, CHEAP_HASHES, browser, running_with_staff, sign_in
from booth_helpers import paired_booth
from imagefiles import encoded
from servers import loopback_settings
from web.keys import STORAGE_KEY

pytestmark = pytest.mark.asyncio(loop_scope="module")

SCRIPT = "<script>alert(1)</script>"
QUOTE_BREAK = '"><img src=x onerror=alert(1)>'
# What a payload must never be on a page: markup the browser would run.
RAW = (SCRIPT, "<img src=x onerror")
KIOSK = "xss-booth"
REPORT = {"framing": "half-body", "people": 1, "timings_ms": {"faces": 1.0}, "variant": {"name": "gentle"}, "score": 0.4}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory, models_dir):
    async with running_with_staff(loopback_settings(tmp_path_factory.mktemp("escaping"), models_dir, **CHEAP_HASHES)) as test_server:
        yield test_server


def _assert_escaped(page: str, where: str) -> None:
    for raw in RAW:
        assert raw not in page, f"{where} shows {raw!r} unescaped"
    # The payload is on the page, as text: the check above looked at a page that shows it.
    assert "&lt;script&gt;" in page or "&lt;img src=x" in page or "\\u003cscript\\u003e" in page, f"{where} does not show the payload"


async def _post(client: aiohttp.ClientSession, server, path: str, data, *, expect: int = 303) -> str:
    async with client.post(server.make_url(path), data=data, allow_redirects=False) as response:
        body = await response.text()
        assert response.status == expect, (path, response.status, body[:500])
        return body


async def _get(client: aiohttp.ClientSession, server, path: str, language: str = "en") -> str:
    async with client.get(server.make_url(path), headers={"Accept-Language": language}) as response:
        assert response.status == 200, (path, response.status)
        return await response.text()


async def test_every_field_staff_edit_is_shown_escaped_on_every_page(server):
    async with browser() as client:
        csrf = await sign_in(client, server, ADMIN)
        pages: dict[str, str] = {}

        # The artwork's credit, uploaded through the dashboard's form.
        upload = aiohttp.FormData()
        upload.add_field("csrf_token", csrf)
        upload.add_field("title", SCRIPT)
        upload.add_field("artist", QUOTE_BREAK)
        upload.add_field("year", SCRIPT)
        painting = np.random.default_rng(13).integers(0, 255, (300, 400, 3), dtype=np.uint8)
        upload.add_field("image", encoded(painting), filename="painting.jpg", content_type="image/jpeg")
        async with client.post(server.make_url("/staff/artworks"), data=upload, allow_redirects=False) as response:
            assert response.status == 303, await response.text()
            artwork_url = response.headers["Location"].split("?")[0]
        artwork_id = artwork_url.rsplit("/", 1)[1]

        # A kiosk's name and location; the settings' free text; an API token's name.
        await _post(client, server, "/staff/kiosks", {"csrf_token": csrf, "id": KIOSK, "name": SCRIPT, "location": QUOTE_BREAK})
        await _post(
            client,
            server,
            "/staff/settings",
            {"csrf_token": csrf, "privacy_notice": SCRIPT + QUOTE_BREAK, "public_url": f"http://museum.example/{QUOTE_BREAK}"},
        )
        pages["token created"] = await _post(
            client, server, "/staff/tokens", {"csrf_token": csrf, "name": SCRIPT, "scopes": "photos:read"}, expect=200
        )
        # Refused forms show what was typed again.
        pages["user refused"] = await _post(
            client, server, "/staff/users", {"csrf_token": csrf, "username": SCRIPT, "role": "operator", "password": "x" * 12}, expect=400
        )
        pages["kiosk refused"] = await _post(
            client, server, "/staff/kiosks", {"csrf_token": csrf, "id": QUOTE_BREAK, "name": SCRIPT}, expect=400
        )
        pages["pairing"] = await _post(client, server, f"/staff/kiosks/{KIOSK}/pair", {"csrf_token": csrf}, expect=200)

        # A visitor's photo of that artwork at that kiosk.
        saved = await server.app[STORAGE_KEY].save(encoded(painting), REPORT, artwork_id=artwork_id, kiosk_id=KIOSK)
        link_page = await _get(client, server, f"/staff/photos/{saved.photo_id}")
        revoke = re.search(r'href="(/staff/photos/[0-9a-f]+/links/\d+/revoke[^"]*)"', link_page).group(1).replace("&amp;", "&")

        for name, path in (
            ("overview", "/staff/"),
            ("photos", "/staff/photos"),
            ("photo", f"/staff/photos/{saved.photo_id}"),
            ("photo delete", f"/staff/photos/{saved.photo_id}/delete"),
            ("link withdraw", revoke),
            ("kiosks", "/staff/kiosks"),
            ("artworks", "/staff/artworks"),
            ("artwork editor", artwork_url),
            ("artwork delete", f"{artwork_url}/delete"),
            ("settings", "/staff/settings"),
            ("tokens", "/staff/tokens"),
            ("audit", "/staff/audit"),
            ("audit filtered", f"/staff/audit?actor={SCRIPT}"),
            ("photos filtered", f"/staff/photos?artwork={artwork_id}"),
        ):
            pages[name] = await _get(client, server, path)
            # And in a language with a catalogue (its plurals and placeholders are filled differently).
            pages[f"{name} (ja)"] = await _get(client, server, path, "ja")
            assert '<html lang="ja">' in pages[f"{name} (ja)"], name

    # A sign-in refused echoes the username typed.
    async with browser() as stranger:
        login = await _get(stranger, server, "/staff/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)
        pages["sign-in refused"] = await _post(
            stranger, server, "/staff/login", {"csrf_token": token, "username": SCRIPT, "password": "wrong password"}, expect=401
        )
    # The visitor's side: the phone's photo page and the booth's own page.
    async with aiohttp.ClientSession() as phone:
        pages["phone photo page"] = await _get(phone, server, f"/p/{saved.token}")
    booth = await paired_booth(server, KIOSK)
    async with booth:
        pages["booth"] = await _get(booth, server, f"/kiosk/{KIOSK}")

    assert datetime.now(timezone.utc) < saved.expires_at  # the link the pages show still works
    for where, page in pages.items():
        _assert_escaped(page, where)


async def test_staff_pages_speak_the_language_asked_for(server):
    async with browser() as client:
        page = await _get(client, server, "/staff/login?lang=fr")
        assert '<html lang="fr">' in page and "Connexion du personnel" in page and "Nom d’utilisateur" in page
        await sign_in(client, server, ADMIN)
        async with client.get(server.make_url("/staff/kiosks"), headers={"Accept-Language": "ja, en;q=0.5"}) as response:
            page = await response.text()
        assert '<html lang="ja">' in page and "ブースを登録" in page and "Register a kiosk" not in page
