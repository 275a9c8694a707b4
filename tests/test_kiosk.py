"""The booth as a visitor meets it: Debian's Chromium with a fake camera playing a real portrait,
driven by Playwright, against the real server on loopback, its screen paired through the real
pairing link; plus its HTTP edges.

Every artwork this server offers has staff-typed text that tries to end or comment out the
script the booth's page embeds its artworks in: the booth must still render all of them, with
their literal titles, and work."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import cv2
import numpy as np
import pytest
import pytest_asyncio

from booth_helpers import paired_booth, pairing_link
from db import booths as booth_access
from fakecamera import CHROMIUM, CHROMIUM_ARGS, fake_camera_args, visitor_in_room, write_y4m
from imagefiles import decode_qr, encoded
from servers import loopback_settings, running
from kiosk.catalogue import ArtworkEdit
from kiosk.settings import Settings
from web.keys import BOOTHS_KEY, CATALOGUE_KEY, STORAGE_KEY
from web.kiosk import BOOTH_COOKIE, BOOTH_HEADER


# One server for the module: starting one (compose worker, preview models) takes seconds.
pytestmark = pytest.mark.asyncio(loop_scope="module")


# Text that would end the artworks' <script> ("</script>"), or comment out the rest of the page
# ("<!--<script>" opens an escaped script block the next "</script>" does not end), and line
# separators that end a line inside older JavaScript strings.
HOSTILE = "<!--<script> </script> \u2028 & \u2029 -->"


def _write_folder_artwork(folder: Path, grace_hopper: np.ndarray) -> None:
    """An artwork from the artworks folder whose sidecar carries HOSTILE verbatim in every text field
    (the dashboard folds U+2028 into a space; a sidecar keeps it)."""
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / "script-test.jpg"), cv2.resize(grace_hopper, (640, 480))[:, :, ::-1])
    boxes = {framing: [0.3, 0.3, 0.7, 1.0] for framing in ("close-up", "half-body", "full-body")}
    sidecar = {"title": f"Folder {HOSTILE}", "artist": f"Painter {HOSTILE}", "year": HOSTILE[:60], "boxes": boxes}
    (folder / "script-test.json").write_text(json.dumps(sidecar, ensure_ascii=False), encoding="utf-8")


@pytest.fixture(scope="module")
def booth_settings(tmp_path_factory, models_dir, grace_hopper) -> Settings:
    settings = loopback_settings(
        tmp_path_factory.mktemp("data"),
        models_dir,
        ARTBOOTH_KIOSK_COUNTDOWN_SECONDS="1",
        # A booth server as museums run it: no public upload (the default, whatever the suite's servers use).
        ARTBOOTH_PUBLIC_UPLOAD=str(Settings().public_upload),
    )
    _write_folder_artwork(settings.resolved_artworks_dir, grace_hopper)
    return settings


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server(booth_settings):
    async with running(booth_settings) as test_server:
        # Staff gave every demo hostile text in the dashboard too.
        catalogue = test_server.app[CATALOGUE_KEY]
        for record in await catalogue.records(include_hidden=True):
            if record.spec.demo:
                edit = ArtworkEdit(title=f"{record.spec.title} {HOSTILE}", artist=HOSTILE, year=HOSTILE[:60])
                await catalogue.update(record.spec.id, edit, actor="test")
        # The folder's artwork waits disabled: an enabled real artwork hides the demos these tests use
        # (test_the_kiosk_page_uses_only_local_assets enables it while it reads the page).
        await catalogue.update("script-test", ArtworkEdit(enabled=False), actor="test")
        yield test_server


@pytest_asyncio.fixture(loop_scope="module")
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def booth(server):
    """A booth screen paired over HTTP, for the tests that need no browser."""
    async with await paired_booth(server, "booth-3") as client:
        yield client


async def _pair_in_browser(page, server, kiosk_id: str) -> dict[str, str]:
    """Pair the browser's screen as staff do on a booth: open the pairing link, confirm. Returns the
    headers that let the test's own HTTP client speak as that booth."""
    await page.goto(await pairing_link(server, kiosk_id))
    await page.click("#pair")
    await page.wait_for_url(f"**/kiosk/{kiosk_id}")
    [cookie] = [c for c in await page.context.cookies(str(server.make_url(f"/api/kiosks/{kiosk_id}/stats"))) if c["name"] == BOOTH_COOKIE]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == f"/api/kiosks/{kiosk_id}"
    return {"Cookie": f"{BOOTH_COOKIE}={cookie['value']}", BOOTH_HEADER: "1"}


