"""The staff dashboard's Artworks and Kiosks sections: the catalogue's changes against a real SQLite
file and photo store, then the pages in Debian's Chromium against the real server on loopback
(sign in, upload, draw the boxes by dragging, save, find the artwork in the kiosk's carousel)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
from sqlalchemy import select

from booth_helpers import paired_booth, registered_kiosk
from db import booths, service, staff
from db.models import AuditRow, StaffRole
from fakecamera import CHROMIUM, CHROMIUM_ARGS
from imagefiles import encoded
from kiosk.auth import Passwords
from servers import loopback_settings, running
from kiosk.artworks import ArtworkLibrary
from kiosk.catalogue import ArtworkCatalogue, ArtworkEdit
from kiosk.demo_gallery import DEMO_ARTWORKS
from kiosk.errors import (
    ArtworkImageError,
    ArtworkInUseError,
    ArtworkNotFoundError,
    ExitCode,
    InvalidEditError,
    KioskExistsError,
)
from kiosk.settings import Settings
from kiosk.storage import Storage
from pipeline.codec import decode_image
from pipeline.types import Framing
from web.keys import CATALOGUE_KEY, STORAGE_KEY

DEMO = DEMO_ARTWORKS[0].spec
REPORT = {"artwork": "", "people": 1, "framing": "half-body", "timings_ms": {"decode": 1.0}}


def painting(width: int = 320, height: int = 240) -> np.ndarray:
    """A small artwork: a sky over a field, with a sun."""
    image = np.empty((height, width, 3), np.uint8)
    image[: height // 2] = (90, 140, 210)
    image[height // 2 :] = (70, 130, 60)
    image[20:60, 30:70] = (250, 220, 80)
    return image


def png(image: np.ndarray) -> bytes:
    return encoded(image, "PNG")


class Service:
    """The service's storage and catalogue, opened as a start of `artbooth serve` opens them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def __aenter__(self) -> Service:
        self.storage = await Storage.open(self.settings)
        self.catalogue = ArtworkCatalogue(self.storage, ArtworkLibrary(self.settings))
        await self.catalogue.sync()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.storage.close()

    def stored_files(self) -> list:
        root = self.settings.resolved_photos_dir
        return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []

    async def audit(self, action: str) -> list[AuditRow]:
        async with self.storage.sessions() as session:
            return list(await session.scalars(select(AuditRow).where(AuditRow.action == action).order_by(AuditRow.id)))

    async def record(self, artwork_id: str):
        return await service.get_artwork(self.storage.sessions, artwork_id)


@pytest_asyncio.fixture
async def booth(settings) -> Service:
    async with Service(settings) as opened:
        yield opened


# --- the catalogue -----------------------------------------------------------------------------


async def test_an_upload_gets_an_id_from_its_title_default_boxes_and_a_re_encoded_image(booth):
    first = await booth.catalogue.create(png(painting()), title="  Sunny   Field ", artist="", year="2024", actor="ada")
    again = await booth.catalogue.create(png(painting()), title="Sunny field!", artist="B. Painter", year="", actor="ada")
    assert (first.spec.id, again.spec.id) == ("sunny-field", "sunny-field-2")
    assert first.spec.title == "Sunny Field" and first.spec.artist == "Unknown artist" and first.spec.year == "2024"
    assert first.enabled and first.available and not first.spec.demo
    assert {f.value for f in first.spec.boxes} == {"close-up", "half-body", "full-body"}

    # Offered right away, in place of the demos, its image a JPEG of the same picture in the photo store.
    offered = [record.spec.id for record in await booth.catalogue.records()]
    assert offered == ["sunny-field", "sunny-field-2"]
    path = await booth.catalogue.image_file(first)
    assert path.suffix == ".jpg" and path in booth.stored_files()
    stored = decode_image(path.read_bytes(), max_pixels=10**6)
    assert stored.shape == (240, 320, 3) and np.abs(stored.astype(int) - painting()).mean() < 3
    assert [(entry.actor, entry.subject) for entry in await booth.audit("artwork.create")] == [
        ("ada", "sunny-field"),
        ("ada", "sunny-field-2"),
    ]


