"""The staff dashboard's Capture queue section (issue 14): on serve nodes that share a PostgreSQL
database, the compositions queued for `artbooth worker` processes (db/capture_jobs.py): how many
photos wait now and from where (booths, the API, staff), how many are being composed, how long the
oldest has waited, and per serve node and per worker how the jobs finished in the last hours went:
jobs, failed, run again after a worker stopped, and the time from queued to ready (median and 95th
percentile) and the median wait before a worker took the job. Admins and operators alike.

- ``GET /staff/queue``: the page, in seconds with one decimal.
- ``GET /staff/queue.json``: the same figures for integrators and monitoring, in milliseconds.

Both take ``?hours=`` (whole hours, HOURS_RANGE) for the period; another value is refused with 400
and why. On SQLite (one machine) a node composes every photo itself and there is no queue: the page
says so, and the JSON has ``"queue": false``.
"""

from __future__ import annotations

import re

from aiohttp import web

from db.capture_jobs import LatencyFigures, QueueFigures, queue_figures
from kiosk.capture_queue import PRIORITIES
from web import staff_pages
from web.health import NO_STORE
from web.keys import STORAGE_KEY
from web.staff import require_login
from web.staff_pages import Viewer

SECTION = "/staff/queue"
# The period the figures cover unless ``?hours=`` says otherwise, and what it may say: up to a week.
DEFAULT_HOURS = 1
HOURS_RANGE = (1, 168)
# Where a waiting photo comes from, highest priority first.
SOURCES = tuple(sorted(PRIORITIES, key=PRIORITIES.__getitem__, reverse=True))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(SECTION, queue_page)
    router.add_get(SECTION + ".json", queue_json)


def _hours(request: web.Request) -> int:
    """The period asked for; ValueError when ``?hours=`` is not a whole number in HOURS_RANGE."""
    typed = request.query.get("hours")
    if typed is None:
        return DEFAULT_HOURS
    low, high = HOURS_RANGE
    if re.fullmatch(r"[0-9]{1,4}", typed) is None or not low <= int(typed) <= high:
        raise ValueError(f"hours must be a whole number from {low} to {high}, not {typed!r}")
    return int(typed)


async def _figures(request: web.Request, hours: int) -> QueueFigures | None:
    """The queue's figures over the last ``hours``; None where this node's database holds no queue (SQLite)."""
    storage = request.app[STORAGE_KEY]
    if not storage.shares_settings:
        return None
    return await queue_figures(storage.sessions, since_seconds=hours * 3600)


async def queue_page(request: web.Request) -> web.StreamResponse:
    identity = require_login(request)
    settings = request.app[STORAGE_KEY].settings
    context: dict[str, object] = {"typed_hours": request.query.get("hours", ""), "hours_range": HOURS_RANGE}
    try:
        hours = _hours(request)
    except ValueError:
        # The figures of the default period under the refusal, so the page is still of use.
        hours, status, context["hours_refused"] = DEFAULT_HOURS, 400, True
    else:
        status, context["hours_refused"] = 200, False
    figures = await _figures(request, hours)
    return staff_pages.html(
        request,
        "staff/queue.html",
        viewer=Viewer.of(identity),
        section=SECTION,
        status=status,
        hours=hours,
        figures=figures,
        waiting={source: 0 if figures is None else figures.waiting.get(source, 0) for source in SOURCES},
        composes_here=settings.serve_role == "all",
        **context,
    )


async def queue_json(request: web.Request) -> web.Response:
    require_login(request)
    try:
        hours = _hours(request)
    except ValueError as exc:
        return web.json_response({"error": str(exc)}, status=400, headers=NO_STORE)
    settings = request.app[STORAGE_KEY].settings
    figures = await _figures(request, hours)
    shown = figures or QueueFigures()
    return web.json_response(
        {
            "node": settings.resolved_node_name,
            "role": settings.serve_role,
            # False: this node composes every photo itself (SQLite, one machine); the rest is then empty.
            "queue": figures is not None,
            "hours": hours,
            "waiting": {source: 0 for source in SOURCES} | shown.waiting,
            "running": shown.running,
            "oldest_waiting_ms": None if shown.oldest_waiting_s is None else round(shown.oldest_waiting_s * 1000, 1),
            "nodes": [{"node": name} | _latency_json(latencies) for name, latencies in shown.nodes.items()],
            "workers": [{"worker": name} | _latency_json(latencies) for name, latencies in shown.workers.items()],
        },
        headers=NO_STORE,
    )


def _latency_json(figures: LatencyFigures) -> dict[str, object]:
    def ms(value: float | None) -> float | None:
        return None if value is None else round(value, 1)

    return {
        "jobs": figures.jobs,
        "failed": figures.failed,
        "retries": figures.retries,
        "p50_ms": ms(figures.p50_ms),
        "p95_ms": ms(figures.p95_ms),
        "wait_p50_ms": ms(figures.wait_p50_ms),
    }