@pytest.fixture
def camera_file(tmp_path, grace_hopper):
    return write_y4m(tmp_path / "visitor.y4m", visitor_in_room(grace_hopper))


async def _browser(playwright, *extra_args: str):
    return await playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args])


async def _start_preview(page) -> None:
    """What a visitor does on the attract screen: touch it, pick the meadow; until the preview connects."""
    await page.click("#attract")
    await page.click('#carousel [data-artwork="demo-golden-meadow"]')
    await page.wait_for_function("document.body.dataset.connection === 'connected'", timeout=30_000)


# Notes the capture id of each capture the page sends (its form is not visible to Playwright's requests).
NOTE_CAPTURE_IDS = """() => {
  const send = window.fetch;
  window.sentCaptureIds = [];
  window.fetch = (url, options = {}) => {
    if (String(url).includes("/capture") && options.body instanceof FormData) window.sentCaptureIds.push(options.body.get("capture_id"));
    return send(url, options);
  };
}"""

RECEIVED_VIDEO = """async () => {
  const report = await window.kioskPeer().getStats();
  for (const stat of report.values()) {
    if (stat.type === "inbound-rtp" && stat.kind === "video") {
      return {frames: stat.framesDecoded, width: stat.frameWidth, height: stat.frameHeight, at: stat.timestamp};
    }
  }
  return null;
}"""


