"""Booths answer only to their own paired screen (or signed-in staff): registering and pairing a
booth from the dashboard, the one-time pairing link, the booth's credential cookie, refusing
everyone else, revoking (its live preview closes at once), and the capture answers a visitor sees
on the booth. The real service on loopback; a real WebRTC client (aiortc) for the live preview."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta, timezone

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from av import VideoFrame
from sqlalchemy import func, select

from api_helpers import CHEAP_HASHES, OPERATOR, browser, running_with_staff, sign_in
from booth_helpers import booth_client, credential_of, pair, paired_booth, pairing_link
from db import booths
from db.models import AuditRow, KioskRow
from imagefiles import encoded
from kiosk.auth import new_token, token_digest
from kiosk.qr import qr_svg
from servers import loopback_settings
from web.keys import BOOTHS_KEY, POOL_KEY, STORAGE_KEY
from web.kiosk import BOOTH_COOKIE, BOOTH_HEADER

pytestmark = pytest.mark.asyncio(loop_scope="module")

MEADOW = "demo-golden-meadow"
NOT_SET_UP = "This booth is not set up yet"
_LINK = re.compile(r'<a href="(http://[^"]+/kiosk/[a-z0-9-]+/pair\?code=[A-Za-z0-9_-]{43})"')


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory, models_dir):
    settings = loopback_settings(tmp_path_factory.mktemp("pairing"), models_dir, **CHEAP_HASHES)
    async with running_with_staff(settings) as test_server:
        yield test_server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def operator(server):
    """A signed-in operator's browser and its CSRF token."""
    async with browser() as client:
        yield client, await sign_in(client, server, OPERATOR)


async def _kiosk_rows(server) -> int:
    async with server.app[STORAGE_KEY].sessions() as session:
        return await session.scalar(select(func.count()).select_from(KioskRow))


async def _audit(server, action: str) -> list[AuditRow]:
    async with server.app[STORAGE_KEY].sessions() as session:
        return list(await session.scalars(select(AuditRow).where(AuditRow.action == action).order_by(AuditRow.id)))


async def _staff_pairing_link(server, operator, kiosk_id: str) -> str:
    client, csrf = operator
    async with client.post(server.make_url(f"/staff/kiosks/{kiosk_id}/pair"), data={"csrf_token": csrf}) as response:
        assert response.status == 200, await response.text()
        page = await response.text()
    link = _LINK.search(page).group(1)
    assert qr_svg(link).decode() in page  # the QR code shown beside it is the same link
    return link


async def _heartbeat(client: aiohttp.ClientSession, server, kiosk_id: str, **kwargs) -> int:
    async with client.post(server.make_url(f"/api/kiosks/{kiosk_id}/heartbeat"), **kwargs) as response:
        return response.status


async def test_opening_an_unknown_or_unpaired_booth_creates_nothing_and_says_how_to_set_it_up(server, operator):
    before = await _kiosk_rows(server)
    async with aiohttp.ClientSession() as stranger:
        for number in range(20):
            async with stranger.get(server.make_url(f"/kiosk/made-up-{number}")) as response:
                assert response.status == 404
                page = await response.text()
            assert NOT_SET_UP in page and "Pair this booth" in page and "made-up-" in page
            assert "kiosk.js" not in page  # the setup page runs no booth script
            assert await _heartbeat(stranger, server, f"made-up-{number}", headers={BOOTH_HEADER: "1"}) == 401
        assert await _kiosk_rows(server) == before

        client, csrf = operator
        form = {"csrf_token": csrf, "id": "cloakroom", "name": "Cloakroom", "location": ""}
        async with client.post(server.make_url("/staff/kiosks"), data=form, allow_redirects=False) as response:
            assert response.status == 303
        async with stranger.get(server.make_url("/kiosk/cloakroom")) as response:
            assert response.status == 401 and NOT_SET_UP in await response.text()
    assert await _kiosk_rows(server) == before + 1
    async with client.get(server.make_url("/staff/kiosks")) as response:
        cloakroom = (await response.text()).split('id="kiosk-cloakroom"')[1].split("</section>")[0]
    assert "Not paired" in cloakroom and "Pair this booth" in cloakroom and "Revoke" not in cloakroom


