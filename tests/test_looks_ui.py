"""Looks as staff and visitors meet them: an artwork's look chosen in the dashboard (saved, audited,
tried in both looks, refused with what to fix), shown and changed through the REST API, and at the
booth the visitor's tap between the two looks before the countdown, in Debian's Chromium with a
fake camera against the real server on loopback."""

from __future__ import annotations

import html
import re

import aiohttp
import pytest
import pytest_asyncio
from sqlalchemy import select

from api_helpers import ADMIN, CHEAP_HASHES, bearer, browser, new_token, running_with_staff, sign_in
from booth_helpers import paired_booth, pairing_link
from db.models import AuditRow
from fakecamera import CHROMIUM, CHROMIUM_ARGS, fake_camera_args, visitor_in_room, write_y4m
from imagefiles import encoded
from kiosk.catalogue import ArtworkEdit
from kiosk.settings import Settings
from servers import loopback_settings
from web.keys import CATALOGUE_KEY, STORAGE_KEY
from web.score_words import harmony_in_words

# One server for the module: starting one (compose worker, preview models) takes seconds.
pytestmark = pytest.mark.asyncio(loop_scope="module")

# The demos offer the service's look ("visitor" by default); the tests give some their own.
VISITOR_CHOOSES = "demo-golden-meadow"
FIXED_LOOK = "demo-velvet-studio"
EDITED = "demo-midnight-harbour"


@pytest.fixture(scope="module")
def looks_settings(tmp_path_factory, models_dir) -> Settings:
    return loopback_settings(tmp_path_factory.mktemp("looks"), models_dir, ARTBOOTH_KIOSK_COUNTDOWN_SECONDS="1", **CHEAP_HASHES)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server(looks_settings):
    async with running_with_staff(looks_settings) as test_server:
        yield test_server


@pytest_asyncio.fixture(loop_scope="module")
async def admin(server):
    async with browser() as client:
        yield client, await sign_in(client, server, ADMIN)


async def _editor_form(client: aiohttp.ClientSession, url) -> dict[str, str]:
    """The editor's form fields as the page fills them (what a browser would post unchanged)."""
    async with client.get(url) as response:
        assert response.status == 200
        page = await response.text()
    form = dict(re.findall(r'<input (?:type="(?:hidden|number)" )?name="([a-z0-9_-]+)"[^>]*? value="([^"]*)"', page))
    form |= dict(re.findall(r'<input name="([a-z]+)" value="([^"]*)"', page))
    form |= dict(re.findall(r'<select name="([a-z_]+)"[^>]*>(?:<option value="[^"]*">[^<]*</option>)*<option value="([^"]*)" selected', page))
    form["enabled"] = "1"
    return form


async def test_staff_set_an_artworks_look_and_strength_in_the_dashboard_and_nonsense_is_refused(server, admin):
    client, _ = admin
    url = server.make_url(f"/staff/artworks/{EDITED}")
    async with client.get(url) as response:
        page = await response.text()
    # The choice in words staff understand, the service's default named.
    for words in ("Service default (Visitor chooses)", "Realistic: colour and light only",
                  "Painted: in the painting's brushwork", "Visitor chooses"):
        assert words in page
    form = await _editor_form(client, url)
    assert form["look"] == "" and form["stylize_strength"] == "" and "csrf_token" in form

    async with client.post(url, data=form | {"look": "painted", "stylize_strength": "0.6"}, allow_redirects=False) as response:
        assert response.status == 303, await response.text()
    record = await server.app[CATALOGUE_KEY].offered(EDITED)
    assert (record.look, record.stylize_strength) == ("painted", 0.6)
    async with client.get(url) as response:
        page = await response.text()
    assert '<option value="painted" selected>' in page and 'name="stylize_strength"' in page and 'value="0.6"' in page
    async with server.app[STORAGE_KEY].sessions() as session:
        audited = (await session.scalars(select(AuditRow).where(AuditRow.action == "artwork.update", AuditRow.subject == EDITED))).all()
    assert audited[-1].actor == ADMIN[0] and audited[-1].detail == {"look": "painted", "stylize_strength": 0.6}
    # A look or strength change is no credit or box edit: the demo's image stays the library's.
    assert record.image_key.startswith("demo:")

    for field, typed, message in (
        ("look", "sepia", "The look must be one of realistic, painted, visitor"),
        ("stylize_strength", "1.5", "The painted look&#39;s strength must be a number from 0"),
        ("stylize_strength", "strong", "The painted strength must be a number from 0 to 1"),
    ):
        async with client.post(url, data=form | {field: typed}) as response:
            assert response.status == 400, (field, typed)
            text = await response.text()
        assert message in text and "Nothing was saved" in text, text
    assert (await server.app[CATALOGUE_KEY].offered(EDITED)).look == "painted"

    # Empty hands both back to the service's settings.
    async with client.post(url, data=form | {"look": "", "stylize_strength": ""}, allow_redirects=False) as response:
        assert response.status == 303
    record = await server.app[CATALOGUE_KEY].offered(EDITED)
    assert (record.look, record.stylize_strength) == (None, None)