async def test_a_visitor_sees_the_preview_takes_a_photo_and_downloads_it_from_the_qr_code(
    server, http, camera_file, booth_settings
):
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await _browser(playwright, *fake_camera_args(camera_file))
        try:
            page = await browser.new_page(viewport={"width": 1920, "height": 1080})
            # The booth's timers run on Playwright's clock (in real time until the test moves it on), so
            # waiting out the idle time costs nothing. Installed before the page loads, as Playwright asks:
            # a timer the page set before the clock came could not be cleared through it, and an idle
            # timeout from the look screen would still send the booth back to the attract screen.
            await page.clock.install()
            # The folder's artwork, enabled, is in the carousel (the demos step aside for a real artwork)
            # under its literal title, hostile text and all; disabled again for the demo this test uses.
            catalogue = server.app[CATALOGUE_KEY]
            await catalogue.update("script-test", ArtworkEdit(enabled=True), actor="test")
            try:
                as_booth = await _pair_in_browser(page, server, "booth-1")
                await page.click("#attract")
                captions = await page.eval_on_selector_all("#carousel .artwork span", "spans => spans.map(s => s.textContent)")
                offered = [record.spec.title for record in await catalogue.offered_at("booth-1")]
            finally:
                await catalogue.update("script-test", ArtworkEdit(enabled=False), actor="test")
            assert captions == offered and len(offered) == 1 and all(HOSTILE.split()[0] in title for title in offered)
            assert any("\u2028" in title for title in captions)
            # The attract screen offers every language in its own name; French opens the page again in French.
            await page.reload()
            names = await page.eval_on_selector_all("#attract .language", "buttons => buttons.map(b => b.textContent)")
            assert {"English", "Français", "Deutsch", "Español", "Italiano", "Nederlands", "日本語", "中文 (简体)"} <= set(names)
            await page.click('#attract .language[data-language="fr"]')
            await page.wait_for_function("document.documentElement.lang === 'fr'")
            assert await page.text_content("#attract h1") == "Entrez dans un tableau"
            await _start_preview(page)
            await page.wait_for_function("document.getElementById('live').videoWidth > 0", timeout=30_000)

            # Let the preview settle, then count frames decoded over 5 s.
            await page.wait_for_timeout(2000)
            first = await page.evaluate(RECEIVED_VIDEO)
            await page.wait_for_timeout(5000)
            last = await page.evaluate(RECEIVED_VIDEO)
            fps = (last["frames"] - first["frames"]) / ((last["at"] - first["at"]) / 1000)
            print(f"preview received at {fps:.1f} fps, {last['width']}x{last['height']}")
            assert fps >= 20
            assert last["width"] == 640  # the meadow (16:9) fitted into the 640x480 camera frame

            async with http.get(server.make_url("/api/kiosks/booth-1/stats"), headers=as_booth) as response:
                stats = await response.json()
            assert stats["preview"]["connection"] == "connected" and stats["preview"]["fps_in"] > 0

            # Changing the artwork takes effect on the same connection: the server switched the live preview.
            choice = "/api/kiosks/booth-1/artwork"  # with the page's ?language=fr
            async with page.expect_response(lambda reply: urlsplit(reply.url).path == choice) as chosen:
                await page.click('#strip [data-artwork="demo-velvet-studio"]')
            switched = await (await chosen.value).json()
            assert switched["artwork"] == "demo-velvet-studio" and switched["live"] is True
            assert await page.evaluate("document.body.dataset.connection") == "connected"

            await page.click("#shoot")
            await page.wait_for_selector("#privacy.active")
            assert "Nous conservons votre photo" in await page.text_content("#privacy p")
            await page.click("#agree")
            # The demos leave the look to the visitor (settings.look): two big buttons before the countdown.
            assert await page.text_content("#look h2") == "Comment voulez-vous apparaître ?"
            await page.evaluate(NOTE_CAPTURE_IDS)
            # The capture is held on its way while we watch the camera: on the processing screen the
            # booth stops sending its preview stream (its cores and the server's go to the capture).
            capture_held = asyncio.get_running_loop().create_future()

            async def hold_capture(route):
                await capture_held
                await route.continue_()

            capture_path = "**/api/kiosks/booth-1/capture*"
            await page.route(capture_path, hold_capture)
            await page.click('#look [data-look="realistic"]')
            await page.wait_for_selector("#processing.active")
            await asyncio.sleep(1.0)  # frames already on their way arrive
            held_from = await camera_frames_in(http, server, as_booth)
            await asyncio.sleep(1.5)
            assert await camera_frames_in(http, server, as_booth) == held_from, "the camera kept streaming while composing"
            capture_held.set_result(None)
            await page.wait_for_selector("#result.active", timeout=60_000)
            await page.unroute(capture_path)
            # ... and sends it again once the photo is shown.
            resumed_from = await camera_frames_in(http, server, as_booth)
            await asyncio.sleep(1.5)
            assert await camera_frames_in(http, server, as_booth) > resumed_from + 10
            # The capture carried the booth's id for this press of the button (a retry sends it again).
            [capture_id] = await page.evaluate("window.sentCaptureIds")
            assert re.fullmatch("[0-9a-f]{32}", capture_id)
            download_url = await page.evaluate("document.body.dataset.downloadUrl")
            qr_path = await page.get_attribute("#result-qr", "src")

            # Longer than the idle time, the QR code is still there, counting down to the result time.
            await page.clock.fast_forward((booth_settings.kiosk_idle_seconds + 5) * 1000)
            assert await page.evaluate("document.body.dataset.screen") == "result"
            left = await page.text_content("#result-countdown")
            assert re.fullmatch(r"Cet écran se ferme dans (\d+) s", left), left
            assert int(left.split()[-2]) <= booth_settings.kiosk_result_seconds - booth_settings.kiosk_idle_seconds - 4

            # The phone opens the link in the language the visitor used at the booth, not the phone's.
            phone = await browser.new_page(viewport={"width": 390, "height": 844}, locale="en-US")
            await phone.goto(download_url)
            assert await phone.evaluate("document.documentElement.lang") == "fr"
            assert await phone.text_content("a.button") == "Télécharger la photo"
            expiry = await phone.wait_for_selector("p.note time[title]")  # rewritten in the phone's own time
            assert "UTC" not in await expiry.text_content()
            delete_link = await phone.locator("p.delete a").bounding_box()
            assert delete_link["height"] >= 44 and delete_link["width"] >= 44  # a thumb's target
            await phone.close()

            # "Reprendre la photo": straight back to the countdown, same painting and look, a new photo.
            await page.click("#retake")
            await page.wait_for_function(
                "url => document.body.dataset.screen === 'result' && document.body.dataset.downloadUrl !== url",
                arg=download_url,
                timeout=60_000,
            )

            # "Terminé": the next visitor finds the booth in the museum's language.
            async with page.expect_navigation(url="**/kiosk/booth-1"):
                await page.click("#done")
            assert await page.evaluate("[document.documentElement.lang, document.body.dataset.screen]") == ["en", "attract"]

            # The server cannot be reached (a cable pulled): at its next heartbeat, brought forward on
            # Playwright's clock, the booth says it is unavailable and a touch starts nothing.
            await page.wait_for_function("document.body.dataset.server === 'reachable'")
            booth_api = "**/api/kiosks/booth-1/**"
            await page.route(booth_api, lambda route: route.abort("connectionrefused"))
            await page.clock.fast_forward(booth_settings.kiosk_heartbeat_seconds * 1000)
            await page.wait_for_selector("#unavailable", state="visible")
            assert await page.text_content("#unavailable h2") == "This booth is temporarily unavailable"
            assert await page.is_disabled("#shoot") and await page.is_disabled("#agree")
            await page.mouse.click(960, 540)  # where a visitor touches to begin
            assert await page.evaluate("document.body.dataset.screen") == "attract"
            # The server answers again: the booth comes back by itself, at its next try, and a touch begins.
            await page.unroute(booth_api)
            await page.clock.fast_forward(3000)
            await page.wait_for_selector("#unavailable", state="hidden")
            await page.click("#attract")
            await page.wait_for_selector("#choose.active")

            # A reload replaces the booth's connection: still one peer, and it is live.
            await page.reload()
            await _start_preview(page)
            assert server.app[BOOTHS_KEY].peers.kiosk_ids() == ["booth-1"]
            async with http.get(server.make_url("/api/kiosks/booth-1/stats"), headers=as_booth) as response:
                assert (await response.json())["preview"]["connection"] == "connected"
        finally:
            await browser.close()

    # The QR code shown on the booth scans to the download link.
    async with http.get(server.make_url(qr_path.replace("qr.svg", "qr.png"))) as response:
        png = await response.read()
    decoded = decode_qr(png)
    assert decoded == download_url and download_url.startswith(booth_settings.public_url + "/p/")
    async with http.get(decoded + "/download") as response:
        assert response.status == 200 and response.content_type == "image/jpeg"
        downloaded = await response.read()
    photo = cv2.imdecode(np.frombuffer(downloaded, np.uint8), cv2.IMREAD_COLOR)
    assert photo.shape[:2] == (1350, 1080)  # the velvet studio (the artwork chosen last), full resolution
    assert downloaded in [p.read_bytes() for p in booth_settings.resolved_photos_dir.rglob("*.jpg")]