async def test_what_is_not_an_acceptable_image_or_title_is_refused_and_nothing_is_kept(booth, settings):
    before = booth.stored_files()
    cases = [
        (b"", ExitCode.EMPTY_FILE, "empty"),
        (b"plain text, not a picture", ExitCode.NOT_AN_IMAGE, "not an image"),
        (png(painting())[:300], ExitCode.TRUNCATED_IMAGE, "truncated"),
    ]
    for data, code, message in cases:
        with pytest.raises(ArtworkImageError, match=message) as refused:
            await booth.catalogue.create(data, title="Broken", artist="", year="", actor="ada")
        assert refused.value.exit_code is code
    with pytest.raises(InvalidEditError, match="give the artwork a title"):
        await booth.catalogue.create(png(painting()), title="  ", artist="", year="", actor="ada")
    with pytest.raises(InvalidEditError, match="at most 64"):
        await booth.catalogue.create(png(painting()), title="Long year", artist="", year="9" * 65, actor="ada")
    assert booth.stored_files() == before
    assert await booth.record("broken") is None

    # Over the pixel limit: refused from the header, before the pixels are decoded.
    small_settings = Settings.load(
        environ={
            "ARTBOOTH_DATA_DIR": str(settings.data_dir),
            "ARTBOOTH_MODELS_DIR": str(settings.models_dir),
            "ARTBOOTH_MAX_IMAGE_PIXELS": "50000",
        }
    )
    async with Service(small_settings) as strict:
        with pytest.raises(ArtworkImageError, match="over the limit of 50,000") as refused:
            await strict.catalogue.create(png(painting()), title="Too big", artist="", year="", actor="ada")
        assert refused.value.exit_code is ExitCode.IMAGE_TOO_LARGE


async def test_edits_change_what_visitors_get_and_bad_boxes_say_what_to_fix(booth):
    record = await booth.catalogue.create(png(painting()), title="Field", artist="", year="", actor="ada")
    edited = await booth.catalogue.update(
        record.spec.id,
        ArtworkEdit(
            title="Field at noon",
            artist="A. Artist",
            year="1901",
            boxes={"close-up": [0.1, 0.2, 0.5, 1.0], "full-body": (0.45, 0.4, 0.55, 0.9)},
            reference_region=[0.0, 0.0, 1.0, 0.5],
        ),
        actor="ada",
    )
    spec = edited.spec
    assert (spec.title, spec.artist, spec.year) == ("Field at noon", "A. Artist", "1901")
    assert spec.boxes[Framing.CLOSE_UP].to_list() == [0.1, 0.2, 0.5, 1.0]
    assert spec.boxes[Framing.FULL_BODY].to_list() == [0.45, 0.4, 0.55, 0.9]
    assert spec.boxes[Framing.HALF_BODY] == record.spec.boxes[Framing.HALF_BODY]  # not given: unchanged
    assert spec.reference_region.to_list() == [0.0, 0.0, 1.0, 0.5] and spec.reference_mode.value == "region"
    # The kiosks' source of the artwork is the edited one.
    assert (await booth.catalogue.source(record.spec.id)).spec == spec
    [entry] = await booth.audit("artwork.update")
    assert entry.actor == "ada" and entry.detail["title"] == "Field at noon"
    assert entry.detail["boxes"]["close-up"] == [0.1, 0.2, 0.5, 1.0]

    refusals = [
        (ArtworkEdit(boxes={"portrait": [0, 0, 1, 1]}), "unknown framing 'portrait'"),
        (ArtworkEdit(boxes={"close-up": [0.2, 0.2, 1.3, 1.0]}), "inside the image"),
        (ArtworkEdit(boxes={"half-body": [0.6, 0.2, 0.4, 1.0]}), "positive width"),
        (ArtworkEdit(boxes={"half-body": [0.1, 0.2, 0.4]}), "four numbers"),
        (ArtworkEdit(reference_region=[0.5, 0.5, 0.5, 0.9]), "positive width"),
        (ArtworkEdit(reference_region=None, reference_mode="region"), "draw the reference region"),
        (ArtworkEdit(reference_mode="sky"), "one of artwork, ring, region"),
        (ArtworkEdit(title=""), "give the artwork a title"),
    ]
    for edit, message in refusals:
        with pytest.raises(InvalidEditError, match=message):
            await booth.catalogue.update(record.spec.id, edit, actor="ada")
    assert (await booth.record(record.spec.id)).spec == spec
    with pytest.raises(ArtworkNotFoundError):
        await booth.catalogue.update("no-such-artwork", ArtworkEdit(title="x"), actor="ada")

    # Removing the region while it is the reference falls back to the whole artwork.
    plain = await booth.catalogue.update(record.spec.id, ArtworkEdit(reference_region=None), actor="ada")
    assert plain.spec.reference_region is None and plain.spec.reference_mode.value == "artwork"