async def test_the_api_shows_and_changes_an_artworks_look(server):
    headers = bearer(await new_token(server, "artworks:read", "artworks:write"))
    url = server.make_url(f"/api/v1/artworks/{EDITED}")
    async with aiohttp.ClientSession(headers=headers) as api:
        async with api.get(url) as response:
            shown = await response.json()
        assert (shown["look"], shown["stylize_strength"]) == (None, None)
        async with api.patch(url, json={"look": "realistic", "stylize_strength": 0.3}) as response:
            assert response.status == 200
            assert {k: v for k, v in (await response.json()).items() if k in ("look", "stylize_strength")} == {
                "look": "realistic", "stylize_strength": 0.3}
        for body in ({"look": "sepia"}, {"stylize_strength": -0.1}, {"stylize_strength": True}, {"look": 3}):
            async with api.patch(url, json=body) as response:
                assert response.status == 422, body
                assert (await response.json())["code"] == "invalid_artwork"
        async with api.patch(url, json={"look": None, "stylize_strength": None}) as response:
            assert (await response.json())["look"] is None


async def test_try_it_shows_both_looks_where_the_visitor_chooses_with_the_score_in_words(server, admin):
    client, _ = admin
    url = server.make_url(f"/staff/artworks/{VISITOR_CHOOSES}")
    form = await _editor_form(client, url)
    async with client.post(f"{url}/try", data=form) as response:
        assert response.status == 200, await response.text()
        page = await response.text()
    tried = re.findall(r'<figure class="tried" data-look="([a-z]+)">.*?class="score-words">([^<]+)<.*?class="score">([0-9.]+)<', page, re.S)
    assert [look for look, _, _ in tried] == ["realistic", "painted"]
    for _, words, score in tried:
        assert html.unescape(words) == harmony_in_words(float(score))
    # A fixed look tries just that one.
    async with client.post(f"{url}/try", data=form | {"look": "realistic"}) as response:
        page = await response.text()
    assert re.findall(r'<figure class="tried" data-look="([a-z]+)">', page) == ["realistic"]


async def test_a_capture_asking_for_a_look_that_is_none_is_refused_with_what_the_looks_are(server, grace_hopper):
    async with await paired_booth(server, "looks-http") as booth:
        form = aiohttp.FormData({"artwork": VISITOR_CHOOSES, "look": "sepia"})
        form.add_field("photo", encoded(grace_hopper), filename="still.jpg", content_type="image/jpeg")
        async with booth.post(server.make_url("/api/kiosks/looks-http/capture"), data=form) as response:
            assert response.status == 400
            assert "realistic, painted" in (await response.json())["error"]
        async with booth.post(server.make_url("/api/kiosks/looks-http/artwork"), json={"artwork": VISITOR_CHOOSES}) as response:
            assert (await response.json())["look"] == "visitor"


# Every screen the booth shows, in order (kiosk.js sets body's data-screen).
RECORD_SCREENS = """
window.screensShown = [];
new MutationObserver(() => {
  const screen = document.body && document.body.dataset.screen;
  if (screen && window.screensShown[window.screensShown.length - 1] !== screen) window.screensShown.push(screen);
}).observe(document, {attributes: true, subtree: true, attributeFilter: ["data-screen"]});
"""


async def _capture(page, click: str) -> dict:
    """Click what starts the capture; the capture's JSON answer."""
    # Generous: the machine may be busy, and the painted look's first capture loads its styles.
    async with page.expect_response(lambda r: r.url.endswith("/capture"), timeout=240_000) as answer:
        await page.click(click)
    response = await answer.value
    assert response.status == 200, await response.text()
    await page.wait_for_selector("#result.active", timeout=30_000)
    return await response.json()


async def test_the_visitor_taps_a_look_where_the_artwork_offers_both_and_goes_straight_on_where_it_is_fixed(
    server, tmp_path, grace_hopper
):
    from playwright.async_api import async_playwright

    await server.app[CATALOGUE_KEY].update(FIXED_LOOK, ArtworkEdit(look="realistic"), actor="test")
    camera = write_y4m(tmp_path / "visitor.y4m", visitor_in_room(grace_hopper, frames=30))
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *fake_camera_args(camera)])
        try:
            page = await chromium.new_page(viewport={"width": 1280, "height": 800})
            await page.add_init_script(RECORD_SCREENS)
            await page.goto(await pairing_link(server, "looks-booth"))
            await page.click("#pair")
            await page.wait_for_url("**/kiosk/looks-booth")

            await page.click("#attract")
            await page.click(f'#carousel [data-artwork="{VISITOR_CHOOSES}"]')
            await page.wait_for_function("document.body.dataset.offeredLook === 'visitor'", timeout=30_000)
            await page.wait_for_selector("#preview.active", timeout=30_000)
            await page.click("#shoot")
            await page.click("#agree")
            await page.wait_for_selector("#look.active")
            buttons = await page.eval_on_selector_all(
                "#look .look-choice", "bs => bs.map(b => [b.dataset.look, b.innerText, b.offsetWidth, b.offsetHeight])"
            )
            assert [b[0] for b in buttons] == ["realistic", "painted"]
            assert all(width >= 200 and height >= 150 for _, _, width, height in buttons)  # big touch targets
            assert all(len(text.split("\n")) >= 2 for _, text, _, _ in buttons)  # a name and a line explaining it
            answer = await _capture(page, '#look [data-look="painted"]')
            assert answer["look"] == "painted"
            screens = await page.evaluate("window.screensShown")
            assert screens[screens.index("look"):] == ["look", "preview", "processing", "result"]

            await page.click("#done")
            await page.click("#attract")
            await page.click(f'#carousel [data-artwork="{FIXED_LOOK}"]')
            await page.wait_for_function("document.body.dataset.offeredLook === 'realistic'", timeout=30_000)
            await page.wait_for_selector("#preview.active", timeout=30_000)
            await page.click("#shoot")
            await page.evaluate("window.screensShown = []")
            answer = await _capture(page, "#agree")
            assert answer["look"] == "realistic"
            assert "look" not in await page.evaluate("window.screensShown")
        finally:
            await chromium.close()
