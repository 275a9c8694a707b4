"""The staff dashboard's Overview, Photos, Settings, Users and Audit-log sections, as staff meet
them: a real server on loopback with a real SQLite file and photo folder, browsers that keep
cookies, and Debian's Chromium for the gallery's delete button.

Photos are stored through the service's own save call (Storage.save) rather than composed, to
keep the tests fast; only composing a photo again, and the harmonization default, run the
real pipeline. One server serves the module; the settings test restarts one of its own.
"""

from __future__ import annotations

import html
import logging
import re
from datetime import datetime, timedelta, timezone

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
from sqlalchemy import update

from api_helpers import ADMIN, CHEAP_HASHES, OPERATOR, add_staff, browser, running_with_staff, sign_in
from booth_helpers import paired_booth, registered_kiosk
from db import reports, service
from db.models import PhotoRow
from fakecamera import CHROMIUM, CHROMIUM_ARGS
from imagefiles import decode_qr, encoded
from servers import loopback_settings, running
from web.keys import BOOTHS_KEY, STORAGE_KEY

pytestmark = pytest.mark.asyncio(loop_scope="module")

MEADOW = "demo-golden-meadow"
STUDIO = "demo-velvet-studio"
PHOTO_ID = re.compile(r'data-photo="([0-9a-f]{32})"')


def _report(total_ms: float, *, score: float = 0.61, variant: str = "gentle") -> dict:
    """A composition's report as the pipeline writes it; the stage times add up to ``total_ms``."""
    return {
        "framing": "half-body",
        "people": 2,
        "timings_ms": {"faces": total_ms * 0.25, "segmentation": total_ms * 0.5, "harmonize": total_ms * 0.25},
        "variant": {"name": variant, "targets": "learned", "reference": "ring", "strength": 0.7},
        "scores": {"default": 0.55, variant: score},
        "score": score,
    }


