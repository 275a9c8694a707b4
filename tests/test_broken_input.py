"""Broken input never costs a 500: damaged image files (fuzzed into the decoder, then a fixed corpus
through every upload route of a real server on loopback), malformed forms, out-of-range query
values and too-small artworks each get a 4xx that says what is wrong; the CLI exits with its
documented code and no traceback.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
import skimage.data
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from PIL import Image

from api_helpers import ADMIN, CHEAP_HASHES, bearer, browser, new_token, running_with_staff, sign_in
from booth_helpers import paired_booth
from imagefiles import encoded
from kiosk.errors import ExitCode, exit_code_for
from kiosk.settings import Settings
from pipeline.codec import decode_image, read_size
from pipeline.errors import PipelineError
from servers import loopback_settings
from web.kiosk import FRIENDLY_RETRY
from web.keys import CATALOGUE_KEY, STORAGE_KEY
from web.uploads import status_for

# A limit that keeps every decode quick (a mutated header that declares more is refused unread),
# and lets the demo artworks (1920x1080) through; the server takes the same.
MAX_PIXELS = 3_000_000
# The seeds' size: big enough for an artwork, so that artwork uploads see the same damage.
SEED_SIZE = (256, 224)
ARTWORK = "demo-golden-meadow"
BOOTH = "broken-input-booth"
ARTBOOTH = str(Path(sys.executable).with_name("artbooth"))
_ALERT = re.compile(r'role="alert">(.*?)</p>', re.S)


# --- the files ----------------------------------------------------------------------------------------


def _jpeg_with_damaged_exif(picture: Image.Image) -> bytes:
    """A JPEG whose EXIF says "rotate" and holds a width tag of the wrong type (text), which
    Pillow cannot write back when it applies the rotation."""
    entries = [(0x0100, 2, 4, b"Cam\0"), (0x0112, 3, 1, b"\x00\x06\x00\x00")]
    ifd = struct.pack(">H", len(entries)) + b"".join(struct.pack(">HHI", *entry[:3]) + entry[3] for entry in entries)
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + ifd + b"\0\0\0\0"
    return encoded(picture, "JPEG", exif=b"Exif\x00\x00" + tiff)


def seed_files() -> dict[str, bytes]:
    """A small picture in every format Pillow writes that a phone, scanner or editor might send."""
    picture = Image.fromarray(skimage.data.astronaut()).resize(SEED_SIZE)
    exif = picture.getexif()
    exif[0x0112] = 6  # rotated
    return {
        "png": encoded(picture, "PNG"),
        "png-palette": encoded(picture.convert("P"), "PNG"),
        "jpeg": encoded(picture, "JPEG"),
        "jpeg-exif": encoded(picture, "JPEG", exif=exif.tobytes()),
        "jpeg-progressive": encoded(picture, "JPEG", progressive=True),
        "bmp": encoded(picture, "BMP"),
        "webp": encoded(picture, "WEBP"),
        "tiff": encoded(picture, "TIFF"),
        "tiff-lzw": encoded(picture, "TIFF", compression="tiff_lzw"),
        "ppm": encoded(picture, "PPM"),
        "ico": encoded(picture, "ICO", sizes=[picture.size]),
        "gif": encoded(picture, "GIF"),
    }


SEEDS = seed_files()


def broken_corpus() -> list[tuple[str, bytes]]:
    """A fixed list of damaged files made from the seeds the way uploads get damaged: cut short, bytes
    of the header overwritten, one format's header on another's body; plus the classics."""
    corpus = [
        ("empty", b""),
        ("text", b"name,age\nada,36\n" * 20),
        ("jpeg-marker-then-6-bytes", b"\xff\xd8\xff\xe0\x00\x10JFIF"),
        ("jpeg-marker-then-6-zeros", b"\xff\xd8\xff\xe0" + bytes(6)),
        ("jpeg-damaged-exif", _jpeg_with_damaged_exif(Image.fromarray(skimage.data.astronaut()).resize(SEED_SIZE))),
    ]
    for name, data in SEEDS.items():
        corpus.append((f"{name}-cut-in-half", data[: len(data) // 2]))
        corpus.append((f"{name}-header-only", data[:24]))
        overwritten = bytearray(data)
        overwritten[8:24] = b"\xff" * 16
        corpus.append((f"{name}-header-overwritten", bytes(overwritten)))
    corpus.append(("png-header-on-bmp-body", SEEDS["png"][:33] + SEEDS["bmp"][54:]))
    corpus.append(("ico-header-on-png-body", SEEDS["ico"][:22] + SEEDS["png"][40:]))
    corpus.append(("webp-header-on-jpeg-body", SEEDS["webp"][:30] + SEEDS["jpeg"][20:]))
    return corpus


def refused(data: bytes) -> PipelineError | None:
    """The decoder's refusal of ``data``, None when it decodes."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Pillow's notes on the damaged EXIF it skips
            decode_image(data, max_pixels=MAX_PIXELS)
    except PipelineError as exc:
        return exc
    return None


