"""The staff's Capture queue page (issue 14, web/dashboard_queue.py), as staff read it: what waits
now and from where, what is being composed, how long the oldest has waited, and per serve node and
per worker the jobs of the last hours with their failures, retries and times; the same figures as
JSON for monitoring; refused to strangers; on a SQLite node, the words that say there is no queue.

A real server on loopback on a fresh PostgreSQL database. The jobs are written through
db/capture_jobs.py as serve nodes and workers write them (queued, run by worker "w1" or "w2",
finished), then their times are moved back by a few seconds so that the figures are known exactly:
the database's clock stamps them, and how fast this machine is must not decide what the page says.
The PostgreSQL tests are skipped without ARTBOOTH_TEST_POSTGRES_URL, like the other PostgreSQL tests.
"""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
from markupsafe import escape
from sqlalchemy import text
from sqlalchemy.engine import URL

from api_helpers import ADMIN, CHEAP_HASHES, OPERATOR, browser, running_with_staff, sign_in
from databases import POSTGRES_ENV, scratch_postgres_database
from imagefiles import encoded
from db.capture_jobs import DONE, FAILED, finish_job, queue_engine, queue_job, start_run
from kiosk.capture_queue import deferrer, queue_app
from db.service import SessionFactory
from fakecamera import CHROMIUM, CHROMIUM_ARGS
from servers import loopback_settings
from web.keys import STORAGE_KEY

pytestmark = pytest.mark.asyncio(loop_scope="module")

NODES = ("hall-node-1", "hall-node-2")
# Waiting this long when the page was asked for: at least, and (a slow machine) not much more.
OLDEST_WAIT_S = 30.0


@dataclass(frozen=True)
class Job:
    """A finished job: which node queued it, which worker ran it last, and its times in seconds."""

    id: str
    node: str
    source: str
    worker: str
    total_s: float  # queued to finished
    wait_s: float  # queued to the last run's start
    state: str = DONE
    attempts: int = 1
    finished_ago_s: float = 1.0


FINISHED = (
    Job("j1", NODES[0], "booth", "w1", total_s=2.0, wait_s=0.5),
    Job("j2", NODES[0], "api", "w2", total_s=4.0, wait_s=1.0),
    Job("j3", NODES[0], "booth", "w1", total_s=3.0, wait_s=0.5, state=FAILED),
    # Its first worker (w1) died in it; w2 ran it again.
    Job("j4", NODES[1], "booth", "w2", total_s=9.0, wait_s=5.0, attempts=2),
    Job("j5", NODES[1], "staff", "w1", total_s=1.5, wait_s=0.2),
    Job("j6", NODES[1], "api", "w2", total_s=6.0, wait_s=0.4),
    # Three hours ago: only in a period of more than three hours.
    Job("j7", NODES[0], "booth", "w1", total_s=8.0, wait_s=0.3, finished_ago_s=3 * 3600.0),
)


async def _move_back(sessions: SessionFactory, job_id: str, *, queued_s: float, started_s: float | None, finished_s: float | None) -> None:
    """Stamp the job as queued, started and finished that many seconds ago (by the database's clock)."""
    async with sessions() as session, session.begin():
        await session.execute(
            text(
                "UPDATE capture_jobs SET queued_at = now() - make_interval(secs => :queued),"
                " started_at = CASE WHEN started_at IS NULL THEN NULL ELSE now() - make_interval(secs => :started) END,"
                " finished_at = CASE WHEN finished_at IS NULL THEN NULL ELSE now() - make_interval(secs => :finished) END"
                " WHERE id = :id"
            ),
            {"id": job_id, "queued": queued_s, "started": started_s or 0.0, "finished": finished_s or 0.0},
        )


async def _write_jobs(sessions: SessionFactory, url: URL) -> None:
    """The jobs, queued as a serve node queues them (no worker takes them: their ends are written here)."""
    engine, queue = queue_engine(url), queue_app(url)
    async with queue.open_async():
        try:
            await _write_jobs_through(sessions, engine, queue)
        finally:
            await engine.dispose()