async def test_disabled_artworks_are_not_offered_and_the_order_is_staffs(booth):
    ids = [record.spec.id for record in await booth.catalogue.records()]
    assert len(ids) == len(DEMO_ARTWORKS) >= 3
    await booth.catalogue.update(ids[0], ArtworkEdit(enabled=False), actor="ada")
    assert [r.spec.id for r in await booth.catalogue.records()] == ids[1:]
    with pytest.raises(ArtworkNotFoundError):
        await booth.catalogue.offered(ids[0])
    await booth.catalogue.reorder([ids[2], ids[1]], actor="ada")
    assert [r.spec.id for r in await booth.catalogue.records(include_hidden=True)] == [ids[2], ids[1], ids[0], *ids[3:]]
    [entry] = await booth.audit("artwork.reorder")
    assert entry.detail["order"][:3] == [ids[2], ids[1], ids[0]]
    with pytest.raises(InvalidEditError, match="more than once"):
        await booth.catalogue.reorder([ids[1], ids[1]], actor="ada")
    with pytest.raises(ArtworkNotFoundError, match="nope"):
        await booth.catalogue.reorder(["nope"], actor="ada")
    # Neither needs the image copied: the demos stay the library's.
    assert not booth.stored_files()


async def test_an_artwork_with_photos_cannot_be_deleted_but_an_unused_upload_can(booth):
    used = await booth.catalogue.create(png(painting()), title="Used", artist="", year="", actor="ada")
    unused = await booth.catalogue.create(png(painting()), title="Unused", artist="", year="", actor="ada")
    photo = encoded(painting(160, 120), "JPEG")
    await booth.storage.save(photo, REPORT | {"artwork": used.spec.id}, artwork_id=used.spec.id)

    with pytest.raises(ArtworkInUseError, match="Disable it instead"):
        await booth.catalogue.delete(used.spec.id, actor="ada")
    assert await booth.record(used.spec.id) is not None
    with pytest.raises(ArtworkInUseError, match="demo"):
        await booth.catalogue.delete(DEMO.id, actor="ada")

    image = await booth.catalogue.image_file(unused)
    await booth.catalogue.delete(unused.spec.id, actor="ada")
    assert await booth.record(unused.spec.id) is None and not image.exists()
    assert [entry.subject for entry in await booth.audit("artwork.delete")] == [unused.spec.id]
    with pytest.raises(ArtworkNotFoundError):
        await booth.catalogue.delete(unused.spec.id, actor="ada")