# Only what the decoder refuses: each route must refuse it too, with the decoder's reason.
BROKEN = [(name, data, error) for name, data in broken_corpus() if (error := refused(data)) is not None]


def test_the_corpus_holds_every_kind_of_refusal():
    assert len(BROKEN) >= 30
    codes = {exit_code_for(error) for _, _, error in BROKEN}
    assert {ExitCode.EMPTY_FILE, ExitCode.NOT_AN_IMAGE, ExitCode.TRUNCATED_IMAGE} <= codes
    messages = {str(error) for _, _, error in BROKEN}
    assert any("header cannot be read" in m for m in messages) and any("EXIF" in m for m in messages)


# --- the decoder, fuzzed -------------------------------------------------------------------------------


@st.composite
def damaged_files(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(sorted(SEEDS.values()))))
    for _ in range(draw(st.integers(1, 3))):
        damage = draw(st.sampled_from(["cut", "overwrite", "insert", "splice"]))
        if not data:
            break
        # Headers are where parsers trip; most damage lands in the first 64 bytes.
        at = draw(st.integers(0, min(len(data) - 1, 63)) | st.integers(0, len(data) - 1))
        if damage == "cut":
            del data[at:]
        elif damage == "overwrite":
            patch = draw(st.binary(min_size=1, max_size=8))
            data[at : at + len(patch)] = patch
        elif damage == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            other = draw(st.sampled_from(sorted(SEEDS.values())))
            data = data[:at] + other[draw(st.integers(0, len(other) - 1)) :]
    return bytes(data)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's notes on the damaged EXIF it skips
@hypothesis_settings(max_examples=1500, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged_files() | st.binary(max_size=64))
def test_any_bytes_either_decode_or_are_refused_with_our_own_error(data):
    try:
        pixels = decode_image(data, max_pixels=MAX_PIXELS)
    except PipelineError as exc:
        assert exit_code_for(exc) in (
            ExitCode.EMPTY_FILE, ExitCode.NOT_AN_IMAGE, ExitCode.TRUNCATED_IMAGE, ExitCode.IMAGE_TOO_LARGE
        )
        return
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3 and pixels.size > 0


def test_every_seed_decodes_upright():
    for name, data in SEEDS.items():
        pixels = decode_image(data, max_pixels=MAX_PIXELS)
        width, height = SEED_SIZE
        assert pixels.shape == ((width, height, 3) if name == "jpeg-exif" else (height, width, 3)), name


def test_a_damaged_exif_block_is_refused_as_corrupt_with_its_reason():
    error = refused(dict((name, data) for name, data, _ in BROKEN)["jpeg-damaged-exif"])
    assert exit_code_for(error) is ExitCode.TRUNCATED_IMAGE and "EXIF data" in str(error)