async def _write_jobs_through(sessions: SessionFactory, engine, queue) -> None:
    async def _queue(job_id: str, node: str, source: str) -> None:
        assert await queue_job(
            engine, job_id, kind="photo", source=source, kiosk_id=None, node=node,
            still_key=f"stills/{job_id}.jpg", request={"artwork": "demo-golden-meadow"},
            defer=deferrer(queue, job_id, source),
        )

    for job in FINISHED:
        await _queue(job.id, job.node, job.source)
        for attempt in range(1, job.attempts + 1):
            worker = job.worker if attempt == job.attempts else "w1"
            assert await start_run(sessions, job.id, worker=worker, attempt=attempt) is not None
        if job.state == DONE:
            await finish_job(sessions, job.id, state=DONE, notify=False, photo_id=job.id)
        else:
            await finish_job(sessions, job.id, state=FAILED, notify=False, error_code="no_person", error="no person in the photo")
        finished = job.finished_ago_s
        await _move_back(sessions, job.id, queued_s=finished + job.total_s, started_s=finished + job.total_s - job.wait_s, finished_s=finished)
    # Waiting now: two from booths (one for OLDEST_WAIT_S), one from the API, one staff re-run; one being composed.
    for job_id, source in (("q1", "booth"), ("q2", "booth"), ("q3", "api"), ("q4", "staff"), ("r1", "booth")):
        await _queue(job_id, NODES[0], source)
    await _move_back(sessions, "q1", queued_s=OLDEST_WAIT_S, started_s=None, finished_s=None)
    assert await start_run(sessions, "r1", worker="w2", attempt=1) is not None


@dataclass(frozen=True)
class QueueNode:
    server: object
    # What staff saw before any job was written.
    empty_page: str
    empty_json: dict


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory, models_dir):
    if not os.environ.get(POSTGRES_ENV):
        pytest.skip(f"{POSTGRES_ENV} is not set (a PostgreSQL server)")
    async with scratch_postgres_database(os.environ[POSTGRES_ENV]) as url:
        settings = loopback_settings(
            tmp_path_factory.mktemp("queue"), models_dir, **CHEAP_HASHES,
            ARTBOOTH_DATABASE_URL=url, ARTBOOTH_COMPOSE_WORKERS="1", ARTBOOTH_SERVE_ROLE="web",
            # As many as _write_jobs leaves waiting: the queue is full.
            ARTBOOTH_QUEUE_MAX_WAITING="4",
        )
        async with running_with_staff(settings) as server:
            async with browser() as operator:
                await sign_in(operator, server, OPERATOR)
                empty_page = await _page(operator, server, "/staff/queue")
                empty_json = await _json(operator, server, "/staff/queue.json")
            storage = server.app[STORAGE_KEY]
            await _write_jobs(storage.sessions, storage.engine.url)
            yield QueueNode(server, empty_page, empty_json)


async def _get(client: aiohttp.ClientSession, server, path: str) -> tuple[int, str]:
    async with client.get(server.make_url(path), allow_redirects=False) as response:
        return response.status, await response.text()


async def _page(client: aiohttp.ClientSession, server, path: str) -> str:
    status, page = await _get(client, server, path)
    assert status == 200, page
    return page


async def _json(client: aiohttp.ClientSession, server, path: str) -> dict:
    async with client.get(server.make_url(path), allow_redirects=False) as response:
        assert response.status == 200 and response.headers["Cache-Control"] == "no-store"
        return await response.json()


def _figure(page: str, name: str) -> str:
    return html.unescape(re.search(rf'<dd id="{name}">([^<]*)</dd>', page).group(1))


def _row(page: str, kind: str, name: str) -> dict[str, str]:
    """One line of the per-node or per-worker table: {column class: the text staff read}."""
    row = re.search(rf'<tr data-{kind}="{re.escape(name)}">(.*?)</tr>', page, re.S).group(1)
    return {column: html.unescape(value) for column, value in re.findall(r'<td class="([\w-]+)">([^<]*)</td>', row)}


def _seconds(shown: str) -> float:
    number, unit = shown.split(" ")
    assert unit == "s"
    return float(number)


async def test_before_any_job_the_page_says_nothing_went_through_the_queue(node):
    page = node.empty_page
    assert "No photo went through the queue in the last 1 hour." in page
    assert [_figure(page, name) for name in ("waiting-booth", "waiting-api", "waiting-staff", "running")] == ["0"] * 4
    assert _figure(page, "oldest-wait") == "–"
    assert 'id="per-node"' not in page and "there is no queue" not in page
    figures = node.empty_json
    assert (figures["queue"], figures["hours"], figures["waiting"], figures["running"]) == (True, 1, {"booth": 0, "api": 0, "staff": 0}, 0)
    assert (figures["oldest_waiting_ms"], figures["nodes"], figures["workers"]) == (None, [], [])


