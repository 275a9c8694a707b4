"""Every staff page and API route refuses a stranger, and every state-changing one refuses a
signed-in session's request without its CSRF token; every booth route refuses a stranger (401)
and another booth's screen (403).

The routes are read from the application's router when the test runs, so a page or API call
added later is covered without anyone remembering to list it here.
"""

from __future__ import annotations

import re

import aiohttp
import pytest
import pytest_asyncio

from api_helpers import ADMIN, CHEAP_HASHES, bearer, browser, running_with_staff, sign_in
from booth_helpers import credential_of, paired_booth
from servers import loopback_settings
from web.kiosk import BOOTH_COOKIE, BOOTH_HEADER
from web.staff import PUBLIC_PATHS, STATE_CHANGING

pytestmark = pytest.mark.asyncio(loop_scope="module")

AREAS = ("/staff", "/api/v1")
# The booth's API, and its page (whose pairing step, /kiosk/{kiosk}/pair, takes a one-time code instead).
BOOTH_AREA = "/api/kiosks"
BOOTH_PAGE = "/kiosk/{kiosk}"
# A value for every path parameter: routes must refuse before they look at it.
_PARAMETER = re.compile(r"\{([^}:]+)(:[^}]*)?\}")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory, models_dir):
    settings = loopback_settings(tmp_path_factory.mktemp("routes"), models_dir, **CHEAP_HASHES)
    async with running_with_staff(settings) as test_server:
        yield test_server


def _routes(server, wanted) -> list[tuple[str, str]]:
    """(method, path with its parameters filled in as "1") of every route whose template is ``wanted``."""
    found = set()
    for route in server.app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        template = info.get("path") or info.get("formatter")
        if template is None or route.method == "HEAD" or not wanted(template):
            continue
        found.add((route.method, _PARAMETER.sub("1", template)))
    return sorted(found)


def secured_routes(server) -> list[tuple[str, str]]:
    """Every route under /staff and /api/v1."""
    found = _routes(server, lambda template: any(template == area or template.startswith(area + "/") for area in AREAS))
    assert len(found) > 10, found  # the dashboard's and the API's routes are all here
    return found


def booth_routes(server) -> list[tuple[str, str]]:
    """Every route of the booth's API, and the booth's page, for the kiosk "1"."""
    found = _routes(server, lambda template: template.startswith(BOOTH_AREA + "/") or template == BOOTH_PAGE)
    assert {path.rsplit("/", 1)[1] for _, path in found} >= {"offer", "artwork", "capture", "heartbeat", "stats"}, found
    return found


def _is_public(path: str) -> bool:
    return path in PUBLIC_PATHS


async def test_every_staff_and_api_route_refuses_a_request_without_a_session_or_token(server):
    refused = []
    async with aiohttp.ClientSession() as stranger:
        for method, path in secured_routes(server):
            if _is_public(path):
                continue
            for headers in ({}, bearer("abt_" + "x" * 43), {"Cookie": "artbooth_staff=" + "y" * 43}):
                async with stranger.request(
                    method, server.make_url(path), headers=headers, data={"x": "1"}, allow_redirects=False
                ) as response:
                    await response.read()
                    if path.startswith("/api/v1"):
                        ok = response.status == 401 and response.content_type == "application/problem+json"
                    else:
                        ok = response.status == 303 and response.headers["Location"].startswith("/staff/login")
                    if not ok:
                        refused.append((method, path, headers, response.status))
    assert refused == [], "routes that let a stranger through"


async def test_every_state_changing_route_refuses_a_session_without_its_csrf_token(server):
    let_through = []
    async with browser() as admin:
        await sign_in(admin, server, ADMIN)
        for method, path in secured_routes(server):
            if method not in STATE_CHANGING:
                continue
            for body in ({"data": {"x": "1"}}, {"json": {"x": "1"}}, {"data": {"csrf_token": "z" * 43}}):
                async with admin.request(method, server.make_url(path), allow_redirects=False, **body) as response:
                    await response.read()
                    if response.status != 403:
                        let_through.append((method, path, body, response.status))
        # Still signed in: the refusals ended nothing.
        async with admin.get(server.make_url("/api/v1/me")) as response:
            assert response.status == 200
    assert let_through == [], "state-changing routes that took a request without the CSRF token"


async def test_every_booth_route_refuses_a_stranger_and_another_booths_screen(server):
    async with await paired_booth(server, "1") as own, await paired_booth(server, "other") as other:
        strangers = {
            "nobody": ({}, 401),
            "another booth's screen": ({"Cookie": f"{BOOTH_COOKIE}={credential_of(other, server, 'other')}"}, 403),
            "a made-up credential": ({"Cookie": f"{BOOTH_COOKIE}={'z' * 43}"}, 403),
        }
        let_through = []
        async with aiohttp.ClientSession() as stranger:
            for method, path in booth_routes(server):
                for who, (headers, expected) in strangers.items():
                    async with stranger.request(
                        method, server.make_url(path), headers={**headers, BOOTH_HEADER: "1"}, data={"x": "1"}
                    ) as response:
                        await response.read()
                        if response.status != expected:
                            let_through.append((method, path, who, response.status))
        assert let_through == [], "booth routes that let someone else through"
        # The booth itself is still let in: the refusals were about who asked, not the route.
        async with own.get(server.make_url("/api/kiosks/1/stats")) as response:
            assert response.status == 200