async def camera_frames_in(http, server, as_booth) -> int:
    """How many camera frames the server has received from booth-1's preview stream."""
    async with http.get(server.make_url("/api/kiosks/booth-1/stats"), headers=as_booth) as response:
        return (await response.json())["preview"]["frames_in"]


async def test_the_booth_reconnects_by_itself_when_its_connection_drops_but_not_once_revoked(server, http, camera_file):
    from playwright.async_api import async_playwright

    peers = server.app[BOOTHS_KEY].peers
    async with async_playwright() as playwright:
        browser = await _browser(playwright, *fake_camera_args(camera_file))
        try:
            page = await browser.new_page()
            await _pair_in_browser(page, server, "booth-2")
            await _start_preview(page)
            first_peer = await page.evaluate_handle("window.kioskPeer()")

            # The server side of the connection goes away, as in a server restart or a network drop.
            assert await peers.close("booth-2")
            await page.wait_for_function(
                "(old) => window.kioskPeer() !== old && document.body.dataset.connection === 'connected'",
                arg=first_peer,
                timeout=60_000,
            )
            await page.wait_for_function("document.getElementById('live').videoWidth > 0", timeout=30_000)
            before = await page.evaluate(RECEIVED_VIDEO)
            # Over 20 frames within 2 s: as soon as they are in, not after a fixed wait.
            clock = asyncio.get_running_loop()
            deadline = clock.time() + 2
            while (after := await page.evaluate(RECEIVED_VIDEO))["frames"] - before["frames"] <= 20 and clock.time() < deadline:
                await asyncio.sleep(0.05)

            # Staff revoke the booth (as the Kiosks page's "Revoke" does): its preview closes at once,
            # its reconnection is refused, and the screen says it must be set up again.
            await booth_access.revoke(server.app[STORAGE_KEY].sessions, "booth-2", actor="test", now=datetime.now(timezone.utc))
            await server.app[BOOTHS_KEY].disconnect("booth-2")
            assert "booth-2" not in peers.kiosk_ids()
            await page.wait_for_selector("text=This booth is not set up yet", timeout=60_000)
            assert "booth-2" not in peers.kiosk_ids()
        finally:
            await browser.close()
    assert after["frames"] - before["frames"] > 20, "the new connection brings the preview back"