async def test_staff_read_what_waits_and_how_each_node_and_worker_did(node):
    async with browser() as operator:
        await sign_in(operator, node.server, OPERATOR)
        page = await _page(operator, node.server, "/staff/queue")
    # In the dashboard's navigation, as the current section.
    assert '<a href="/staff/queue" aria-current="page">Capture queue</a>' in page
    assert [_figure(page, name) for name in ("waiting-booth", "waiting-api", "waiting-staff", "running")] == ["2", "1", "1", "1"]
    assert OLDEST_WAIT_S <= _seconds(_figure(page, "oldest-wait")) < OLDEST_WAIT_S + 120
    assert "Jobs finished in the last 1 hour" in page and "No photo went through" not in page
    # Nearest-rank medians and 95th percentiles of the times above, in seconds with one decimal.
    assert _row(page, "node", NODES[0]) == {
        "name": NODES[0], "jobs": "3", "failed": "1", "retries": "0", "p50": "3.0 s", "p95": "4.0 s", "wait-p50": "0.5 s",
    }
    assert _row(page, "node", NODES[1]) == {
        "name": NODES[1], "jobs": "3", "failed": "0", "retries": "1", "p50": "6.0 s", "p95": "9.0 s", "wait-p50": "0.4 s",
    }
    assert _row(page, "worker", "w1") == {
        "name": "w1", "jobs": "3", "failed": "1", "retries": "0", "p50": "2.0 s", "p95": "3.0 s", "wait-p50": "0.5 s",
    }
    assert _row(page, "worker", "w2") == {
        "name": "w2", "jobs": "3", "failed": "0", "retries": "1", "p50": "6.0 s", "p95": "9.0 s", "wait-p50": "1.0 s",
    }
    # The job of three hours ago counts in a longer period.
    async with browser() as admin:
        await sign_in(admin, node.server, ADMIN)
        longer = await _page(admin, node.server, "/staff/queue?hours=4")
    assert "Jobs finished in the last 4 hours" in longer
    assert _row(longer, "node", NODES[0]) == {
        "name": NODES[0], "jobs": "4", "failed": "1", "retries": "0", "p50": "3.0 s", "p95": "8.0 s", "wait-p50": "0.5 s",
    }
    assert _row(longer, "worker", "w1") == {
        "name": "w1", "jobs": "4", "failed": "1", "retries": "0", "p50": "2.0 s", "p95": "8.0 s", "wait-p50": "0.3 s",
    }


async def test_monitoring_reads_the_same_figures_as_json_in_milliseconds(node):
    async with browser() as operator:
        await sign_in(operator, node.server, OPERATOR)
        figures = await _json(operator, node.server, "/staff/queue.json")
    assert figures["node"] == node.server.app[STORAGE_KEY].settings.resolved_node_name
    assert (figures["role"], figures["queue"], figures["hours"]) == ("web", True, 1)
    assert figures["waiting"] == {"booth": 2, "api": 1, "staff": 1} and figures["running"] == 1
    assert OLDEST_WAIT_S * 1000 <= figures["oldest_waiting_ms"] < (OLDEST_WAIT_S + 120) * 1000
    assert figures["nodes"] == [
        {"node": NODES[0], "jobs": 3, "failed": 1, "retries": 0, "p50_ms": 3000.0, "p95_ms": 4000.0, "wait_p50_ms": 500.0},
        {"node": NODES[1], "jobs": 3, "failed": 0, "retries": 1, "p50_ms": 6000.0, "p95_ms": 9000.0, "wait_p50_ms": 400.0},
    ]
    assert figures["workers"] == [
        {"worker": "w1", "jobs": 3, "failed": 1, "retries": 0, "p50_ms": 2000.0, "p95_ms": 3000.0, "wait_p50_ms": 500.0},
        {"worker": "w2", "jobs": 3, "failed": 0, "retries": 1, "p50_ms": 6000.0, "p95_ms": 9000.0, "wait_p50_ms": 1000.0},
    ]
    for row in figures["nodes"] + figures["workers"]:
        assert 0 < row["wait_p50_ms"] <= row["p50_ms"] <= row["p95_ms"]