async def test_staff_edits_of_folder_and_demo_artworks_survive_restarts(settings):
    folder = settings.resolved_artworks_dir
    folder.mkdir(parents=True)
    (folder / "harbour.png").write_bytes(png(painting()))
    sidecar = {"title": "Harbour", "artist": "Folder Painter", "year": "1880",
               "boxes": {"close-up": [0.3, 0.3, 0.7, 1.0], "half-body": [0.25, 0.35, 0.75, 1.0],
                         "full-body": [0.4, 0.3, 0.6, 0.95]}}
    (folder / "harbour.json").write_text(json.dumps(sidecar))
    async with Service(settings) as first:
        uploaded = await first.catalogue.create(png(painting()), title="Upload", artist="", year="", actor="ada")
        await first.catalogue.update("harbour", ArtworkEdit(title="The Harbour", boxes={"full-body": [0.1, 0.1, 0.3, 0.9]}), actor="ada")
        await first.catalogue.update(DEMO.id, ArtworkEdit(artist="Staff's credit"), actor="ada")
        harbour = await first.record("harbour")
        # The first edit moved the image into the photo store; the folder file is left alone.
        assert not harbour.image_key.startswith("folder:") and (folder / "harbour.png").exists()

    # Someone edits the sidecar too; at the next start the dashboard's version stays.
    (folder / "harbour.json").write_text(json.dumps(sidecar | {"title": "Harbour (sidecar)"}))
    async with Service(settings) as restarted:
        harbour = await restarted.record("harbour")
        assert harbour.spec.title == "The Harbour"
        assert harbour.spec.boxes[Framing.FULL_BODY].to_list() == [0.1, 0.1, 0.3, 0.9]
        assert (await restarted.record(DEMO.id)).spec.artist == "Staff's credit"
        assert (await restarted.record(uploaded.spec.id)).available  # the import does not retire uploads
        offered = {record.spec.id: record for record in await restarted.catalogue.records()}
        # Real artworks are enabled, so the demos (edited or not) step aside.
        assert {"harbour", uploaded.spec.id} <= set(offered) and DEMO.id not in offered
        # The edited artworks compose from their copies.
        source = await restarted.catalogue.source("harbour")
        assert source.spec.title == "The Harbour" and source.image_path.is_file()
        assert decode_image(source.image_path.read_bytes(), max_pixels=10**6).shape == (240, 320, 3)
        # An unedited demo is still the library's, updated from it as before.
        assert (await restarted.record(DEMO_ARTWORKS[1].spec.id)).image_key.startswith("demo:")


# --- kiosks --------------------------------------------------------------------------------------


async def test_kiosks_are_registered_edited_and_offer_the_artworks_staff_chose(booth):
    sessions = booth.storage.sessions
    now = datetime.now(timezone.utc)
    kiosk = await service.register_kiosk(sessions, "hall-1", name=" Hall 1 ", location="East wing", actor="otto", now=now)
    assert (kiosk.id, kiosk.name, kiosk.location, kiosk.artwork_ids, kiosk.last_seen) == (
        "hall-1", "Hall 1", "East wing", (), None
    )
    with pytest.raises(KioskExistsError):
        await service.register_kiosk(sessions, "hall-1", name="Again", location="", actor="otto", now=now)
    with pytest.raises(InvalidEditError, match="lowercase letters"):
        await service.register_kiosk(sessions, "Hall 2", name="x", location="", actor="otto", now=now)

    ids = [record.spec.id for record in await booth.catalogue.records()]
    assert [r.spec.id for r in await booth.catalogue.offered_at("hall-1")] == ids  # none chosen: all
    updated = await service.update_kiosk(
        sessions, "hall-1", name="Hall one", artwork_ids=[ids[1], ids[0]], actor="otto", now=now
    )
    assert updated.name == "Hall one" and updated.location == "East wing" and set(updated.artwork_ids) == set(ids[:2])
    assert [r.spec.id for r in await booth.catalogue.offered_at("hall-1")] == ids[:2]  # in staff's order
    with pytest.raises(InvalidEditError, match="no artwork 'gone'"):
        await service.update_kiosk(sessions, "hall-1", artwork_ids=["gone"], actor="otto", now=now)

    # The booth's own check-ins keep staff's name; with all of its artworks disabled it offers the rest.
    await booths.note_seen(sessions, "hall-1", now=now)
    [listed] = await service.list_kiosks(sessions)
    assert listed.name == "Hall one" and listed.last_seen == now
    for artwork_id in ids[:2]:
        await booth.catalogue.update(artwork_id, ArtworkEdit(enabled=False), actor="ada")
    assert [r.spec.id for r in await booth.catalogue.offered_at("hall-1")] == ids[2:]
    [registered] = await booth.audit("kiosk.register")
    [changed] = await booth.audit("kiosk.update")
    assert (registered.actor, changed.actor, changed.detail["name"]) == ("otto", "otto", "Hall one")