# --- the command line ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, code, message",
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", ExitCode.TRUNCATED_IMAGE, "truncated or corrupt; its header cannot be read"),
        (b"\xff\xd8\xff\xe0" + bytes(6), ExitCode.NOT_AN_IMAGE, "not an image"),
    ],
    ids=["jfif-header", "jpeg-marker"],
)
def test_compose_exits_with_the_documented_code_and_no_traceback(settings, tmp_path, data, code, message):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(data)
    env = os.environ | {"ARTBOOTH_DATA_DIR": str(settings.data_dir), "ARTBOOTH_MODELS_DIR": str(settings.models_dir)}
    done = subprocess.run(
        [ARTBOOTH, "compose", str(photo), "--artwork", ARTWORK, "-o", str(tmp_path / "out.jpg")],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == code, done.stderr
    assert done.stderr.strip().splitlines() == [f"artbooth: error: {refused(data)}"]
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out.jpg").exists()


def test_artworks_list_marks_an_artwork_whose_image_cannot_be_read(settings):
    folder = settings.data_dir / "artworks"
    folder.mkdir(parents=True)
    (folder / "damaged.png").write_bytes(SEEDS["png"][:20])
    boxes = {"close-up": [0.3, 0.3, 0.7, 1.0], "half-body": [0.25, 0.35, 0.75, 1.0], "full-body": [0.4, 0.3, 0.6, 0.95]}
    (folder / "damaged.json").write_text(json.dumps({"title": "Damaged", "artist": "A. Painter", "boxes": boxes}))
    env = os.environ | {"ARTBOOTH_DATA_DIR": str(settings.data_dir), "ARTBOOTH_MODELS_DIR": str(settings.models_dir)}
    done = subprocess.run([ARTBOOTH, "artworks", "list"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("damaged "))
    assert "Damaged - A. Painter" in line and line.endswith("[image unreadable]")


# --- the server -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server_settings(tmp_path_factory, models_dir):
    return loopback_settings(
        tmp_path_factory.mktemp("broken"), models_dir, **CHEAP_HASHES, ARTBOOTH_MAX_IMAGE_PIXELS=str(MAX_PIXELS)
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(server_settings):
    async with running_with_staff(server_settings) as test_server:
        yield test_server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def admin(server):
    """An administrator's browser, signed in, and its CSRF token."""
    async with browser() as client:
        yield client, await sign_in(client, server, ADMIN)


@pytest_asyncio.fixture(loop_scope="module")
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


def _photo_form(photo: bytes, **fields: str) -> aiohttp.FormData:
    form = aiohttp.FormData(default_to_multipart=True)
    for name, value in fields.items():
        form.add_field(name, value)
    form.add_field("photo", photo, filename="photo.jpg", content_type="image/jpeg")
    return form


def _artwork_form(image: bytes, csrf: str | None = None, title: str = "Broken") -> aiohttp.FormData:
    form = aiohttp.FormData({"title": title, **({"csrf_token": csrf} if csrf else {})}, default_to_multipart=True)
    form.add_field("image", image, filename="art.png", content_type="image/png")
    return form


async def _answer(response: aiohttp.ClientResponse) -> str:
    """What the answer says is wrong: a JSON error or problem detail, or a page's alert."""
    if response.content_type in ("application/json", "application/problem+json"):
        body = await response.json(content_type=None)
        return str(body.get("error") or body.get("detail"))
    alerts = _ALERT.findall(await response.text())
    return html.unescape(" ".join(alerts))


async def _try_it_form(server, csrf: str, photo: bytes) -> aiohttp.FormData:
    spec = (await server.app[CATALOGUE_KEY].offered(ARTWORK)).spec
    fields = {"csrf_token": csrf, "title": spec.title, "artist": spec.artist, "year": spec.year, "enabled": "1"}
    for framing, box in spec.boxes.items():
        fields |= {f"{framing.value}-{c}": str(v) for c, v in zip(("x0", "y0", "x1", "y1"), box.to_list())}
    return _photo_form(photo, **fields)


def _artwork_refusal(data: bytes, error: PipelineError, smallest_side: int) -> tuple[int, str]:
    """What an artwork upload answers for a broken file: its size is judged from the header
    first (web/artwork_uploads.py), so a damaged file that declares a tiny picture is too small."""
    try:
        width, height = read_size(data, max_pixels=MAX_PIXELS)
    except PipelineError:
        pass
    else:
        if min(width, height) < smallest_side:
            return 400, "too small for a booth's screen"
    return status_for(exit_code_for(error)), str(error)


@pytest.mark.asyncio(loop_scope="module")
async def test_every_upload_route_refuses_every_broken_file_with_its_own_reason(server, admin, http):
    """The corpus through the gallery's form, /api/compose, the REST API's compositions and
    artworks, the staff artwork upload and its Try-it, and the booth's capture: never a 5xx,
    always the decoder's reason (the booth, speaking to a visitor, says that the picture did not
    come through, not the generic "try again")."""
    staff, csrf = admin
    token = await new_token(server)
    booth = await paired_booth(server, BOOTH)
    smallest_side = server.app[STORAGE_KEY].settings.min_artwork_side_px

    def compose_form(data: bytes) -> aiohttp.FormData:
        return _photo_form(data, artwork=ARTWORK)

    async def try_it_form(data: bytes) -> aiohttp.FormData:
        return await _try_it_form(server, csrf, data)

    routes = [
        ("/compose", http, compose_form, {}),
        ("/api/compose", http, compose_form, {}),
        ("/api/v1/compositions", http, compose_form, bearer(token)),
        ("/api/v1/artworks", http, _artwork_form, bearer(token)),
        ("/staff/artworks", staff, lambda data: _artwork_form(data, csrf), {}),
        (f"/staff/artworks/{ARTWORK}/try", staff, try_it_form, {}),
        (f"/api/kiosks/{BOOTH}/capture", booth, compose_form, {}),
    ]
    failures = []
    try:
        for name, data, error in BROKEN:
            for path, client, form_of, headers in routes:
                if path.endswith("/try") and not data:
                    continue  # Try-it without a photo of one's own composes the sample portrait
                expected_status, reason = status_for(exit_code_for(error)), str(error)
                if "artworks" in path and not path.endswith("/try"):
                    expected_status, reason = _artwork_refusal(data, error, smallest_side)
                    if path.startswith("/api/v1") and expected_status == 400 and "too small" in reason:
                        expected_status = 422  # the API's status for an artwork it cannot take as given
                form = form_of(data)
                if not isinstance(form, aiohttp.FormData):
                    form = await form
                async with client.post(server.make_url(path), data=form, headers=headers) as response:
                    said = await _answer(response)
                    if "/capture" in path:
                        code = (await response.json(content_type=None)).get("code")
                        ok = code == exit_code_for(error).name.lower() and said and said != FRIENDLY_RETRY
                    else:
                        ok = reason.lower() in said.lower()
                    if response.status != expected_status or not ok:
                        failures.append(f"{path} {name}: {response.status} {said!r} (expected {expected_status} {reason!r})")
    finally:
        await booth.close()
    assert not failures, "\n".join(failures)


# --- malformed forms ----------------------------------------------------------------------------------

# A multipart body whose first line is not its boundary: no part of it can be read.
MALFORMED = b"this is not multipart at all\r\n"
MALFORMED_TYPE = "multipart/form-data; boundary=b0undary"


@pytest.mark.asyncio(loop_scope="module")
async def test_a_malformed_staff_form_is_a_400_not_a_csrf_failure(server, admin, caplog):
    staff, _ = admin
    caplog.set_level(logging.INFO)

    def csrf_failures() -> list[str]:
        return [record.getMessage() for record in caplog.records if "CSRF" in record.getMessage()]

    for path in ("/staff/artworks", f"/staff/artworks/{ARTWORK}/try", "/staff/settings"):
        async with staff.post(server.make_url(path), data=MALFORMED, headers={"Content-Type": MALFORMED_TYPE}) as response:
            assert response.status == 400, path
            assert "The form could not be read" in await response.text()
    assert csrf_failures() == []
    # A readable form without the token still is one, and is logged as one (so the check above can fail).
    async with staff.post(server.make_url("/staff/settings"), data={"download_link_hours": "5"}) as response:
        assert response.status == 403
    assert len(csrf_failures()) == 1


@pytest.mark.asyncio(loop_scope="module")
async def test_malformed_forms_are_400_everywhere(server, admin, http):
    token = await new_token(server)
    staff, csrf = admin
    booth = await paired_booth(server, BOOTH)
    headers = {"Content-Type": MALFORMED_TYPE}
    try:
        for client, path, extra in (
            (http, "/compose", {}),
            (http, "/api/compose", {}),
            (http, "/api/v1/compositions", bearer(token)),
            (http, "/api/v1/artworks", bearer(token)),
            (staff, "/api/v1/artworks", {"X-CSRF-Token": csrf}),
            (http, "/staff/login", {}),
            (http, "/setup", {}),
            (booth, f"/api/kiosks/{BOOTH}/capture", {}),
        ):
            async with client.post(server.make_url(path), data=MALFORMED, headers=headers | extra) as response:
                assert response.status == 400, path
                if "/capture" not in path:  # the booth words it for a visitor
                    assert "the form could not be read" in (await response.text()).lower(), path
    finally:
        await booth.close()


# --- query values ---------------------------------------------------------------------------------------


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    "query, field",
    [
        ("until=9999-12-31", "To"),
        ("since=0001-01-01", "From"),
        ("since=last+tuesday", "From"),
        ("page=99999999999999999999", "page"),
        ("page=0", "page"),
        ("page=%C2%B2", "page"),
    ],
)
async def test_out_of_range_photo_filters_are_400_naming_the_field_and_list_nothing(server, admin, query, field):
    staff, _ = admin
    async with staff.get(server.make_url(f"/staff/photos?{query}")) as response:
        page = await response.text()
    assert response.status == 400
    assert html.unescape(_ALERT.search(page).group(1)).startswith(f"{field} must be")
    # Not the unfiltered list passing for a filtered one.
    assert "No photos are listed until the error above is corrected." in page and 'id="photo-count"' not in page


@pytest.mark.asyncio(loop_scope="module")
async def test_an_out_of_range_audit_page_is_400_naming_the_field(server, admin):
    staff, _ = admin
    async with staff.get(server.make_url("/staff/audit?page=99999999999999999999")) as response:
        assert response.status == 400
        assert "page must be a whole number from 1 to 1,000,000" in html.unescape(await response.text())
    async with staff.get(server.make_url("/staff/audit?page=2")) as response:
        assert response.status == 200


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    "query, field",
    [
        ("limit=0", "limit"),
        ("limit=99999999999999999999", "limit"),
        ("offset=-1", "offset"),
        ("offset=99999999999999999999", "offset"),
        ("since=yesterday", "since"),
        ("until=9999-12-31T23:00:00-05:00", "until"),
        ("since=0001-01-01T00:00:00%2B05:00", "since"),
    ],
)
async def test_out_of_range_api_list_parameters_are_refused_naming_the_parameter(server, http, query, field):
    token = await new_token(server, "photos:read")
    async with http.get(server.make_url(f"/api/v1/photos?{query}"), headers=bearer(token)) as response:
        body = await response.json(content_type=None)
    assert response.status == 422, body
    assert body["code"] == "invalid_parameter" and body["errors"][0]["parameter"] == field
    assert body["detail"].startswith(field)


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("field", ["download_link_hours", "photo_retention_days"])
async def test_a_setting_too_large_for_a_date_is_refused_naming_it(server, admin, field):
    staff, csrf = admin
    form = {"csrf_token": csrf, field: "99999999999999999999"}
    async with staff.post(server.make_url("/staff/settings"), data=form) as response:
        assert response.status == 400
        said = await _answer(response)
    assert said.startswith(f"Nothing was saved: {field} must be at most")
    assert getattr(server.app[STORAGE_KEY].settings, field) == getattr(Settings(), field)


# --- artworks too small ---------------------------------------------------------------------------------


def _plain_png(width: int, height: int) -> bytes:
    return encoded(Image.new("RGB", (width, height), (150, 120, 90)), "PNG")


@pytest.mark.asyncio(loop_scope="module")
async def test_an_artwork_under_the_minimum_size_is_refused_saying_so(server, admin, http):
    staff, csrf = admin
    token = await new_token(server)
    smallest = server.app[STORAGE_KEY].settings.min_artwork_side_px
    for width, height in ((1, 1), (smallest - 1, 1000)):
        async with staff.post(server.make_url("/staff/artworks"), data=_artwork_form(_plain_png(width, height), csrf)) as response:
            assert response.status == 400
            said = await _answer(response)
        assert f"{width}x{height} pixels" in said and f"at least {smallest} pixels on each side" in said
        async with http.post(
            server.make_url("/api/v1/artworks"), data=_artwork_form(_plain_png(width, height)), headers=bearer(token)
        ) as response:
            body = await response.json(content_type=None)
        assert response.status == 422 and body["code"] == "invalid_artwork"
        assert f"at least {smallest} pixels on each side" in body["detail"]
    async with http.post(
        server.make_url("/api/v1/artworks"), data=_artwork_form(_plain_png(smallest, smallest), title="Just big enough"),
        headers=bearer(token),
    ) as response:
        assert response.status == 201, await response.text()

