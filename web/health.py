"""Each serve node's health, for load balancers and operators (no sign-in: they say nothing private).

- ``GET /healthz``: the process answers (it serves only once its database, artworks and compose
  workers were ready at start).
- ``GET /readyz``: it can take a capture now. The database answers a trivial query, the photo store
  answers (local folder or S3), and the compose workers are running; each check is bounded by
  ``readiness_timeout_seconds``. 200 when all are "ok", else 503 with what failed, so a balancer
  sends booths and uploads elsewhere while it lasts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from aiohttp import web

from db.engine import check_database
from db.store import new_key
from web.keys import POOL_KEY, STORAGE_KEY

NO_STORE = {"Cache-Control": "no-store"}


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/healthz", healthz)
    router.add_get("/readyz", readyz)


async def healthz(request: web.Request) -> web.Response:
    node = request.app[STORAGE_KEY].settings.resolved_node_name
    return web.json_response({"status": "ok", "node": node}, headers=NO_STORE)


async def readyz(request: web.Request) -> web.Response:
    storage, pool = request.app[STORAGE_KEY], request.app[POOL_KEY]
    timeout = storage.settings.readiness_timeout_seconds
    database, photo_store = await asyncio.gather(
        _check(check_database(storage.engine), timeout),
        # A key no photo has: any answer, found or not, shows the store is there.
        _check(storage.store.exists(new_key(".jpg")), timeout),
    )
    checks = {
        "database": database,
        "photo_store": photo_store,
        "compose_workers": "stopped: a worker died; restart the service" if pool.broken else "ok",
    }
    ready = all(state == "ok" for state in checks.values())
    return web.json_response(
        {"status": "ready" if ready else "unavailable", "node": storage.settings.resolved_node_name, "checks": checks},
        status=200 if ready else 503,
        headers=NO_STORE,
    )


async def _check(probe: Awaitable[object], timeout: float) -> str:
    try:
        await asyncio.wait_for(probe, timeout)
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except Exception as exc:  # whatever stops it is the answer: the check reports it, never a 500
        return f"unavailable: {exc}"
    return "ok"
