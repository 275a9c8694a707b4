"""Two serve nodes on one PostgreSQL database share what staff see and set: a settings change made
on one node's dashboard takes effect on the other within a second (NOTIFY, db/notify.py), also
after the other's listening connection was cut; a booth checking in with one node shows online on
the other's Kiosks page and API (db/presence.py), with its captures counted from the photos table.

Two real apps in this process, each with its own data folder, on one fresh database. Without
ARTBOOTH_TEST_POSTGRES_URL (a PostgreSQL server) these tests are skipped, like the other PostgreSQL tests.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

import aiohttp
import asyncpg
import numpy as np
import pytest
import pytest_asyncio

from api_helpers import ADMIN, CHEAP_HASHES, OPERATOR, add_staff, bearer, browser, new_token, sign_in
from booth_helpers import paired_booth, registered_kiosk
from databases import POSTGRES_ENV, scratch_postgres_database
from imagefiles import encoded
from db.notify import asyncpg_dsn
from servers import loopback_settings, running
from web.keys import BOOTHS_KEY, STORAGE_KEY

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(not os.environ.get(POSTGRES_ENV), reason=f"{POSTGRES_ENV} is not set (a PostgreSQL server)"),
]

# The promise for a settings change; presence is read every second here (kiosk_presence_read_seconds).
SETTINGS_REACH_S = 1.0
PRESENCE_REACH_S = 10.0
RECONNECT_REACH_S = 10.0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def nodes(tmp_path_factory, models_dir):
    async with scratch_postgres_database(os.environ[POSTGRES_ENV]) as url:
        settings = [
            loopback_settings(
                tmp_path_factory.mktemp(f"node{number}"),
                models_dir,
                **CHEAP_HASHES,
                ARTBOOTH_DATABASE_URL=url,
                ARTBOOTH_COMPOSE_WORKERS="1",
                ARTBOOTH_KIOSK_PRESENCE_READ_SECONDS="1",
            )
            for number in (1, 2)
        ]
        async with AsyncExitStack() as stack:
            # Started together, as nodes of one site may be (their schema upgrades take turns).
            first, second = await asyncio.gather(*(stack.enter_async_context(running(node)) for node in settings))
            await add_staff(first)  # one database: the same staff on both nodes
            yield first, second


# A composition's report as the pipeline writes it (the photo is stored, not composed: the test is about counting).
PIPELINE_REPORT = {
    "framing": "half-body",
    "people": 1,
    "timings_ms": {"faces": 100.0, "segmentation": 200.0, "harmonize": 100.0},
    "variant": {"name": "gentle", "targets": "learned", "reference": "ring", "strength": 0.7},
    "scores": {"default": 0.55, "gentle": 0.6},
    "score": 0.6,
}


def _photo() -> bytes:
    return encoded(np.random.default_rng(14).integers(0, 255, (120, 160, 3), dtype=np.uint8))


async def _until(check: Callable[[], Awaitable[bool]], within_s: float) -> None:
    """Poll ``check`` until it holds; fail when it still does not after ``within_s``."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < within_s, f"not within {within_s} s"
        await asyncio.sleep(0.05)


async def _text(client: aiohttp.ClientSession, server, path: str) -> str:
    async with client.get(server.make_url(path)) as response:
        assert response.status == 200
        return await response.text()