# --- the pages, on a real server -------------------------------------------------------------------

ADA = ("ada", "ada's long passphrase")  # admin
OTTO = ("otto", "otto's long passphrase")  # operator
# Cheap password hashes: the sign-ins here are not what is tested.
CHEAP_HASHES = {"ARTBOOTH_PASSWORD_HASH_MEMORY_MIB": "8", "ARTBOOTH_PASSWORD_HASH_TIME_COST": "1"}
CSRF_VALUE = re.compile(r'name="csrf_token" value="([A-Za-z0-9_-]{43})"')
# The boxes the browser test draws: fractions of the image, dragged from corner to corner.
DRAWN = {
    "close-up": (0.30, 0.25, 0.70, 1.0),
    "half-body": (0.20, 0.35, 0.55, 0.98),
    "full-body": (0.60, 0.20, 0.75, 0.90),
    "reference": (0.05, 0.05, 0.95, 0.45),
}

web_test = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def web_settings(tmp_path_factory, models_dir) -> Settings:
    return loopback_settings(tmp_path_factory.mktemp("dashboard"), models_dir, **CHEAP_HASHES)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server(web_settings):
    async with running(web_settings) as test_server:
        passwords = Passwords.from_settings(web_settings)
        for (name, password), role in ((ADA, StaffRole.ADMIN), (OTTO, StaffRole.OPERATOR)):
            await staff.create_user(
                test_server.app[STORAGE_KEY].sessions,
                username=name,
                password_hash=passwords.hash(password),
                role=role,
                actor="test",
                now=datetime.now(timezone.utc),
            )
        yield test_server


@pytest_asyncio.fixture(loop_scope="module")
async def signed_in(server):
    """``await signed_in(user)``: an HTTP client with that user's session, and its CSRF token."""
    clients: list[aiohttp.ClientSession] = []

    async def sign_in(user: tuple[str, str]) -> tuple[aiohttp.ClientSession, str]:
        client = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # unsafe: cookies for 127.0.0.1
        clients.append(client)
        async with client.get(server.make_url("/staff/login")) as response:
            token = CSRF_VALUE.search(await response.text()).group(1)
        form = {"csrf_token": token, "username": user[0], "password": user[1]}
        async with client.post(server.make_url("/staff/login"), data=form, allow_redirects=False) as response:
            assert response.status == 303
        async with client.get(server.make_url("/api/v1/me")) as response:
            return client, (await response.json())["csrf_token"]

    yield sign_in
    for client in clients:
        await client.close()


def kiosk_artworks(page_html: str) -> list[str]:
    listed = page_html.split('<script type="application/json" id="artworks">')[1].split("</script>")[0]
    return [artwork["id"] for artwork in json.loads(listed)]


async def _chromium(playwright):
    return await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@web_test