async def test_staff_pair_a_booth_with_a_one_time_link_that_gives_its_screen_a_path_scoped_cookie(server, operator):
    client, csrf = operator
    form = {"csrf_token": csrf, "id": "hall", "name": "Main hall", "location": "Ground floor"}
    async with client.post(server.make_url("/staff/kiosks"), data=form, allow_redirects=False) as response:
        assert response.status == 303
    link = await _staff_pairing_link(server, operator, "hall")

    async with booth_client() as screen, booth_client() as late:
        async with screen.get(link) as response:  # opening the link spends nothing
            assert response.status == 200 and "Pair this screen" in await response.text()
        async with screen.post(
            server.make_url("/kiosk/hall/pair"), data={"code": link.split("code=")[1]}, allow_redirects=False
        ) as response:
            assert response.status == 303 and response.headers["Location"] == "/kiosk/hall"
            cookies = response.headers.getall("Set-Cookie")
        assert len(cookies) == 2
        for cookie, path in zip(sorted(cookies), ("/api/kiosks/hall", "/kiosk/hall")):
            attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
            assert cookie.startswith(f"{BOOTH_COOKIE}=") and f"Path={path}" in cookie
            assert {"httponly", "samesite", "max-age"} <= attributes and "SameSite=Strict" in cookie
            assert "secure" not in attributes  # plain http on loopback; https sites get Secure
        credential = credential_of(screen, server, "hall")
        assert len(credential) == 43  # 256 random bits
        async with screen.get(server.make_url("/kiosk/hall")) as response:
            assert response.status == 200 and 'data-kiosk="hall"' in await response.text()
        assert await _heartbeat(screen, server, "hall") == 200

        # The link worked once.
        await late.get(link)
        async with late.post(server.make_url("/kiosk/hall/pair"), data={"code": link.split("code=")[1]}) as response:
            assert response.status == 403 and "expired or was used" in await response.text()
        assert await _heartbeat(late, server, "hall") == 401

        # Pairing again (a new screen) cuts the old one off.
        await pair(late, await _staff_pairing_link(server, operator, "hall"))
        assert await _heartbeat(late, server, "hall") == 200
        assert await _heartbeat(screen, server, "hall") == 403
        current = credential_of(late, server, "hall")

    # Only digests are stored.
    [row] = [r for r in await _rows(server) if r.id == "hall"]
    assert row.credential_hash == token_digest(current) and row.pairing_code_hash is None
    assert [entry.actor for entry in await _audit(server, "kiosk.pair")][-2:] == [OPERATOR[0], OPERATOR[0]]
    assert "booth:hall" in [entry.actor for entry in await _audit(server, "kiosk.paired")]
    async with client.get(server.make_url("/staff/kiosks")) as response:
        hall = (await response.text()).split('id="kiosk-hall"')[1].split("</section>")[0]
    assert "Paired " in hall and "Revoke its pairing" in hall


async def _rows(server) -> list[KioskRow]:
    async with server.app[STORAGE_KEY].sessions() as session:
        return list(await session.scalars(select(KioskRow)))


async def test_an_expired_pairing_link_pairs_nothing(server):
    sessions = server.app[STORAGE_KEY].sessions
    link = await pairing_link(server, "porch")  # registers it
    code, now = new_token(), datetime.now(timezone.utc)
    await booths.start_pairing(
        sessions, "porch", code_hash=token_digest(code), expires_at=now - timedelta(seconds=1), actor="test", now=now
    )
    async with booth_client() as screen:
        async with screen.post(server.make_url("/kiosk/porch/pair"), data={"code": code}) as response:
            assert response.status == 403 and "expired" in await response.text()
        # The newer code replaced the first link's one.
        async with screen.post(server.make_url("/kiosk/porch/pair"), data={"code": link.split("code=")[1]}) as response:
            assert response.status == 403
        async with screen.get(server.make_url("/kiosk/porch/pair?code=short")) as response:
            assert response.status == 400 and "incomplete" in await response.text()
        assert await _heartbeat(screen, server, "porch") == 401


async def test_booth_posts_need_the_booth_header_and_staff_may_operate_a_booth_with_their_csrf_token(server, operator):
    async with await paired_booth(server, "lobby") as screen:
        cookie = {"Cookie": f"{BOOTH_COOKIE}={credential_of(screen, server, 'lobby')}"}
    async with aiohttp.ClientSession() as bare:
        # Another site can make a browser post with its cookies, but not with a custom header.
        assert await _heartbeat(bare, server, "lobby", headers=cookie) == 403
        assert await _heartbeat(bare, server, "lobby", headers={**cookie, BOOTH_HEADER: "1"}) == 200
        async with bare.get(server.make_url("/api/kiosks/lobby/stats"), headers=cookie) as response:
            assert response.status == 200 and (await response.json())["kiosk"] == "lobby"

    client, csrf = operator
    async with client.get(server.make_url("/api/kiosks/lobby/stats")) as response:
        assert response.status == 200
    assert await _heartbeat(client, server, "lobby") == 403
    assert await _heartbeat(client, server, "lobby", headers={"X-CSRF-Token": csrf}) == 200
    async with client.get(server.make_url("/kiosk/lobby")) as response:
        page = await response.text()
    assert response.status == 200 and f'data-staff-csrf="{csrf}"' in page
    async with client.get(server.make_url("/kiosk/not-registered")) as response:
        assert response.status == 404 and NOT_SET_UP in await response.text()