async def test_a_full_queue_asks_the_caller_to_come_back_and_queues_nothing(node):
    async def jobs() -> int:
        async with node.server.app[STORAGE_KEY].sessions() as session:
            return await session.scalar(text("SELECT count(*) FROM capture_jobs"))

    before = await jobs()
    form = aiohttp.FormData()
    form.add_field("artwork", "demo-golden-meadow")
    form.add_field("photo", encoded(np.zeros((64, 64, 3), np.uint8)), filename="photo.jpg", content_type="image/jpeg")
    async with aiohttp.ClientSession() as integrator:
        async with integrator.post(node.server.make_url("/api/compose"), data=form) as response:
            assert response.status == 503 and int(response.headers["Retry-After"]) > 0
            assert "busy" in await response.text()
    assert await jobs() == before


@pytest.mark.parametrize("typed", ["0", "169", "abc", "1.5", "", " 2", "²", "<b>2</b>"])
async def test_a_period_out_of_range_is_refused_with_why(node, typed):
    async with browser() as operator:
        await sign_in(operator, node.server, OPERATOR)
        status, page = await _get(operator, node.server, f"/staff/queue?{urlencode({'hours': typed})}")
        async with operator.get(node.server.make_url(f"/staff/queue.json?{urlencode({'hours': typed})}")) as response:
            refused_json = (response.status, await response.json())
    assert status == 400
    # Why, with what was typed shown as text (escaped); the last hour's figures still below.
    assert f"The period must be a whole number of hours from 1 to 168, not “{escape(typed)}”." in page
    assert "<b>2</b>" not in page and _figure(page, "waiting-booth") == "2"
    assert refused_json == (400, {"error": f"hours must be a whole number from 1 to 168, not {typed!r}"})


async def test_a_stranger_is_sent_to_sign_in_and_sees_no_figures(node):
    async with aiohttp.ClientSession() as stranger:
        for path in ("/staff/queue", "/staff/queue.json"):
            async with stranger.get(node.server.make_url(path), allow_redirects=False) as response:
                status, location, body = response.status, response.headers["Location"], await response.text()
            assert status == 303 and location == f"/staff/login?next={path}"
            assert NODES[0] not in body and "w1" not in body


async def test_in_french_the_page_speaks_french(node):
    async with browser() as operator:
        await sign_in(operator, node.server, OPERATOR)
        page = await _page(operator, node.server, "/staff/queue?lang=fr")
    assert "File d’attente des prises de vue" in page and "Tâches terminées depuis 1 heure" in page
    assert _row(page, "node", NODES[0])["p50"] == "3.0 s"


async def test_in_chromium_staff_open_the_queue_from_the_navigation(node, tmp_path):
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await chromium.new_page(viewport={"width": 1280, "height": 900})
            await page.goto(str(node.server.make_url("/staff/")))
            await page.fill('input[name="username"]', OPERATOR[0])
            await page.fill('input[name="password"]', OPERATOR[1])
            await page.click('button[type="submit"]')
            await page.get_by_role("link", name="Capture queue").click()
            await page.wait_for_url("**/staff/queue")
            node_row = page.locator(f'#per-node tr[data-node="{NODES[1]}"]')
            await node_row.wait_for()
            assert (await node_row.inner_text()).split("\t") == [NODES[1], "3", "0", "1", "6.0 s", "9.0 s", "0.4 s"]
            assert await page.locator("#waiting-booth").inner_text() == "2"
            # Staff choose a longer period with the form.
            await page.fill('input[name="hours"]', "4")
            await page.get_by_role("button", name="Show").click()
            await page.wait_for_url("**/staff/queue?hours=4")
            await page.get_by_role("heading", name="Jobs finished in the last 4 hours").wait_for()
            await page.screenshot(path=tmp_path / "queue_page.png", full_page=True)
        finally:
            await chromium.close()


async def test_a_sqlite_node_says_it_composes_itself_and_has_no_queue(tmp_path, models_dir):
    settings = loopback_settings(tmp_path, models_dir, **CHEAP_HASHES, ARTBOOTH_COMPOSE_WORKERS="1")
    async with running_with_staff(settings) as server:
        async with browser() as operator:
            await sign_in(operator, server, OPERATOR)
            page = await _page(operator, server, "/staff/queue")
            figures = await _json(operator, server, "/staff/queue.json")
    assert "This server composes every photo itself, on this machine: there is no queue." in page
    assert 'id="waiting-booth"' not in page and 'id="per-node"' not in page
    assert (figures["queue"], figures["role"], figures["nodes"], figures["waiting"]) == (
        False, "all", [], {"booth": 0, "api": 0, "staff": 0},
    )