async def test_staff_upload_an_artwork_draw_its_boxes_and_find_it_in_the_kiosk_carousel(server):
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await _chromium(playwright)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1400})
            await page.goto(str(server.make_url("/staff/artworks")))  # not signed in: the sign-in page first
            await page.fill('input[name="username"]', ADA[0])
            await page.fill('input[name="password"]', ADA[1])
            await page.click('button:has-text("Sign in")')
            await page.wait_for_url("**/staff/artworks")

            await page.set_input_files(
                'input[name="image"]',
                files=[{"name": "harbour.png", "mimeType": "image/png", "buffer": png(painting(640, 400))}],
            )
            await page.fill('input[name="title"]', "Evening Harbour")
            await page.fill('input[name="artist"]', "Test Painter")
            await page.click('button:has-text("Upload")')
            await page.wait_for_url("**/staff/artworks/evening-harbour?added=1")
            assert "Now draw its boxes" in await page.text_content("main")

            drawing = page.locator(".drawing img")
            await page.wait_for_function("document.querySelector('.drawing img').naturalWidth > 0")
            await drawing.scroll_into_view_if_needed()
            frame = await drawing.bounding_box()
            for region, (x0, y0, x1, y1) in DRAWN.items():
                await page.check(f'input[name="draw"][value="{region}"]')
                await page.mouse.move(frame["x"] + x0 * frame["width"], frame["y"] + y0 * frame["height"])
                await page.mouse.down()
                await page.mouse.move(frame["x"] + x1 * frame["width"], frame["y"] + y1 * frame["height"], steps=6)
                await page.mouse.up()
            # Drawing the reference region made it the reference.
            assert await page.input_value('select[name="reference_mode"]') == "region"
            await page.click('button:has-text("Save")')
            await page.wait_for_url("**/staff/artworks/evening-harbour?saved=1")

            await page.reload()
            for region, expected in DRAWN.items():
                shown = [float(await page.input_value(f'input[name="{region}-{c}"]')) for c in ("x0", "y0", "x1", "y1")]
                assert shown == pytest.approx(expected, abs=0.01), region
            assert await page.is_visible('.drawing .box[data-region="full-body"]')

            # Signed-in staff may open a registered booth's page (to try it) without pairing their browser.
            await registered_kiosk(server.app[STORAGE_KEY].sessions, "lobby-1")
            await page.goto(str(server.make_url("/kiosk/lobby-1")))
            await page.click("#attract")
            card = page.locator('#carousel [data-artwork="evening-harbour"]')
            await card.wait_for(state="visible")
            assert "Evening Harbour" in await card.text_content()
        finally:
            await browser.close()

    record = await server.app[CATALOGUE_KEY].offered("evening-harbour")
    assert record.spec.boxes[Framing.FULL_BODY].to_list() == pytest.approx(DRAWN["full-body"], abs=0.01)
    assert record.spec.reference_region.to_list() == pytest.approx(DRAWN["reference"], abs=0.01)
    assert record.spec.artist == "Test Painter"
    # Disabled again: an enabled real artwork hides the demos, which the later tests use.
    await server.app[CATALOGUE_KEY].update("evening-harbour", ArtworkEdit(enabled=False), actor="test")


@web_test
async def test_try_it_composes_the_sample_portrait_with_the_unsaved_boxes_and_shows_its_score(server, signed_in):
    client, csrf = await signed_in(ADA)
    url = server.make_url(f"/staff/artworks/{DEMO.id}")
    boxes = {f"{name}-{c}": str(v) for name, box in DRAWN.items() for c, v in zip(("x0", "y0", "x1", "y1"), box)}
    form = {"csrf_token": csrf, "title": DEMO.title, "artist": DEMO.artist, "year": DEMO.year,
            "reference_mode": "region", "enabled": "1", **boxes}
    async with client.post(f"{url}/try", data=form) as response:
        assert response.status == 200, await response.text()
        page = await response.text()
    score = re.search(r'class="score">([0-9.]+)<', page)
    framing = re.search(r'class="framing" data-framing="([a-z-]+)"', page)
    assert score and 0.0 <= float(score.group(1)) <= 1.0 and framing.group(1) in {f.value for f in Framing}
    image_url = re.search(r'src="(/staff/artwork-tries/[A-Za-z0-9_-]+\.jpg)"', page).group(1)
    async with client.get(server.make_url(image_url)) as response:
        assert response.status == 200 and response.content_type == "image/jpeg"
        result = decode_image(await response.read(), max_pixels=10**8)
    painted = await server.app[CATALOGUE_KEY].source(DEMO.id)
    assert result.shape[:2] == decode_image(painted.image_path.read_bytes(), max_pixels=10**8).shape[:2]
    # Trying saved nothing.
    assert (await server.app[CATALOGUE_KEY].offered(DEMO.id)).spec == DEMO

    # A box that makes no sense is refused with what to fix, and nothing is saved either.
    async with client.post(url, data=form | {"half-body-x1": "0.1"}) as response:
        assert response.status == 400
        text = await response.text()
    assert "half-body box" in text and "Nothing was saved" in text
    assert 'name="half-body-x1" aria-label="Half body x1" min="0" max="1" step="0.0001" value="0.1"' in text