def _picture(seed: int, size: tuple[int, int] = (160, 120)) -> bytes:
    rng = np.random.default_rng(seed)
    return encoded(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


async def _save(server, *, artwork: str = MEADOW, kiosk: str | None = None, total_ms: float = 1000.0, raw: bytes | None = None):
    storage = server.app[STORAGE_KEY]
    if kiosk is not None:
        await registered_kiosk(storage.sessions, kiosk, seen=datetime.now(timezone.utc))
    return await storage.save(_picture(int(total_ms)), _report(total_ms), artwork_id=artwork, kiosk_id=kiosk, raw_photo=raw)


async def _move(server, photo_id: str, when: datetime) -> None:
    async with server.app[STORAGE_KEY].sessions() as session, session.begin():
        await session.execute(update(PhotoRow).where(PhotoRow.id == photo_id).values(created_at=when))


async def _get(client: aiohttp.ClientSession, server, path: str) -> tuple[int, str]:
    async with client.get(server.make_url(path), allow_redirects=False) as response:
        return response.status, await response.text()


async def _post(client: aiohttp.ClientSession, server, path: str, csrf: str, **fields) -> tuple[int, str, str]:
    """POST a dashboard form; (status, Location, body)."""
    async with client.post(server.make_url(path), data={"csrf_token": csrf, **fields}, allow_redirects=False) as response:
        return response.status, response.headers.get("Location", ""), await response.text()


def _figure(page: str, name: str) -> str:
    return re.search(rf'<dd id="{name}">([^<]*)</dd>', page).group(1)


@pytest.fixture(scope="module")
def dashboard_settings(tmp_path_factory, models_dir):
    # The camera photo is kept, so photos can be composed again.
    return loopback_settings(tmp_path_factory.mktemp("dashboard"), models_dir, **CHEAP_HASHES, ARTBOOTH_KEEP_RAW_PHOTOS="1")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(dashboard_settings):
    async with running_with_staff(dashboard_settings) as test_server:
        yield test_server


@pytest_asyncio.fixture(loop_scope="module")
async def admin(server):
    async with browser() as client:
        yield client, await sign_in(client, server, ADMIN)


@pytest_asyncio.fixture(loop_scope="module")
async def operator(server):
    async with browser() as client:
        yield client, await sign_in(client, server, OPERATOR)


# --- Overview (first: it counts every photo of the module's fresh database) --------------------------


async def test_overview_counts_photos_by_day_pipeline_times_kiosks_and_recent_problems(server, admin):
    client, _ = admin
    now = datetime.now(timezone.utc)
    today = [await _save(server, kiosk="front-door", total_ms=ms) for ms in (1000, 2000, 3000)]
    earlier = await _save(server, kiosk="front-door", total_ms=9000)
    await _move(server, earlier.photo_id, now - timedelta(days=2))
    long_ago = await _save(server, total_ms=50_000)
    await _move(server, long_ago.photo_id, now - timedelta(days=8))  # outside the 7 days
    # A booth gone quiet an hour ago, and one that checks in now.
    await registered_kiosk(server.app[STORAGE_KEY].sessions, "cellar", name="Cellar", seen=now - timedelta(hours=1))
    async with await paired_booth(server, "front-door") as booth:
        async with booth.post(server.make_url("/api/kiosks/front-door/heartbeat")) as response:
            assert response.status == 200
    logging.getLogger("kiosk.booths").warning("camera of booth %s unplugged <b>", "front-door")

    status, page = await _get(client, server, "/staff/")
    assert status == 200
    assert "Welcome, ada (admin)." in page
    assert _figure(page, "captures-today") == str(len(today))
    assert _figure(page, "captures-period") == "4"
    assert _figure(page, "pipeline-p50") == "2.0 s"  # of 1, 2, 3 and 9 seconds
    assert _figure(page, "pipeline-p95") == "9.0 s"
    assert _figure(page, "kiosks-online") == "1 of 2"  # front-door was just seen; cellar an hour ago
    # The chart: one bar per day, today's with its count, as inline SVG.
    chart = re.search(r'<svg class="chart".*?</svg>', page, re.S).group(0)
    assert chart.count("<rect") == 7
    assert f"{now:%Y-%m-%d}: 3 photos" in chart and f"{now - timedelta(days=2):%Y-%m-%d}: 1 photo" in chart
    assert "camera of booth front-door unplugged &lt;b&gt;" in page and "kiosk.booths" in page


async def test_the_overview_is_the_operators_landing_page_without_admin_sections(server, operator):
    client, _ = operator
    status, page = await _get(client, server, "/staff/")
    assert status == 200 and "Welcome, otto (operator)." in page
    assert 'href="/staff/photos"' in page and 'href="/staff/users"' not in page and 'href="/staff/settings"' not in page


# --- Photos -----------------------------------------------------------------------------------------


async def test_the_photo_list_filters_by_kiosk_artwork_and_date(server, admin):
    client, _ = admin
    now = datetime.now(timezone.utc)
    hall_meadow = await _save(server, kiosk="hall", artwork=MEADOW)
    hall_studio = await _save(server, kiosk="hall", artwork=STUDIO)
    attic_old = await _save(server, kiosk="attic", artwork=STUDIO)
    await _move(server, attic_old.photo_id, now - timedelta(days=20))

    sessions = server.app[STORAGE_KEY].sessions
    found, total = await service.list_photos(sessions, kiosk_id="hall")
    assert total == 2 and [p.id for p in found] == [hall_studio.photo_id, hall_meadow.photo_id]  # newest first
    found, total = await service.list_photos(sessions, artwork_id=STUDIO, until=now - timedelta(days=1))
    assert total == 1 and found[0].id == attic_old.photo_id

    def shown(page: str) -> list[str]:
        return PHOTO_ID.findall(page)

    status, page = await _get(client, server, "/staff/photos?kiosk=hall")
    assert status == 200 and shown(page) == [hall_studio.photo_id, hall_meadow.photo_id]
    assert 'id="photo-count">2 photos' in page
    assert "half body · 2 people" in page and "Blends in very well · Gentle colour-and-light match to the artwork" in page
    _, page = await _get(client, server, f"/staff/photos?kiosk=hall&artwork={STUDIO}")
    assert shown(page) == [hall_studio.photo_id]
    old_day = f"{now - timedelta(days=20):%Y-%m-%d}"
    _, page = await _get(client, server, f"/staff/photos?since={old_day}&until={old_day}")
    assert shown(page) == [attic_old.photo_id]
    status, page = await _get(client, server, "/staff/photos?since=last+tuesday")
    assert status == 400 and "From must be a date like 2026-11-22" in page
    _, page = await _get(client, server, "/staff/photos?kiosk=nowhere")
    assert shown(page) == [] and "No photos match these filters." in page and 'href="/staff/photos">Show all photos' in page

    # Thumbnails come through a staff route, to signed-in staff only.
    async with client.get(server.make_url(f"/staff/photos/{hall_meadow.photo_id}/thumbnail.jpg")) as response:
        assert response.status == 200 and response.content_type == "image/jpeg"
        assert (await response.read())[:2] == b"\xff\xd8"
    async with aiohttp.ClientSession() as anonymous:
        status, _ = await _get(anonymous, server, f"/staff/photos/{hall_meadow.photo_id}/thumbnail.jpg")
        assert status == 303


async def test_an_operator_withdraws_a_download_link_from_the_gallery(server, operator):
    client, csrf = operator
    saved = await _save(server, kiosk="hall")
    _, page = await _get(client, server, "/staff/photos?kiosk=hall")
    card = re.search(rf'<li class="photo" data-photo="{saved.photo_id}">.*?\n</li>', page, re.S).group(0)
    assert "Link valid until" in card
    # "Withdraw link" asks first, on a page of its own, with the form that does it.
    confirm = html.unescape(re.search(r'href="(/staff/photos/[0-9a-f]{32}/links/\d+/revoke\?back=[^"]+)"', card).group(1))
    status, page = await _get(client, server, confirm)
    assert status == 200 and "Withdraw this download link?" in page
    action = re.search(r'action="(/staff/photos/[0-9a-f]{32}/links/\d+/revoke)"', page).group(1)
    assert 'name="back" value="/staff/photos?kiosk=hall&amp;page=1"' in page  # back to the same list

    # Without the session's CSRF token nothing happens.
    status, _, _ = await _post(client, server, action, "not-the-token", back="/staff/photos?kiosk=hall")
    assert status == 403
    status, location, _ = await _post(client, server, action, csrf, back="/staff/photos?kiosk=hall")
    assert status == 303 and location == "/staff/photos?kiosk=hall&notice=revoked"
    _, page = await _get(client, server, location)
    assert "The download link was withdrawn" in page
    card = re.search(rf'<li class="photo" data-photo="{saved.photo_id}">.*?\n</li>', page, re.S).group(0)
    assert "Link withdrawn" in card and "Withdraw link" not in card
    async with aiohttp.ClientSession() as phone:
        async with phone.get(saved.url) as response:
            assert response.status == 410 and "withdrawn" in (await response.text()).lower()


async def test_staff_show_a_photos_qr_code_again_after_its_link_was_withdrawn_and_the_phone_opens_it(server, operator):
    client, csrf = operator
    saved = await _save(server, kiosk="hall")
    link_id = re.search(rf"/staff/photos/{saved.photo_id}/links/(\d+)/revoke", (await _get(client, server, f"/staff/photos/{saved.photo_id}"))[1]).group(1)
    status, _, _ = await _post(client, server, f"/staff/photos/{saved.photo_id}/links/{link_id}/revoke", csrf)
    assert status == 303
    _, page = await _get(client, server, f"/staff/photos/{saved.photo_id}")
    assert "Link withdrawn" in page and "Show the QR code again" in page

    status, _, page = await _post(client, server, f"/staff/photos/{saved.photo_id}/links", csrf)
    assert status == 200 and "The photo's QR code" in page
    assert re.search(r'<div class="qr photo-qr" id="photo-qr"[^>]*><svg', page)  # the code itself, drawn inline
    shown = re.search(r'<code id="photo-link">([^<]+)</code>', page).group(1)
    assert shown.startswith(str(server.make_url("/p/")))
    async with aiohttp.ClientSession() as phone:
        async with phone.get(shown) as response:
            assert response.status == 200 and f'src="/p/{shown.rsplit("/", 1)[1]}/photo.jpg"' in await response.text()
        async with phone.get(shown + "/photo.jpg") as response:
            assert response.status == 200 and (await response.read())[:2] == b"\xff\xd8"  # the photo itself
        async with phone.get(saved.url) as response:
            assert response.status == 410  # the withdrawn link stays withdrawn
    _, page = await _get(client, server, f"/staff/photos/{saved.photo_id}")
    assert "Link withdrawn" in page and "Link valid until" in page
    entries, _ = await reports.list_audit(server.app[STORAGE_KEY].sessions, action="link.create", actor=OPERATOR[0], limit=10, offset=0)
    assert [entry.subject for entry in entries] == [saved.photo_id]  # audited, like other staff actions
    # Without the session's CSRF token no link is made.
    status, _, _ = await _post(client, server, f"/staff/photos/{saved.photo_id}/links", "not-the-token")
    assert status == 403


async def test_a_booth_whose_camera_is_missing_is_shown_as_such_on_kiosks_and_overview(server, operator):
    client, _ = operator
    for kiosk_id, camera in (("no-camera", "missing"), ("plain-http", "insecure")):
        async with await paired_booth(server, kiosk_id) as booth:
            async with booth.post(server.make_url(f"/api/kiosks/{kiosk_id}/heartbeat"), json={"camera": camera}) as response:
                assert response.status == 200
    _, kiosks = await _get(client, server, "/staff/kiosks")
    _, overview = await _get(client, server, "/staff/")
    missing = kiosks.split('id="kiosk-no-camera"')[1].split("</section>")[0]
    insecure = kiosks.split('id="kiosk-plain-http"')[1].split("</section>")[0]
    assert "Camera missing" in missing and 'class="online"' not in missing
    assert "Camera blocked: page not secure (use HTTPS)" in insecure and 'class="online"' not in insecure
    row = re.search(r"<tr><td>no-camera</td>.*?</tr>", overview, re.S).group(0)
    assert "Camera missing" in row and 'class="online"' not in row


async def test_a_photo_is_composed_again_with_other_harmonization_and_keeps_its_link(server, admin, astronaut):
    client, csrf = admin
    saved = await _save(server, artwork=MEADOW, raw=encoded(astronaut))
    async with aiohttp.ClientSession() as phone:
        async with phone.get(saved.url + "/download") as response:
            before = await response.read()
    status, page = await _get(client, server, f"/staff/photos/{saved.photo_id}")
    assert status == 200 and 'action="/staff/photos/' in page and "Compose again" in page

    status, location, _ = await _post(
        client, server, f"/staff/photos/{saved.photo_id}/reharmonize", csrf,
        harmonize="on", targets="fitted", strength="0.5", reference="artwork",
    )
    assert status == 303 and location == f"/staff/photos/{saved.photo_id}?notice=reharmonized"
    photo = await service.get_photo(server.app[STORAGE_KEY].sessions, saved.photo_id)
    assert photo.variant["targets"] == "fitted" and photo.variant["reference"] in ("artwork", "ring")
    assert photo.people == 1 and photo.framing.value != "" and photo.timings["segmentation"] > 0
    _, page = await _get(client, server, location)
    assert "its download link now serves the new picture" in page and "&#34;targets&#34;: &#34;fitted&#34;" in page
    async with aiohttp.ClientSession() as phone:
        async with phone.get(saved.url + "/download") as response:
            assert response.status == 200
            after = await response.read()
    assert after != before and after[:2] == b"\xff\xd8"
    # The old result and thumbnail are gone; the new ones and the camera photo remain.
    stored = {p.name for p in server.app[STORAGE_KEY].settings.resolved_photos_dir.rglob("*") if p.is_file()}
    assert all(key.rsplit("/", 1)[-1] in stored for key in photo.file_keys)

    # Bad choices are refused with what to fix.
    status, _, page = await _post(
        client, server, f"/staff/photos/{saved.photo_id}/reharmonize", csrf, targets="fitted", strength="2", reference=""
    )
    assert status == 400 and "harmonize_strength must be in 0..1" in page


async def test_without_the_camera_photo_composing_again_is_unavailable_and_says_why(server, admin):
    client, csrf = admin
    saved = await _save(server, raw=None)
    _, page = await _get(client, server, f"/staff/photos/{saved.photo_id}")
    assert 'id="reharmonize-unavailable"' in page and "the camera photo was not kept" in page
    assert f'action="/staff/photos/{saved.photo_id}/reharmonize"' not in page
    status, _, page = await _post(client, server, f"/staff/photos/{saved.photo_id}/reharmonize", csrf, targets="fitted", strength="1")
    assert status == 409 and "its camera photo was not kept" in page


async def test_in_chromium_staff_withdraw_a_link_show_the_qr_code_again_and_delete_a_photo(server):
    from playwright.async_api import async_playwright

    saved = await _save(server, kiosk="garden")
    missed = await _save(server, kiosk="garden")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await chromium.new_page()
            await page.goto(str(server.make_url("/staff/photos?kiosk=garden")))
            await page.fill('input[name="username"]', OPERATOR[0])
            await page.fill('input[name="password"]', OPERATOR[1])
            await page.click('button[type="submit"]')
            await page.wait_for_url("**/staff/photos?kiosk=garden")
            # A visitor's link is withdrawn (asked first), then their QR code shown again on the photo's page.
            await page.locator(f'li.photo[data-photo="{missed.photo_id}"]').get_by_role("link", name="Withdraw link").click()
            await page.get_by_role("button", name="Withdraw the link").click()
            await page.get_by_text("The download link was withdrawn").wait_for()
            await page.goto(str(server.make_url(f"/staff/photos/{missed.photo_id}")))
            await page.get_by_role("button", name="Show the QR code again").click()
            code = page.locator("#photo-qr")
            await code.wait_for()
            shown_qr = decode_qr(await code.screenshot())
            shown_link = await page.locator("#photo-link").inner_text()
            await page.goto(str(server.make_url("/staff/photos?kiosk=garden")))
            card = page.locator(f'li.photo[data-photo="{saved.photo_id}"]')
            thumbnail = await card.locator("img").element_handle()
            # Waiting for the element is not waiting for its picture: a lazy thumbnail is still loading then.
            await page.wait_for_function("img => img.complete", arg=thumbnail)
            assert await thumbnail.evaluate("img => img.naturalWidth") > 0  # the thumbnail loaded
            await card.get_by_role("link", name="Delete").click()
            await page.get_by_role("heading", name="Delete this photo?").wait_for()
            await page.get_by_role("button", name="Delete the photo").click()
            await page.get_by_text("The photo was deleted.").wait_for()
            assert await page.locator(f'li.photo[data-photo="{saved.photo_id}"]').count() == 0
        finally:
            await chromium.close()
    async with aiohttp.ClientSession() as phone:
        async with phone.get(saved.url) as response:
            assert response.status == 410 and "This photo has been deleted" in await response.text()
        # The code on screen is the link shown beside it, and the visitor's phone opens the photo with it.
        assert shown_qr == shown_link and shown_link != missed.url
        async with phone.get(shown_qr + "/photo.jpg") as response:
            assert response.status == 200 and (await response.read())[:2] == b"\xff\xd8"


# --- Users, roles and the audit log -----------------------------------------------------------------


async def test_operators_are_refused_the_admin_sections(server, operator):
    client, csrf = operator
    for path in ("/staff/settings", "/staff/users", "/staff/audit"):
        status, page = await _get(client, server, path)
        assert status == 403 and "needs the admin role" in page, path
    status, _, _ = await _post(client, server, "/staff/users", csrf, username="mallory", role="admin", password="a long passphrase")
    assert status == 403
    status, _, _ = await _post(client, server, "/staff/settings", csrf, public_url="http://evil.example")
    assert status == 403
    assert await service.get_photo(server.app[STORAGE_KEY].sessions, "0" * 32) is None


async def test_admins_manage_users_and_the_last_admin_stays(server, admin):
    client, csrf = admin
    status, _, page = await _post(client, server, "/staff/users", csrf, username="Cleo", role="operator", password="short")
    assert status == 400 and "at least 10 characters" in page and 'value="Cleo"' in page
    status, location, _ = await _post(client, server, "/staff/users", csrf, username="Cleo", role="operator", password="cleo's long passphrase")
    assert status == 303 and location == "/staff/users?notice=created"
    status, _, page = await _post(client, server, "/staff/users", csrf, username="cleo", role="admin", password="another passphrase")
    assert status == 400 and "exists already" in page

    async with browser() as cleo_browser:
        await sign_in(cleo_browser, server, ("cleo", "cleo's long passphrase"))
        assert (await _get(cleo_browser, server, "/staff/users"))[0] == 403  # an operator
        status, location, _ = await _post(client, server, "/staff/users/cleo/role", csrf, role="admin")
        assert status == 303 and location == "/staff/users?notice=role"
        assert (await _get(cleo_browser, server, "/staff/users"))[0] == 200  # now an admin
        status, location, _ = await _post(client, server, "/staff/users/cleo/disable", csrf)
        assert status == 303
        assert (await _get(cleo_browser, server, "/staff/users"))[0] == 303  # signed out
    _, page = await _get(client, server, "/staff/users")
    assert re.search(r'data-user="cleo">.*?disabled', page, re.S)
    assert (await _post(client, server, "/staff/users/cleo/enable", csrf))[1] == "/staff/users?notice=enabled"
    status, location, _ = await _post(client, server, "/staff/users/cleo/password", csrf, password="cleo's new passphrase")
    assert location == "/staff/users?notice=password"
    async with browser() as cleo_browser:
        await sign_in(cleo_browser, server, ("cleo", "cleo's new passphrase"))

    # With cleo an admin, ada may step down; then cleo is the last admin and cannot be demoted or disabled.
    await _post(client, server, "/staff/users/cleo/role", csrf, role="operator")
    for path, fields in (("/staff/users/ada/role", {"role": "operator"}), ("/staff/users/ada/disable", {})):
        status, _, page = await _post(client, server, path, csrf, **fields)
        assert status == 409 and "The last active administrator (ada) cannot be demoted or disabled" in page, path
    _, page = await _get(client, server, "/staff/users")
    assert re.search(r'data-user="ada">.*?<option value="admin" selected>', page, re.S)
    status, _, page = await _post(client, server, "/staff/users/nobody/disable", csrf)
    assert status == 404 and "There is no user &#39;nobody&#39;" in page


async def test_the_audit_log_lists_actions_newest_first_and_filters(server, admin):
    client, csrf = admin
    # The actions this test reads back are its own: the module's tests may run in any order, or apart.
    await _post(client, server, "/staff/users", csrf, username="dora", role="operator", password="dora's long passphrase")
    for role in ("admin", "operator"):  # and back: the module's other tests count the admins
        await _post(client, server, "/staff/users/dora/role", csrf, role=role)
    saved = await _save(server)
    await _post(client, server, f"/staff/photos/{saved.photo_id}/delete", csrf)
    status, page = await _get(client, server, "/staff/audit")
    assert status == 200
    rows = re.findall(r'<tr><td class="when">[^<]*</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>', page)
    assert rows[0] == ("ada", "photo.delete", saved.photo_id)  # the newest first
    assert ("ada", "staff.create_user", "dora") in rows
    _, page = await _get(client, server, "/staff/audit?action=staff.change_role&actor=ada")
    rows = re.findall(r'<tr><td class="when">[^<]*</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>', page)
    assert rows and {row[1] for row in rows} == {"staff.change_role"} and {row[0] for row in rows} == {"ada"}
    assert '<option value="photo.delete">' in page


# --- Settings ---------------------------------------------------------------------------------------


async def test_dashboard_settings_take_effect_at_once_and_survive_a_restart(tmp_path, models_dir, grace_hopper):
    settings = loopback_settings(tmp_path / "data", models_dir, **CHEAP_HASHES, ARTBOOTH_PHOTO_RETENTION_DAYS="14")
    booth_url = "http://192.0.2.44:8080"
    async with running(settings) as first:
        await add_staff(first)
        async with browser() as client:
            csrf = await sign_in(client, first, ADMIN)
            status, page = await _get(client, first, "/staff/settings")
            assert status == 200
            assert re.search(r'data-setting="photo_retention_days">.*?<td class="source">environment</td>', page, re.S)
            assert re.search(r'data-setting="harmonize_targets">.*?<td class="source">default</td>', page, re.S)

            status, _, page = await _post(client, first, "/staff/settings", csrf, photo_retention_days="-3")
            assert status == 400 and "Nothing was saved: photo_retention_days must be 0 or more" in page
            status, location, _ = await _post(
                client, first, "/staff/settings", csrf,
                public_url=booth_url, photo_retention_days="14", harmonize_targets="learned",
                privacy_notice="Photos stay 14 days. Ask staff to delete yours.", kiosk_result_seconds="45",
            )
            assert status == 303 and location == "/staff/settings?notice=saved"
            _, page = await _get(client, first, "/staff/settings")
            assert re.search(
                r'data-setting="public_url">.*?set in the dashboard; without it: http://127\.0\.0\.1:\d+ \(environment\)', page, re.S
            )
            # Saved unchanged, retention keeps its source.
            assert re.search(r'data-setting="photo_retention_days">.*?<td class="source">environment</td>', page, re.S)

            # In effect at once: the next download link, the booth's notice, the pipeline's defaults,
            # the live preview's colour correction.
            assert first.app[BOOTHS_KEY].preview_models.harmonizer.default_targets == "learned"
            saved = await _save(first)
            assert saved.url.startswith(booth_url + "/p/")
            async with await paired_booth(first, "lobby") as kiosk:
                async with kiosk.get(first.make_url("/kiosk/lobby")) as response:
                    booth_page = await response.text()
                    assert "Photos stay 14 days. Ask staff to delete yours." in booth_page
                    assert 'data-result-seconds="45"' in booth_page  # the QR code stays 45 s on this booth now
                form = aiohttp.FormData()
                form.add_field("photo", encoded(grace_hopper), filename="me.jpg", content_type="image/jpeg")
                form.add_field("artwork", MEADOW)
                async with kiosk.post(first.make_url("/api/compose"), data=form) as response:
                    assert response.status == 200, await response.text()
                    composed = await response.json()
            assert composed["report"]["variant"]["targets"] == "learned"
            assert composed["download_url"].startswith(booth_url)

    async with running(settings) as second:  # the same database, a new process's worth of state
        assert second.app[BOOTHS_KEY].preview_models.harmonizer.default_targets == "learned"
        async with browser() as client:
            csrf = await sign_in(client, second, ADMIN)
            assert (await _save(second)).url.startswith(booth_url + "/p/")
            status, location, _ = await _post(client, second, "/staff/settings/reset", csrf, name="public_url")
            assert status == 303 and location == "/staff/settings?notice=reset"
            assert (await _save(second)).url.startswith(f"http://127.0.0.1:{settings.port}/p/")
            _, page = await _get(client, second, "/staff/settings")
            assert re.search(r'data-setting="public_url">.*?<td class="source">environment</td>', page, re.S)
            assert re.search(r'data-setting="harmonize_targets">.*?set in the dashboard', page, re.S)
            _, page = await _get(client, second, "/staff/audit?action=settings.change")
            assert "harmonize_targets" in page and "privacy_notice" in page and "photo_retention_days" not in page