async def test_no_camera_shows_a_message_not_a_blank_page_and_staff_see_why(server):
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await _browser(playwright)  # no fake camera: this machine has none
        try:
            page = await browser.new_page()
            await _pair_in_browser(page, server, "booth-4")
            # The booth finds out before any visitor comes, and says so with its heartbeat.
            await page.wait_for_function("document.body.dataset.camera === 'missing'", timeout=15_000)
            await page.click("#attract")
            await page.click('#carousel [data-artwork="demo-golden-meadow"]')
            await page.wait_for_selector("#problem.active", timeout=15_000)
            title = await page.text_content("#problem-title")
            text = await page.text_content("#problem-text")
            # The page's heartbeat with the diagnosis may still be on its way on a busy machine (and
            # would be cut off by closing the browser): staff see it within seconds.
            for _ in range(100):
                if server.app[BOOTHS_KEY].live_stats("booth-4")["camera"] == "missing":
                    break
                await asyncio.sleep(0.05)
        finally:
            await browser.close()
    # The visitor is sent to staff; staff get the diagnosis (Kiosks, Overview, the API's stats).
    assert (title, text) == ("This booth's camera is not available", "Please ask the museum staff for help.")
    assert server.app[BOOTHS_KEY].live_stats("booth-4")["camera"] == "missing"


async def test_the_heartbeat_keeps_the_camera_state_and_refuses_others(server, booth):
    for state in ("denied", "insecure", "ok"):
        async with booth.post(server.make_url("/api/kiosks/booth-3/heartbeat"), json={"camera": state}) as response:
            assert response.status == 200
        assert server.app[BOOTHS_KEY].status("booth-3").camera == state
    async with booth.post(server.make_url("/api/kiosks/booth-3/heartbeat"), json={"camera": "<b>broken</b>"}) as response:
        assert response.status == 400 and "camera is one of" in (await response.json())["error"]
    async with booth.post(server.make_url("/api/kiosks/booth-3/heartbeat")) as response:  # an older booth page: no body
        assert response.status == 200


async def test_the_public_upload_is_off_by_default_and_the_museum_page_shows_its_artworks(server, http):
    assert Settings().public_upload is False
    async with http.get(server.make_url("/")) as response:
        page = await response.text()
    assert "Demo: Golden Hour Meadow" in page and "<form" not in page and "Try it with a photo" not in page
    # Staff's hostile titles are text on the museum's page, never markup.
    assert HOSTILE not in page and "Demo: Golden Hour Meadow &lt;!--&lt;script&gt; &lt;/script&gt;" in page
    for path in ("/compose", "/api/compose"):  # nobody's upload is stored
        form = aiohttp.FormData({"artwork": "demo-golden-meadow"})
        form.add_field("photo", b"\xff\xd8 a photo", filename="me.jpg", content_type="image/jpeg")
        async with http.post(server.make_url(path), data=form) as response:
            assert response.status == 404, path