@web_test
async def test_refused_uploads_say_why_and_operators_may_look_but_not_change(server, signed_in):
    admin, admin_csrf = await signed_in(ADA)
    upload = aiohttp.FormData()
    upload.add_field("csrf_token", admin_csrf)
    upload.add_field("title", "Not a painting")
    upload.add_field("image", b"just some text", filename="notes.png", content_type="image/png")
    async with admin.post(server.make_url("/staff/artworks"), data=upload) as response:
        assert response.status == 415
        assert "The artwork image was refused: the file is not an image" in await response.text()
    limit = server.app[STORAGE_KEY].settings.max_upload_bytes
    too_large = aiohttp.FormData({"csrf_token": admin_csrf, "title": "Too large"})
    too_large.add_field("image", b"\0" * (limit + 128 * 1024), filename="huge.png", content_type="image/png")
    async with admin.post(server.make_url("/staff/artworks"), data=too_large) as response:
        assert response.status == 413
        assert f"larger than the limit of {limit:,} bytes" in await response.text()

    operator, operator_csrf = await signed_in(OTTO)
    async with operator.get(server.make_url("/staff/artworks")) as response:
        page = await response.text()
    assert response.status == 200 and DEMO.title in page
    assert 'name="image"' not in page and "Only administrators can change artworks" in page
    async with operator.post(
        server.make_url(f"/staff/artworks/{DEMO.id}/enabled"), data={"csrf_token": operator_csrf, "enabled": "0"}
    ) as response:
        assert response.status == 403
    assert (await server.app[CATALOGUE_KEY].offered(DEMO.id)).enabled

    # Admins disable and reorder from the list.
    second = DEMO_ARTWORKS[1].spec.id
    async with admin.post(
        server.make_url(f"/staff/artworks/{second}/move"), data={"csrf_token": admin_csrf, "direction": "up"},
        allow_redirects=False,
    ) as response:
        assert response.status == 303 and response.headers["Location"] == "/staff/artworks"
    order = [r.spec.id for r in await server.app[CATALOGUE_KEY].records(include_hidden=True)]
    assert order.index(second) < order.index(DEMO.id)
    async with admin.post(
        server.make_url(f"/staff/artworks/{second}/enabled"), data={"csrf_token": admin_csrf, "enabled": "0"}
    ) as response:
        assert response.status == 200  # redirected back to the list
    assert second not in [r.spec.id for r in await server.app[CATALOGUE_KEY].records()]
    async with admin.post(
        server.make_url(f"/staff/artworks/{second}/enabled"), data={"csrf_token": admin_csrf, "enabled": "1"}
    ) as response:
        assert response.status == 200

    # Deleting an unused upload is asked once more on its own page before it happens.
    upload = aiohttp.FormData({"csrf_token": admin_csrf, "title": "Passing show"})
    upload.add_field("image", encoded(painting(), "PNG"), filename="show.png", content_type="image/png")
    async with admin.post(server.make_url("/staff/artworks"), data=upload) as response:
        assert response.status == 200
    async with admin.get(server.make_url("/staff/artworks")) as response:
        assert 'href="/staff/artworks/passing-show/delete"' in await response.text()
    async with admin.get(server.make_url("/staff/artworks/passing-show/delete")) as response:
        page = await response.text()
    assert "Delete Passing show?" in page and "disable it instead" in page
    assert "passing-show" in [r.spec.id for r in await server.app[CATALOGUE_KEY].records(include_hidden=True)]
    async with admin.post(
        server.make_url("/staff/artworks/passing-show/delete"), data={"csrf_token": admin_csrf}, allow_redirects=False
    ) as response:
        assert response.status == 303
    assert "passing-show" not in [r.spec.id for r in await server.app[CATALOGUE_KEY].records(include_hidden=True)]


