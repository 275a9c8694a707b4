"""Kiosks: the registered booths with their live statistics: online (checked in with any serve node
lately), captures since this server started (from the photos table, through any node), and this
server's preview connection and failures."""

from __future__ import annotations

from aiohttp import web

from db import service
from web.api.openapi import Operation, Param, json_answer, ref
from web.api.problems import Problem
from web.keys import BOOTHS_KEY, STORAGE_KEY
from web.kiosk import KIOSK_ID
from web.staff import ApiCaller

KIOSK = Param("kiosk_id", "path", str, "The kiosk's id.", pattern=KIOSK_ID.pattern)


async def list_kiosks(request: web.Request, caller: ApiCaller) -> web.StreamResponse:
    kiosks = await service.list_kiosks(request.app[STORAGE_KEY].sessions)
    return web.json_response(
        {
            "items": [
                {
                    "id": kiosk.id,
                    "name": kiosk.name,
                    "location": kiosk.location,
                    "last_seen": kiosk.last_seen.isoformat() if kiosk.last_seen is not None else None,
                    "stats": request.app[BOOTHS_KEY].live_stats(kiosk.id),
                }
                for kiosk in kiosks
            ]
        }
    )


async def get_stats(request: web.Request, caller: ApiCaller) -> web.StreamResponse:
    kiosk_id = STATS.arguments(request)["kiosk_id"]
    if await service.get_kiosk(request.app[STORAGE_KEY].sessions, kiosk_id) is None:
        raise Problem(404, f"there is no kiosk {kiosk_id!r}; staff register kiosks on the Kiosks page of the dashboard")
    return web.json_response(request.app[BOOTHS_KEY].live_stats(kiosk_id))


LIST = Operation(
    "GET", "/api/v1/kiosks", "listKiosks", "List kiosks with their live statistics", "kiosks:read",
    list_kiosks, "kiosks", responses={200: json_answer("Every registered kiosk.", ref("KioskList"))},
)
STATS = Operation(
    "GET", "/api/v1/kiosks/{kiosk_id}/stats", "getKioskStats", "A kiosk's live statistics", "kiosks:read",
    get_stats, "kiosks", params=(KIOSK,), responses={200: json_answer("Its statistics.", ref("KioskStats"))},
    problems=(404,),
)

OPERATIONS = (LIST, STATS)