def _capture_form(photo: bytes) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("artwork", MEADOW)
    form.add_field("photo", photo, filename="still.jpg", content_type="image/jpeg")
    return form


async def test_the_booth_tells_not_a_photo_from_no_person_from_busy_and_a_broken_form(server):
    async with await paired_booth(server, "garden") as screen:
        url = server.make_url("/api/kiosks/garden/capture")

        async def capture(**kwargs):
            async with screen.post(url, **kwargs) as response:
                return response.status, await response.json(), response.headers

        status, body, _ = await capture(data=_capture_form(b"these bytes are no picture"))
        assert (status, body["code"]) == (415, "not_an_image") and "did not come through" in body["error"]
        status, body, _ = await capture(data=_capture_form(bytes.fromhex("FFD8FFE0") + bytes(6)))
        assert status in (400, 415) and "did not come through" in body["error"]

        empty_room = np.full((480, 640, 3), (196, 201, 190), np.uint8)
        status, body, _ = await capture(data=_capture_form(encoded(empty_room)))
        assert (status, body["code"]) == (422, "no_person") and "could not see you" in body["error"]

        for broken in (b"--xyz\r\nbroken header line\r\n\r\nvalue\r\n--xyz--\r\n", b"no boundary anywhere"):
            status, body, _ = await capture(data=broken, headers={"Content-Type": "multipart/form-data; boundary=xyz"})
            assert (status, body["code"]) == (400, "usage") and "try again" in body["error"]

        slots = server.app[POOL_KEY]._slots  # every compose slot taken, as by other booths' captures
        taken = 0
        while not slots.locked():
            await slots.acquire()
            taken += 1
        try:
            status, body, headers = await capture(data=_capture_form(encoded(empty_room)))
        finally:
            for _ in range(taken):
                slots.release()
        assert (status, body["code"]) == (503, "busy") and "try again in a few seconds" in body["error"]
        assert int(headers["Retry-After"]) > 0


class _Camera(VideoStreamTrack):
    """A flat grey 640x480 camera at 30 fps."""

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame.from_ndarray(np.full((480, 640, 3), 128, np.uint8), format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


async def test_revoking_a_booth_closes_its_live_preview_at_once_and_refuses_its_screen(server, operator):
    peers = server.app[BOOTHS_KEY].peers
    async with await paired_booth(server, "studio") as screen:
        connection = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            connection.addTrack(_Camera())
            connected = asyncio.get_running_loop().create_future()
            over = asyncio.Event()

            @connection.on("connectionstatechange")
            def follow() -> None:
                if connection.connectionState == "connected" and not connected.done():
                    connected.set_result(None)
                if connection.connectionState in ("closed", "failed"):
                    over.set()

            await connection.setLocalDescription(await connection.createOffer())
            offer = {"sdp": connection.localDescription.sdp, "type": "offer", "artwork": MEADOW}
            async with screen.post(server.make_url("/api/kiosks/studio/offer"), json=offer) as response:
                assert response.status == 200, await response.text()
                await connection.setRemoteDescription(RTCSessionDescription(**await response.json()))
            await asyncio.wait_for(connected, 30)
            assert "studio" in peers.kiosk_ids()

            client, csrf = operator
            async with client.post(
                server.make_url("/staff/kiosks/studio/revoke"), data={"csrf_token": csrf}, allow_redirects=False
            ) as response:
                assert response.status == 303
            assert "studio" not in peers.kiosk_ids()  # closed by the time staff see the answer
            await asyncio.wait_for(over.wait(), 45)  # and the booth's side notices

            assert await _heartbeat(screen, server, "studio") == 403
            async with screen.post(server.make_url("/api/kiosks/studio/offer"), json=offer) as response:
                assert response.status == 403
            async with screen.get(server.make_url("/kiosk/studio")) as response:
                assert response.status == 403 and NOT_SET_UP in await response.text()
        finally:
            await connection.close()
    [revoked] = [entry for entry in await _audit(server, "kiosk.revoke") if entry.subject == "studio"]
    assert revoked.actor == OPERATOR[0]