def _artwork_body(path: str, artwork_id: str) -> dict:
    """The request body the booth's page sends to /api/kiosks/{id}/<path> for ``artwork_id``."""
    if path == "artwork":
        return {"json": {"artwork": artwork_id}}
    form = aiohttp.FormData({"artwork": artwork_id})
    form.add_field("photo", encoded(painting(160, 120), "JPEG"), filename="still.jpg", content_type="image/jpeg")
    return {"data": form}


@web_test
async def test_operators_register_a_kiosk_choose_its_artworks_and_its_carousel_offers_only_those(server, signed_in):
    operator, csrf = await signed_in(OTTO)
    form = {"csrf_token": csrf, "id": "east-wing", "name": "East wing booth", "location": "Room 12"}
    async with operator.post(server.make_url("/staff/kiosks"), data=form, allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"] == "/staff/kiosks#kiosk-east-wing"
    async with operator.post(server.make_url("/staff/kiosks"), data=form) as response:
        assert response.status == 400 and "registered already" in await response.text()

    chosen = DEMO_ARTWORKS[2].spec.id
    change = aiohttp.FormData({"csrf_token": csrf, "name": "East wing", "location": "Room 12"})
    change.add_field("artworks", chosen)
    async with operator.post(server.make_url("/staff/kiosks/east-wing"), data=change) as response:
        assert response.status == 200
        page = await response.text()
    assert "East wing" in page and "1 chosen artwork" in page and 'href="/kiosk/east-wing"' in page

    async with await paired_booth(server, "east-wing") as booth, await paired_booth(server, "west-wing") as west:
        async with booth.get(server.make_url("/kiosk/east-wing")) as response:
            assert kiosk_artworks(await response.text()) == [chosen]
        async with west.get(server.make_url("/kiosk/west-wing")) as response:
            assert len(kiosk_artworks(await response.text())) > 1  # nothing chosen: every enabled artwork
        # The booth's own API holds to the choice too, not only its carousel.
        other = DEMO_ARTWORKS[0].spec.id
        for path in ("artwork", "capture"):
            async with booth.post(server.make_url(f"/api/kiosks/east-wing/{path}"), **_artwork_body(path, other)) as response:
                assert response.status == 404, path
        async with booth.post(server.make_url("/api/kiosks/east-wing/artwork"), json={"artwork": other}) as response:
            assert "does not offer" in (await response.json())["error"]
        # Its screen reports a working camera with its heartbeat (a booth without one is not shown "Online" in green).
        async with booth.post(server.make_url("/api/kiosks/east-wing/heartbeat"), json={"camera": "ok"}) as response:
            assert response.status == 200

    # The booth has checked in: online, with its last check-in time; its name is still staff's.
    async with operator.get(server.make_url("/staff/kiosks")) as response:
        page = await response.text()
    east = page.split('id="kiosk-east-wing"')[1].split("</section>")[0]
    assert "East wing" in east and 'class="online">Online' in east and "last seen" in east
    [kiosk] = [k for k in await service.list_kiosks(server.app[STORAGE_KEY].sessions) if k.id == "east-wing"]
    assert kiosk.name == "East wing" and kiosk.artwork_ids == (chosen,)