async def test_a_refused_capture_is_explained_in_the_booth_visitors_language(server, booth):
    form = aiohttp.FormData({"artwork": "demo-golden-meadow"})
    form.add_field("photo", b"not a photo", filename="still.jpg", content_type="image/jpeg")
    url = server.make_url("/api/kiosks/booth-3/capture").with_query(lang="fr")
    async with booth.post(url, data=form) as response:
        body = await response.json()
    assert (response.status, body["code"]) == (415, "not_an_image")
    assert body["error"] == "L'image de la caméra n'est pas arrivée. Veuillez réessayer."


async def test_a_capture_id_that_is_not_an_id_is_refused(server, booth):
    for capture_id in ("short", "x" * 65, "../../etc", "id with spaces"):
        form = aiohttp.FormData({"artwork": "demo-golden-meadow", "capture_id": capture_id})
        async with booth.post(server.make_url("/api/kiosks/booth-3/capture"), data=form) as response:
            assert response.status == 400, capture_id
            assert "capture_id" in (await response.json())["error"]


async def test_the_kiosk_page_uses_only_local_assets(server, http, booth):
    catalogue = server.app[CATALOGUE_KEY]
    await catalogue.update("script-test", ArtworkEdit(enabled=True), actor="test")
    try:
        async with booth.get(server.make_url("/kiosk/booth-3")) as response:
            assert response.status == 200
            page = await response.text()
    finally:
        await catalogue.update("script-test", ArtworkEdit(enabled=False), actor="test")
    assert 'src="/static/kiosk.js"' in page and 'href="/static/kiosk.css"' in page
    assert "http://" not in page and "https://" not in page
    embedded = page.split('<script type="application/json" id="artworks">')[1].split("</script>")[0]
    # Nothing staff typed can end the script or open a comment in it; the JSON still reads back whole.
    assert not any(character in embedded for character in "<>&\u2028\u2029")
    artworks = json.loads(embedded)
    assert "script-test" in {a["id"] for a in artworks}
    hostile = next(a for a in artworks if a["id"] == "script-test")
    assert (hostile["title"], hostile["artist"]) == (f"Folder {HOSTILE}", f"Painter {HOSTILE}")
    for asset in ("/static/kiosk.js", "/static/kiosk.css"):
        async with http.get(server.make_url(asset)) as response:
            assert response.status == 200
    async with http.get(server.make_url("/kiosk/Not_A_Kiosk")) as response:
        assert response.status == 404


async def test_bad_offers_get_400_with_a_message(server, booth):
    url = server.make_url("/api/kiosks/booth-3/offer")
    cases = [
        (b"not json", 400, "JSON"),
        (json.dumps({"sdp": "v=0", "type": "offer"}).encode(), 400, "artwork"),
        (json.dumps({"sdp": "hello", "type": "offer", "artwork": "demo-golden-meadow"}).encode(), 400, "offer"),
        (json.dumps({"sdp": "v=0", "type": "answer", "artwork": "demo-golden-meadow"}).encode(), 400, "offer"),
        (json.dumps({"sdp": "v=0", "type": "offer", "artwork": "no-such-painting"}).encode(), 404, "does not offer an artwork"),
    ]
    for body, status, message in cases:
        async with booth.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
            assert response.status == status, (body, await response.text())
            assert message in (await response.json())["error"]


async def test_a_second_capture_while_one_runs_is_refused_politely(server, booth, astronaut):
    def form() -> aiohttp.FormData:
        data = aiohttp.FormData()
        data.add_field("artwork", "demo-golden-meadow")
        data.add_field("photo", encoded(astronaut), filename="still.jpg", content_type="image/jpeg")
        return data

    async def capture() -> tuple[int, dict]:
        async with booth.post(server.make_url("/api/kiosks/booth-3/capture"), data=form()) as response:
            return response.status, await response.json()

    first = asyncio.create_task(capture())
    for _ in range(200):  # until the server is busy with the first one
        async with booth.get(server.make_url("/api/kiosks/booth-3/stats")) as response:
            if (await response.json())["capturing"]:
                break
        await asyncio.sleep(0.02)
    second_status, second = await capture()
    first_status, done = await first
    assert second_status == 409 and "already being made" in second["error"]
    assert first_status == 200, done
    assert done["people"] == 1 and done["download_url"].startswith("http://127.0.0.1:")
