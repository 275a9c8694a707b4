"""The REST API v1 as an integrator meets it: tokens made in the dashboard, compositions, photos,
artworks and kiosks, and problem details for whatever goes wrong. A real server on loopback with
a real SQLite file and the real compose worker; one server for the module.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import zlib
from datetime import datetime, timedelta, timezone

import aiohttp
import pytest
import pytest_asyncio
import skimage.data
from aiohttp import web
from PIL import Image
from sqlalchemy import select, update

from api_helpers import ADMIN, CHEAP_HASHES, OPERATOR, bearer, browser, new_token, running_with_staff, sign_in
from booth_helpers import registered_kiosk
from db import service
from db.models import ApiTokenRow, AuditRow
from imagefiles import encoded
from pipeline.harmonize.harmonizer import GENTLE_SHARE
from servers import loopback_settings
from web.app import create_app
from web.keys import POOL_KEY, STORAGE_KEY

pytestmark = pytest.mark.asyncio(loop_scope="module")

UPLOAD_LIMIT = 2_000_000
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def api_settings(tmp_path_factory, models_dir):
    return loopback_settings(
        tmp_path_factory.mktemp("api"), models_dir, **CHEAP_HASHES, ARTBOOTH_MAX_UPLOAD_BYTES=str(UPLOAD_LIMIT)
    )


async def broken(request: web.Request) -> web.Response:
    raise RuntimeError("a bug with a secret detail")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(api_settings):
    app = create_app(api_settings)
    app.router.add_get("/api/v1/test/broken", broken)  # stands for a handler with a bug
    async with running_with_staff(api_settings, app) as test_server:
        yield test_server


@pytest_asyncio.fixture(loop_scope="module")
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def admin_token(server) -> str:
    return await new_token(server)


@pytest.fixture(scope="module")
def astronaut_jpeg() -> bytes:
    return encoded(skimage.data.astronaut())


async def call(http, server, method: str, path: str, **kwargs) -> tuple[int, dict | bytes | str, dict]:
    url = path if path.startswith("http") else server.make_url(path)
    async with http.request(method, url, allow_redirects=False, **kwargs) as response:
        if response.content_type in ("application/json", PROBLEM):
            body = await response.json(content_type=None)
        elif response.content_type.startswith("image/"):
            body = await response.read()
        else:
            body = await response.text()
        return response.status, body, dict(response.headers)


def upload(photo: bytes | None, artwork: str | None, **fields: str) -> aiohttp.FormData:
    form = aiohttp.FormData(default_to_multipart=True)
    if photo is not None:
        form.add_field("photo", photo, filename="me.jpg", content_type="image/jpeg")
    if artwork is not None:
        form.add_field("artwork", artwork)
    for name, value in fields.items():
        form.add_field(name, value)
    return form


def assert_problem(status: int, body, headers, expected_status: int, detail_part: str = "") -> None:
    assert status == expected_status, body
    assert headers["Content-Type"].startswith(PROBLEM), headers
    assert body["status"] == expected_status and body["title"] and body["type"] == "about:blank"
    assert detail_part.lower() in body["detail"].lower(), body


async def first_artwork(http, server, token: str) -> str:
    status, body, _ = await call(http, server, "GET", "/api/v1/artworks", headers=bearer(token))
    assert status == 200
    return next(item["id"] for item in body["items"] if item["enabled"] and item["available"])


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` pixels, without the pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


# --- tokens ----------------------------------------------------------------------------------------


async def test_a_token_made_in_the_dashboard_works_with_its_scopes_until_revoked(server, http):
    async with browser() as admin:
        csrf = await sign_in(admin, server, ADMIN)
        status, page, _ = await call(admin, server, "GET", "/staff/tokens")
        assert status == 200 and 'name="scopes" value="photos:read"' in page and "No API tokens yet" in page
        form = {"csrf_token": csrf, "name": "Museum <website>", "scopes": ["photos:read", "kiosks:read"], "expires_days": "30"}
        data = aiohttp.FormData([(name, value) for name, values in form.items() for value in ([values] if isinstance(values, str) else values)])
        status, page, _ = await call(admin, server, "POST", "/staff/tokens", data=data)
        assert status == 200 and "it is not shown again" in page
        assert "Museum &lt;website&gt;" in page and "<website>" not in page  # escaped
        token = re.search(r'<code class="token">(abt_[A-Za-z0-9_-]{43})</code>', page).group(1)

        # Only its hash is kept; the list shows its prefix, never the token again.
        [row] = list(await _rows(server, ApiTokenRow))
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in repr(vars(row))
        assert row.scopes == ["photos:read", "kiosks:read"] and row.created_by == ADMIN[0]
        assert timedelta(days=29) < row.expires_at - row.created_at <= timedelta(days=30)
        status, page, _ = await call(admin, server, "GET", "/staff/tokens")
        assert token not in page and row.prefix in page and token.startswith(row.prefix) and "active" in page

        status, body, _ = await call(http, server, "GET", "/api/v1/kiosks", headers=bearer(token))
        assert status == 200 and "items" in body
        status, body, headers = await call(http, server, "GET", "/api/v1/artworks", headers=bearer(token))
        assert_problem(status, body, headers, 403, "artworks:read")
        assert body["code"] == "insufficient_scope"
        [row] = list(await _rows(server, ApiTokenRow))
        assert row.last_used_at is not None

        # Revoking takes the session's CSRF token, like every dashboard form.
        revoke = f"/staff/tokens/{row.id}/revoke"
        status, _, _ = await call(admin, server, "POST", revoke, data={})
        assert status == 403
        status, _, headers = await call(admin, server, "POST", revoke, data={"csrf_token": csrf})
        assert status == 303 and headers["Location"] == "/staff/tokens"
        status, body, headers = await call(http, server, "GET", "/api/v1/kiosks", headers=bearer(token))
        assert_problem(status, body, headers, 401, "revoked")
        assert headers["WWW-Authenticate"].startswith("Bearer")
        status, page, _ = await call(admin, server, "GET", "/staff/tokens")
        assert "revoked" in page

    actions = [row.action for row in await _rows(server, AuditRow) if row.action.startswith("api_token.")]
    assert actions == ["api_token.create", "api_token.revoke"]


async def test_expired_unknown_and_malformed_tokens_are_refused(server, http):
    token = await new_token(server, "kiosks:read", name="short-lived", expires_at=datetime.now(timezone.utc) + timedelta(hours=1))
    assert (await call(http, server, "GET", "/api/v1/kiosks", headers=bearer(token)))[0] == 200
    async with server.app[STORAGE_KEY].sessions() as session, session.begin():
        await session.execute(
            update(ApiTokenRow)
            .where(ApiTokenRow.name == "short-lived")
            .values(expires_at=datetime.now(timezone.utc) - timedelta(minutes=1))
        )
    status, body, headers = await call(http, server, "GET", "/api/v1/kiosks", headers=bearer(token))
    assert_problem(status, body, headers, 401, "expired")
    for wrong in (token[:-1] + ("A" if token[-1] != "A" else "B"), "abt_short", "", "x" * 5000):
        status, body, headers = await call(http, server, "GET", "/api/v1/kiosks", headers=bearer(wrong))
        assert_problem(status, body, headers, 401, "not valid")
    status, body, headers = await call(http, server, "GET", "/api/v1/kiosks")
    assert_problem(status, body, headers, 401, "API token")


async def test_only_administrators_manage_tokens_and_roles_map_to_scopes(server, http):
    async with browser() as operator:
        csrf = await sign_in(operator, server, OPERATOR)
        status, page, _ = await call(operator, server, "GET", "/staff/tokens")
        assert status == 403 and "admin role" in page
        status, _, _ = await call(operator, server, "POST", "/staff/tokens", data={"csrf_token": csrf, "name": "x", "scopes": "photos:read"})
        assert status == 403
        # A staff session uses the API with its role's scopes, and its CSRF token on changes.
        assert (await call(operator, server, "GET", "/api/v1/photos"))[0] == 200
        assert (await call(operator, server, "GET", "/api/v1/artworks"))[0] == 200
        patch = {"json": {"enabled": False}}
        status, body, headers = await call(operator, server, "PATCH", "/api/v1/artworks/demo-golden-meadow", **patch)
        assert_problem(status, body, headers, 403, "security token")
        status, body, headers = await call(
            operator, server, "PATCH", "/api/v1/artworks/demo-golden-meadow", headers={"X-CSRF-Token": csrf}, **patch
        )
        assert_problem(status, body, headers, 403, "artworks:write")
        status, body, headers = await call(
            operator, server, "DELETE", "/api/v1/photos/" + "0" * 32, headers={"X-CSRF-Token": csrf}
        )
        assert_problem(status, body, headers, 404, "no photo")


# --- compositions and photos -----------------------------------------------------------------------


async def test_a_composition_is_stored_and_its_download_link_serves_the_photo_until_deleted(
    server, http, admin_token, astronaut_jpeg
):
    sessions = server.app[STORAGE_KEY].sessions
    await registered_kiosk(sessions, "entrance", name="Entrance", location="Hall", seen=datetime.now(timezone.utc))
    artwork = await first_artwork(http, server, admin_token)
    status, body, headers = await call(
        http, server, "POST", "/api/v1/compositions", headers=bearer(admin_token),
        data=upload(astronaut_jpeg, artwork, kiosk="entrance"),
    )
    assert status == 201, body
    photo = body["photo"]
    assert headers["Location"] == f"/api/v1/photos/{photo['id']}"
    assert photo["artwork"] == artwork and photo["kiosk"] == "entrance"
    assert photo["people"] == 1 and photo["framing"] == "half-body"
    assert isinstance(photo["score"], float) and set(photo["scores"]) and photo["variant"]
    assert datetime.fromisoformat(photo["created_at"]) <= datetime.now(timezone.utc)
    assert datetime.fromisoformat(body["download_expires_at"]) > datetime.now(timezone.utc) + timedelta(hours=71)

    # The result, through the API and through the visitor's link, is the stored photo.
    status, result, _ = await call(http, server, "GET", body["result_url"], headers=bearer(admin_token))
    assert status == 200 and Image.open(io.BytesIO(result)).size == (1920, 1080)
    stored = await server.app[STORAGE_KEY].store.get((await service.get_photo(sessions, photo["id"])).result_key)
    assert result == stored
    status, page, _ = await call(http, server, "GET", body["download_url"])
    assert status == 200 and "Download" in page
    status, downloaded, _ = await call(http, server, "GET", body["download_url"] + "/download")
    assert status == 200 and downloaded == stored

    # Found by the list's filters, not by others.
    async def listed(**query) -> list[str]:
        status, page, _ = await call(http, server, "GET", "/api/v1/photos", headers=bearer(admin_token), params=query)
        assert status == 200, page
        return [item["id"] for item in page["items"]]

    assert photo["id"] in await listed()
    assert photo["id"] in await listed(kiosk="entrance", artwork=artwork, since="2020-01-01T00:00:00Z")
    assert await listed(kiosk="elsewhere") == [] and await listed(until="2020-01-01T00:00:00") == []
    assert await listed(offset="1000") == []
    status, got, _ = await call(http, server, "GET", f"/api/v1/photos/{photo['id']}", headers=bearer(admin_token))
    assert status == 200 and got == photo

    status, _, _ = await call(http, server, "DELETE", f"/api/v1/photos/{photo['id']}", headers=bearer(admin_token))
    assert status == 204
    status, page, _ = await call(http, server, "GET", body["download_url"])
    assert status == 410 and "deleted" in page.lower()
    status, got, headers = await call(http, server, "GET", f"/api/v1/photos/{photo['id']}", headers=bearer(admin_token))
    assert_problem(status, got, headers, 404, "no photo")
    status, got, headers = await call(http, server, "DELETE", f"/api/v1/photos/{photo['id']}", headers=bearer(admin_token))
    assert_problem(status, got, headers, 404, "no photo")
    [deletion] = [row for row in await _rows(server, AuditRow) if row.action == "photo.delete"]
    assert deletion.subject == photo["id"] and re.fullmatch(r"token:\d+:test integration", deletion.actor)


async def test_harmonize_options_are_honoured_and_reported(server, http, admin_token, astronaut_jpeg):
    artwork = await first_artwork(http, server, admin_token)
    settings = server.app[STORAGE_KEY].settings
    status, record, _ = await call(http, server, "GET", f"/api/v1/artworks/{artwork}", headers=bearer(admin_token))
    assert status == 200

    async def compose(**options: str) -> tuple[dict, bytes]:
        status, body, _ = await call(
            http, server, "POST", "/api/v1/compositions", headers=bearer(admin_token),
            data=upload(astronaut_jpeg, artwork, **options),
        )
        assert status == 201, body
        status, result, _ = await call(http, server, "GET", body["result_url"], headers=bearer(admin_token))
        assert status == 200
        return body, result

    # Options left out (or sent empty, as an HTML form does) are the service's settings.
    default, default_result = await compose(harmonize_targets="")
    assert default["options"] == {
        "harmonize": settings.harmonize,
        "harmonize_targets": settings.harmonize_targets,
        "harmonize_strength": settings.harmonize_strength,
        "reference": record["reference_mode"],
        "look": "realistic",
        "stylize_strength": None,
    }
    assert default["photo"]["variant"]["name"] in default["photo"]["scores"]

    plain, plain_result = await compose(harmonize="false")
    assert plain["options"]["harmonize"] is False
    assert plain["photo"]["variant"] is None and plain["photo"]["score"] is None and plain["photo"]["scores"] is None
    assert plain_result != default_result

    fitted, fitted_result = await compose(harmonize_targets="fitted", harmonize_strength="0.5", reference="ring")
    assert fitted["options"] == {
        "harmonize": True, "harmonize_targets": "fitted", "harmonize_strength": 0.5, "reference": "ring", "look": "realistic",
        "stylize_strength": None,
    }
    # The candidates are the chosen ones: the default correction on the ring, and the classic match to the whole artwork.
    assert set(fitted["photo"]["scores"]) == {"default", "gentle", "matched-artwork", "untouched"}
    variant = fitted["photo"]["variant"]
    expected = {
        "default": ("fitted", "ring", 0.5),
        "gentle": ("fitted", "ring", 0.5 * GENTLE_SHARE),
        "matched-artwork": ("fitted", "artwork", 0.25),
        "untouched": ("fitted", "ring", 0.0),
    }[variant["name"]]
    assert (variant["targets"], variant["reference"]) == expected[:2] and variant["strength"] == pytest.approx(expected[2])
    assert fitted_result not in (default_result, plain_result)
    # The stored photo says the same.
    status, stored, _ = await call(http, server, "GET", f"/api/v1/photos/{fitted['photo']['id']}", headers=bearer(admin_token))
    assert status == 200 and stored["variant"] == variant


@pytest.mark.parametrize(
    "options, field, detail",
    [
        ({"harmonize": "maybe"}, "harmonize", "true or false, not 'maybe'"),
        ({"harmonize_targets": "magic"}, "harmonize_targets", "one of learned, fitted, not 'magic'"),
        ({"harmonize_strength": "1.5"}, "harmonize_strength", "a number from 0.0 to 1.0, not '1.5'"),
        ({"harmonize_strength": "strong"}, "harmonize_strength", "a number from 0.0 to 1.0"),
        ({"harmonize_strength": "nan"}, "harmonize_strength", "a number from 0.0 to 1.0"),
        ({"reference": "sky"}, "reference", "one of artwork, ring, region, not 'sky'"),
        ({"reference": "region"}, "reference", "has no reference region; reference must be one of artwork, ring"),
    ],
)
async def test_bad_options_get_a_problem_naming_the_field_and_its_values(
    server, http, admin_token, astronaut_jpeg, options, field, detail
):
    status, body, _ = await call(http, server, "GET", "/api/v1/artworks", headers=bearer(admin_token))
    artwork = next(item["id"] for item in body["items"] if item["enabled"] and item["reference_region"] is None)
    photos_before = (await call(http, server, "GET", "/api/v1/photos", headers=bearer(admin_token)))[1]["total"]
    status, body, headers = await call(
        http, server, "POST", "/api/v1/compositions", headers=bearer(admin_token), data=upload(astronaut_jpeg, artwork, **options)
    )
    assert_problem(status, body, headers, 422, detail)
    assert body["code"] == "invalid_parameter" and body["errors"][0]["parameter"] == field
    assert (await call(http, server, "GET", "/api/v1/photos", headers=bearer(admin_token)))[1]["total"] == photos_before


@pytest.mark.parametrize(
    "case, expected_status, detail",
    [
        ("empty file", 400, "empty"),
        ("not an image", 415, "not an image"),
        ("over the byte limit", 413, f"{UPLOAD_LIMIT:,} bytes"),
        ("far over the byte limit", 413, f"{UPLOAD_LIMIT:,} bytes"),
        ("over the pixel limit", 413, "pixels"),
        ("unknown artwork", 404, "no artwork 'no-such-painting'"),
        ("no person", 422, "no person"),
        ("no photo field", 400, "'photo' file field"),
        ("no artwork field", 400, "'artwork' field"),
        ("unknown kiosk", 422, "no kiosk"),
        ("json instead of a form", 415, "multipart/form-data"),
    ],
)
async def test_bad_uploads_get_problem_details_that_say_what_to_fix(server, http, admin_token, case, expected_status, detail):
    artwork = await first_artwork(http, server, admin_token)
    plain = encoded(Image.new("RGB", (320, 240), (120, 130, 140)))
    request = {
        "empty file": {"data": upload(b"", artwork)},
        "not an image": {"data": upload(b"this is a text file, not a photo", artwork)},
        "over the byte limit": {"data": upload(b"\xff" * (UPLOAD_LIMIT + 1000), artwork)},
        "far over the byte limit": {"data": upload(b"\xff" * (UPLOAD_LIMIT + 200_000), artwork)},
        "over the pixel limit": {"data": upload(png_declaring(7000, 7000), artwork)},
        "unknown artwork": {"data": upload(plain, "no-such-painting")},
        "no person": {"data": upload(plain, artwork)},
        "no photo field": {"data": upload(None, artwork)},
        "no artwork field": {"data": upload(plain, None)},
        "unknown kiosk": {"data": upload(plain, artwork, kiosk="no-such-kiosk")},
        "json instead of a form": {"json": {"photo": "x", "artwork": artwork}},
    }[case]
    status, body, headers = await call(http, server, "POST", "/api/v1/compositions", headers=bearer(admin_token), **request)
    assert_problem(status, body, headers, expected_status, detail)
    assert body["instance"] == "/api/v1/compositions" and body["code"]


async def test_a_busy_pool_answers_503_with_retry_after(server, http, admin_token, astronaut_jpeg):
    artwork = await first_artwork(http, server, admin_token)
    # Every slot of the compose pool taken, as by captures at the booths.
    slots = server.app[POOL_KEY]._slots
    taken = 0
    while not slots.locked():
        await slots.acquire()
        taken += 1
    try:
        status, body, headers = await call(
            http, server, "POST", "/api/v1/compositions", headers=bearer(admin_token), data=upload(astronaut_jpeg, artwork)
        )
    finally:
        for _ in range(taken):
            slots.release()
    assert_problem(status, body, headers, 503, "busy")
    assert int(headers["Retry-After"]) > 0


async def test_unknown_routes_wrong_methods_and_bugs_are_problems_too(server, http, admin_token):
    status, body, headers = await call(http, server, "GET", "/api/v1/no/such/thing", headers=bearer(admin_token))
    assert_problem(status, body, headers, 404, "openapi.json")
    status, body, headers = await call(http, server, "PUT", "/api/v1/photos", headers=bearer(admin_token))
    assert_problem(status, body, headers, 405, "PUT")
    assert "GET" in headers["Allow"]
    status, body, headers = await call(http, server, "GET", "/api/v1/test/broken", headers=bearer(admin_token))
    assert_problem(status, body, headers, 500, "failed unexpectedly")
    assert "secret detail" not in repr(body) and "Traceback" not in repr(body)
    status, body, headers = await call(http, server, "GET", "/api/v1/photos", params={"limit": "0"}, headers=bearer(admin_token))
    assert_problem(status, body, headers, 422, "limit")
    status, body, headers = await call(http, server, "GET", "/api/v1/photos", params={"since": "yesterday"}, headers=bearer(admin_token))
    assert_problem(status, body, headers, 422, "ISO 8601")
    assert body["errors"][0]["parameter"] == "since"


async def test_the_openapi_document_describes_every_api_route(server, http):
    status, document, _ = await call(http, server, "GET", "/api/v1/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.")
    described = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    served = {
        (route.method, route.resource.canonical)
        for route in server.app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/api/v1/")
        and route.method != "HEAD"
        and route.resource.canonical not in ("/api/v1/openapi.json", "/api/v1/me", "/api/v1/test/broken")
    }
    assert served == described
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


# --- artworks and kiosks ---------------------------------------------------------------------------


async def test_artworks_can_be_added_edited_reordered_and_deleted(server, http, admin_token):
    auth = bearer(admin_token)
    form = aiohttp.FormData()
    form.add_field("image", encoded(skimage.data.coffee()), filename="coffee.jpg", content_type="image/jpeg")
    form.add_field("title", "Morning Coffee")
    form.add_field("artist", "A. Painter")
    form.add_field("year", "1901")
    status, created, headers = await call(http, server, "POST", "/api/v1/artworks", headers=auth, data=form)
    assert status == 201, created
    artwork_id = created["id"]
    assert created["title"] == "Morning Coffee" and created["enabled"] and headers["Location"].endswith(artwork_id)

    status, edited, _ = await call(
        http, server, "PATCH", f"/api/v1/artworks/{artwork_id}", headers=auth,
        json={"title": "Evening Coffee", "boxes": {"close-up": [0.2, 0.2, 0.8, 1.0]}, "enabled": False},
    )
    assert status == 200, edited
    assert edited["title"] == "Evening Coffee" and edited["boxes"]["close-up"] == [0.2, 0.2, 0.8, 1.0] and not edited["enabled"]
    for bad, detail in (
        ({"boxes": {"close-up": [0.8, 0.2, 0.2, 1.0]}}, "positive width"),
        ({"colour": "blue"}, "unknown field 'colour'"),
        ({"enabled": "yes"}, "wrong type"),
        ({}, "at least one"),
    ):
        status, body, headers = await call(http, server, "PATCH", f"/api/v1/artworks/{artwork_id}", headers=auth, json=bad)
        assert_problem(status, body, headers, 422, detail)
    status, body, headers = await call(http, server, "PATCH", "/api/v1/artworks/no-such-art", headers=auth, json={"title": "x"})
    assert_problem(status, body, headers, 404, "no artwork")

    status, ordered, _ = await call(http, server, "PUT", "/api/v1/artworks/order", headers=auth, json={"ids": [artwork_id]})
    assert status == 200 and ordered["items"][0]["id"] == artwork_id
    status, body, headers = await call(http, server, "PUT", "/api/v1/artworks/order", headers=auth, json={"ids": ["no-such-art"]})
    assert_problem(status, body, headers, 422, "no artwork")

    status, body, headers = await call(http, server, "DELETE", "/api/v1/artworks/demo-golden-meadow", headers=auth)
    assert_problem(status, body, headers, 409, "disable it instead")
    assert (await call(http, server, "DELETE", f"/api/v1/artworks/{artwork_id}", headers=auth))[0] == 204
    status, body, headers = await call(http, server, "GET", f"/api/v1/artworks/{artwork_id}", headers=auth)
    assert_problem(status, body, headers, 404, "no artwork")

    not_an_image = aiohttp.FormData()
    not_an_image.add_field("image", b"GIF89a nonsense", filename="x.gif", content_type="image/gif")
    not_an_image.add_field("title", "Broken")
    status, body, headers = await call(http, server, "POST", "/api/v1/artworks", headers=auth, data=not_an_image)
    assert status in (400, 415) and headers["Content-Type"].startswith(PROBLEM), body


async def test_kiosks_are_listed_with_their_live_statistics(server, http):
    token = await new_token(server, "kiosks:read", name="monitoring")
    await registered_kiosk(
        server.app[STORAGE_KEY].sessions, "garden", name="Garden", location="Terrace", seen=datetime.now(timezone.utc)
    )
    status, body, _ = await call(http, server, "GET", "/api/v1/kiosks", headers=bearer(token))
    assert status == 200
    garden = next(kiosk for kiosk in body["items"] if kiosk["id"] == "garden")
    assert garden["name"] == "Garden" and garden["location"] == "Terrace" and garden["last_seen"]
    assert garden["stats"]["connected"] is False and garden["stats"]["captures"] == 0
    status, stats, _ = await call(http, server, "GET", "/api/v1/kiosks/garden/stats", headers=bearer(token))
    assert status == 200 and stats == garden["stats"]
    status, body, headers = await call(http, server, "GET", "/api/v1/kiosks/nowhere/stats", headers=bearer(token))
    assert_problem(status, body, headers, 404, "no kiosk")


async def _rows(server, model) -> list:
    async with server.app[STORAGE_KEY].sessions() as session:
        return list(await session.scalars(select(model).order_by(model.id)))