async def _save_museum(client: aiohttp.ClientSession, server, csrf: str, *, name: str, accent: str) -> None:
    form = {"csrf_token": csrf, "museum_name": name, "museum_accent_colour": accent}
    async with client.post(server.make_url("/staff/museum"), data=form, allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"].endswith("notice=saved")


async def _shows_accent(server, accent: str) -> bool:
    """Whether a visitor of ``server`` sees the museum's accent colour: the pages link the identity
    stylesheet by it (the museum identity taken up), and the stylesheet is made from the settings in effect."""
    async with aiohttp.ClientSession() as visitor:
        gallery = await _text(visitor, server, "/")
        stylesheet = await _text(visitor, server, "/museum/identity.css")
    return f"?v={accent.lstrip('#')}" in gallery and f"--accent: {accent};" in stylesheet


async def test_a_settings_change_on_one_node_takes_effect_on_the_other_within_a_second(nodes):
    first, second = nodes
    async with browser() as admin:
        csrf = await sign_in(admin, first, ADMIN)
        await _save_museum(admin, first, csrf, name="Museum of Two Nodes", accent="#1a6b3c")
        await _until(lambda: _shows_accent(second, "#1a6b3c"), SETTINGS_REACH_S)
        # A Settings page change too, with what keeps its own copy of it (the live preview's colour correction).
        form = {"csrf_token": csrf, "harmonize_targets": "learned"}
        async with admin.post(first.make_url("/staff/settings"), data=form, allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"].endswith("notice=saved")

        async def second_corrects_colours_as_learned() -> bool:
            return second.app[BOOTHS_KEY].preview_models.harmonizer.default_targets == "learned"

        await _until(second_corrects_colours_as_learned, SETTINGS_REACH_S)


async def test_a_change_reaches_a_node_whose_listening_connection_was_cut(nodes):
    first, second = nodes
    listener = f"artbooth settings {second.app[STORAGE_KEY].settings.resolved_node_name}"
    connection = await asyncpg.connect(asyncpg_dsn(second.app[STORAGE_KEY].engine.url))
    try:
        cut = await connection.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", listener
        )
        assert [row[0] for row in cut] == [True]  # one listening connection, now cut
        async with browser() as admin:
            csrf = await sign_in(admin, first, ADMIN)
            await _save_museum(admin, first, csrf, name="Museum after the cut", accent="#224488")
            await _until(lambda: _shows_accent(second, "#224488"), RECONNECT_REACH_S)
            # Listening again: the next change arrives as fast as before the cut.
            await _until(lambda: _listening(connection, listener), RECONNECT_REACH_S)
            await _save_museum(admin, first, csrf, name="Museum after the cut", accent="#884422")
            await _until(lambda: _shows_accent(second, "#884422"), SETTINGS_REACH_S)
    finally:
        await connection.close()


async def _listening(connection: asyncpg.Connection, application_name: str) -> bool:
    return await connection.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", application_name
    ) == 1


async def test_a_booth_checking_in_with_one_node_is_online_on_the_other(nodes):
    first, second = nodes
    token = await new_token(first, "kiosks:read")

    async def stats_on_second() -> dict:
        async with aiohttp.ClientSession() as client:
            async with client.get(second.make_url("/api/v1/kiosks/hall-east/stats"), headers=bearer(token)) as response:
                assert response.status == 200
                return await response.json()

    await registered_kiosk(first.app[STORAGE_KEY].sessions, "hall-east", name="East hall")
    assert (await stats_on_second())["online"] is False  # registered by staff, never seen
    async with await paired_booth(first, "hall-east") as booth:
        async with booth.post(first.make_url("/api/kiosks/hall-east/heartbeat"), json={"camera": "ok"}) as response:
            assert response.status == 200

    async def online_on_second() -> bool:
        return (await stats_on_second())["online"]

    await _until(online_on_second, PRESENCE_REACH_S)
    stats = await stats_on_second()
    assert stats["node"] == first.app[STORAGE_KEY].settings.resolved_node_name and stats["camera"] == "ok"
    assert stats["connected"] is False  # its live preview would be on node 1, not here
    async with browser() as operator:
        await sign_in(operator, second, OPERATOR)
        page = await _text(operator, second, "/staff/kiosks")
    east = page.split('id="kiosk-hall-east"')[1].split("</section>")[0]
    assert 'class="online"' in east and "last seen" in east

    # Its photo stored through node 1 counts on node 2: captures are read from the photos table.
    await first.app[STORAGE_KEY].save(_photo(), PIPELINE_REPORT, artwork_id="demo-golden-meadow", kiosk_id="hall-east")

    async def one_capture_on_second() -> bool:
        return (await stats_on_second())["captures"] == 1

    await _until(one_capture_on_second, PRESENCE_REACH_S)

    # Staff revoking the booth on node 1 take it offline on node 2 too.
    async with browser() as operator:
        csrf = await sign_in(operator, first, OPERATOR)
        async with operator.post(
            first.make_url("/staff/kiosks/hall-east/revoke"), data={"csrf_token": csrf}, allow_redirects=False
        ) as response:
            assert response.status == 303

    async def offline_on_second() -> bool:
        return not (await stats_on_second())["online"]

    await _until(offline_on_second, PRESENCE_REACH_S)
