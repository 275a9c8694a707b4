"""The staff dashboard's Artworks section: the list (enable, disable, reorder, delete, upload) and
one artwork's editor (its credit, and its framing boxes and reference region drawn on the image
with web/static/artwork_editor.js, or typed as numbers: the page is a plain form either way).

"Try it" composes a sample portrait (or a photo staff attach) into the artwork as the form
stands, unsaved, in the compose workers, in the look the form chose (both looks where the visitor
chooses), and shows each result with its framing and harmony score in words; nothing is stored. Admins edit; operators see the same pages without the controls.
Every change is a POST answered with a redirect; a refused one shows the page again with why.
"""

from __future__ import annotations

import asyncio
import collections
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from db.images import thumbnail_jpeg
from db.models import StaffRole
from db.service import ArtworkRecord
from db.store import PhotoStoreUnavailableError
from kiosk.artworks import DEMO_KEY_PREFIX, FOLDER_KEY_PREFIX
from kiosk.catalogue import KEEP, TEXT_LIMITS, ArtworkEdit, demos_hidden, look_harmonization
from kiosk.errors import ArtBoothError, ArtworkNotFoundError, ExitCode, InvalidEditError, exit_code_for
from kiosk.looks import offered_look
from kiosk.settings import LOOKS
from kiosk.workers import ComposeOutcome, PoolBusyError
from pipeline.codec import decode_image, encode_image
from pipeline.errors import PipelineError
from pipeline.types import Framing
from web.artwork_uploads import refuse_small_artwork
from web.keys import CATALOGUE_KEY, POOL_KEY, SETTINGS_KEY, STORAGE_KEY
from web.score_words import harmony_in_words
from web.staff import StaffIdentity, require_login, requires
from web import staff_pages
from web.staff_pages import Viewer
from web.staff_text import FRAMING_LABELS, LOOK_LABELS, REFERENCE_LABELS, REGION_LABELS
from web.uploads import UploadRefusedError, read_file, read_form, status_for

SECTION = "/staff/artworks"
# The image the editor draws on, and the list's thumbnails: big enough to place a box to a few pixels.
EDITOR_LONG_SIDE = 1200
# "Try it" results kept for their <img> (the staff pages' CSP allows no data: URLs).
TRIES_KEPT = 8
# Editor images kept in memory (a few hundred kB each).
PREVIEWS_KEPT = 32
# The regions drawn in the editor: the three framings' boxes and the harmonization reference
# (their labels: web/staff_text.py REGION_LABELS).
REFERENCE = "reference"
REGIONS = (Framing.CLOSE_UP.value, Framing.HALF_BODY.value, Framing.FULL_BODY.value, REFERENCE)
COORDINATES = ("x0", "y0", "x1", "y1")
# The source of artworks whose image is in the photo store; only those can be deleted.
DASHBOARD = "dashboard"


@dataclass
class ArtworkPages:
    """What the pages keep between requests: editor images by (id, updated_at), recent tries, the sample."""

    previews: collections.OrderedDict[tuple[str, object], bytes] = field(default_factory=collections.OrderedDict)
    tries: collections.OrderedDict[str, bytes] = field(default_factory=collections.OrderedDict)
    sample_portrait: bytes | None = None


PAGES_KEY = web.AppKey("artwork_pages", ArtworkPages)


def setup(app: web.Application) -> None:
    app[PAGES_KEY] = ArtworkPages()
    router = app.router
    router.add_get(SECTION, list_page)
    router.add_post(SECTION, upload)
    router.add_get("/staff/artwork-tries/{token}.jpg", tried_image)
    router.add_get(SECTION + "/{artwork_id}", edit_page)
    router.add_post(SECTION + "/{artwork_id}", save)
    router.add_post(SECTION + "/{artwork_id}/try", try_it)
    router.add_post(SECTION + "/{artwork_id}/enabled", set_enabled)
    router.add_post(SECTION + "/{artwork_id}/move", move)
    router.add_get(SECTION + "/{artwork_id}/delete", confirm_delete)
    router.add_post(SECTION + "/{artwork_id}/delete", delete)
    router.add_get(SECTION + "/{artwork_id}/image.jpg", editor_image)


# --- rendering -------------------------------------------------------------------------------------


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + ("" if message.endswith((".", "!", "?")) else ".")


def _source(record: ArtworkRecord) -> str:
    """Where the artwork comes from: a key of web.staff_text.ARTWORK_SOURCES."""
    if record.image_key.startswith(DEMO_KEY_PREFIX):
        return "demo"
    if record.image_key.startswith(FOLDER_KEY_PREFIX):
        return "folder"
    # Uploaded here, or a folder or demo artwork edited here (its image was then copied into the store).
    return "demo-edited" if record.spec.demo else DASHBOARD


def _number(value: object) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


def _record_values(record: ArtworkRecord) -> dict[str, Any]:
    spec = record.spec
    boxes = {framing.value: box.to_list() for framing, box in spec.boxes.items()}
    if spec.reference_region is not None:
        boxes[REFERENCE] = spec.reference_region.to_list()
    return {
        "title": spec.title,
        "artist": spec.artist,
        "year": spec.year,
        "reference_mode": spec.reference_mode.value,
        "enabled": record.enabled,
        "boxes": {name: [_number(v) for v in box] for name, box in boxes.items()},
        "look": record.look or "",
        "stylize_strength": "" if record.stylize_strength is None else _number(record.stylize_strength),
    }


def _form_values(form: Any) -> dict[str, Any]:
    """What the editor's form posted, as typed, to show it again."""
    return {
        "title": str(form.get("title", "")),
        "artist": str(form.get("artist", "")),
        "year": str(form.get("year", "")),
        "reference_mode": str(form.get("reference_mode", "")),
        "enabled": "enabled" in form,
        "boxes": {name: [str(form.get(f"{name}-{c}", "")) for c in COORDINATES] for name in REGIONS},
        "look": str(form.get("look", "")),
        "stylize_strength": str(form.get("stylize_strength", "")),
    }


@dataclass(frozen=True)
class TryResult:
    image_url: str
    framing: str
    people: int
    score: float | None
    sample: str  # "sample": the sample portrait; "yours": the photo staff attached
    look: str


def _editor(
    request: web.Request,
    identity: StaffIdentity,
    record: ArtworkRecord,
    values: dict[str, Any],
    *,
    status: int = 200,
    error: str | None = None,
    notice: str | None = None,
    tried: Sequence[TryResult] = (),
) -> web.Response:
    # The settings in effect (dashboard values included): the "Service default" names the current one.
    settings = request.app[STORAGE_KEY].settings
    gettext = lambda message: staff_pages.gettext(request, message)  # noqa: E731
    return staff_pages.html(
        request,
        "staff/artwork.html",
        viewer=Viewer.of(identity),
        section=SECTION,
        status=status,
        record=record,
        values=values,
        settings=settings,
        default_look=LOOK_LABELS[settings.look],
        default_stylize_strength=_number(settings.stylize_strength),
        regions=REGIONS,
        reference=REFERENCE,
        coordinates=COORDINATES,
        reference_modes=list(REFERENCE_LABELS.items()),
        looks=list(LOOK_LABELS.items()),
        text_limits=TEXT_LIMITS,
        tried=[(one, harmony_in_words(one.score, gettext), FRAMING_LABELS.get(one.framing, one.framing)) for one in tried],
        error=error,
        notice=notice,
    )


# --- reading the forms --------------------------------------------------------------------------------


def _coordinates(form: Any, name: str) -> list[float] | None:
    typed = [str(form.get(f"{name}-{c}", "")).strip() for c in COORDINATES]
    if name == REFERENCE and not any(typed):
        return None
    try:
        return [float(value) for value in typed]
    except ValueError:
        label = REGION_LABELS[name].lower()
        raise InvalidEditError(f"the {label} needs four numbers from 0 to 1 (left, top, right, bottom)") from None


def _stylize_strength(form: Any) -> float | None | object:
    if "stylize_strength" not in form:
        return KEEP
    typed = str(form.get("stylize_strength", "")).strip()
    if not typed:
        return None
    try:
        return float(typed)
    except ValueError:
        raise InvalidEditError(
            f"the painted strength must be a number from 0 to 1 (or empty, for the service's default), not {typed!r}"
        ) from None


def _edit_from(form: Any) -> ArtworkEdit:
    return ArtworkEdit(
        title=str(form.get("title", "")),
        artist=str(form.get("artist", "")),
        year=str(form.get("year", "")),
        boxes={name: _coordinates(form, name) for name in REGIONS if name != REFERENCE},
        reference_region=_coordinates(form, REFERENCE),
        reference_mode=str(form.get("reference_mode", "")) or None,
        enabled="enabled" in form,
        look=(str(form.get("look", "")) or None) if "look" in form else KEEP,
        stylize_strength=_stylize_strength(form),
    )


async def _record(request: web.Request) -> ArtworkRecord:
    records = await request.app[CATALOGUE_KEY].records(include_hidden=True)
    record = next((r for r in records if r.spec.id == request.match_info["artwork_id"]), None)
    if record is None:
        raise web.HTTPNotFound(text="No such artwork.")
    return record


# --- handlers ------------------------------------------------------------------------------------------


async def _list(
    request: web.Request,
    identity: StaffIdentity,
    *,
    error: str | None = None,
    status: int = 200,
    form: dict[str, str] | None = None,
) -> web.Response:
    records = await request.app[CATALOGUE_KEY].records(include_hidden=True)
    return staff_pages.html(
        request,
        "staff/artworks.html",
        viewer=Viewer.of(identity),
        section=SECTION,
        status=status,
        records=[(record, _source(record)) for record in records],
        dashboard=DASHBOARD,
        demos_hidden=demos_hidden(records),
        text_limits=TEXT_LIMITS,
        error=error,
        form=form or {},
    )


async def list_page(request: web.Request) -> web.StreamResponse:
    return await _list(request, require_login(request))


@requires(StaffRole.ADMIN)
async def upload(request: web.Request) -> web.StreamResponse:
    identity = require_login(request)
    try:
        form = await read_form(request)
    except UploadRefusedError as exc:
        return await _list(request, identity, error=_sentence(str(exc)), status=status_for(exc.exit_code))
    texts = {name: str(form.get(name, "")) for name in ("title", "artist", "year")}
    image = form.get("image")
    if not isinstance(image, web.FileField):
        return await _list(request, identity, error="Choose the artwork's image file.", status=400, form=texts)
    try:
        image_bytes = await read_file(image)
        await refuse_small_artwork(image_bytes, request.app[STORAGE_KEY].settings)
        record = await request.app[CATALOGUE_KEY].create(image_bytes, **texts, actor=identity.username)
    except ArtBoothError as exc:
        status = status_for(exit_code_for(exc))
        return await _list(request, identity, error=_sentence(str(exc)), status=status, form=texts)
    return _redirect(f"{SECTION}/{record.spec.id}?added=1")


async def edit_page(request: web.Request) -> web.StreamResponse:
    identity = require_login(request)
    record = await _record(request)
    notice = None
    if "added" in request.query:
        notice = "Artwork added. Now draw its boxes: where a visitor stands for each framing."
    elif "saved" in request.query:
        notice = "Saved. The kiosks use the new version from their next artwork choice."
    return _editor(request, identity, record, _record_values(record), notice=notice)


@requires(StaffRole.ADMIN)
async def save(request: web.Request) -> web.StreamResponse:
    identity = require_login(request)
    record = await _record(request)
    form = await request.post()
    try:
        await request.app[CATALOGUE_KEY].update(record.spec.id, _edit_from(form), actor=identity.username)
    except ArtBoothError as exc:
        return _editor(request, identity, record, _form_values(form), error=_sentence(str(exc)) + " Nothing was saved.", status=400)
    return _redirect(f"{SECTION}/{record.spec.id}?saved=1")


@requires(StaffRole.ADMIN)
async def try_it(request: web.Request) -> web.StreamResponse:
    identity = require_login(request)
    record = await _record(request)
    try:
        form = await read_form(request)
    except UploadRefusedError as exc:
        return _editor(request, identity, record, _record_values(record), error=_sentence(str(exc)), status=status_for(exc.exit_code))
    values = _form_values(form)
    pages = request.app[PAGES_KEY]
    photo = form.get("photo")
    settings = request.app[STORAGE_KEY].settings
    pool = request.app[POOL_KEY]
    tried = []
    try:
        catalogue = request.app[CATALOGUE_KEY]
        draft = await catalogue.draft(record.spec.id, _edit_from(form))
        source = await catalogue.source_of(draft)
        if isinstance(photo, web.FileField) and (photo_bytes := await read_file(photo)):
            sample = "yours"
        else:
            if pages.sample_portrait is None:
                pages.sample_portrait = await asyncio.to_thread(_sample_portrait)
            photo_bytes, sample = pages.sample_portrait, "sample"
        # Where the visitor chooses, staff see both choices; one after the other, so Try it takes
        # one worker at a time from the booths.
        offers_choice = offered_look(draft.look, settings) == "visitor"
        for chosen in LOOKS if offers_choice else (None,):
            harmonization = look_harmonization(draft, pool.harmonization, settings, chosen=chosen)
            outcome: ComposeOutcome = await pool.compose(photo_bytes, source, harmonization=harmonization)
            if not outcome.ok:
                hint = " Try a photo with a person facing the camera." if outcome.error_code is ExitCode.NO_PERSON else ""
                error = _sentence(outcome.error) + hint
                return _editor(request, identity, record, values, error=error, status=status_for(outcome.error_code))
            tried.append(_kept_try(pages, outcome, sample, harmonization.look))
    except PoolBusyError:
        error = "The booths are busy composing; try again in a few seconds."
        return _editor(request, identity, record, values, error=error, status=503)
    except ArtBoothError as exc:
        return _editor(request, identity, record, values, error=_sentence(str(exc)), status=status_for(exit_code_for(exc)))
    return _editor(request, identity, record, values, tried=tried)


def _kept_try(pages: ArtworkPages, outcome: ComposeOutcome, sample: str, look: str) -> TryResult:
    """Keep a tried image for its <img> and describe it."""
    token = secrets.token_urlsafe(16)
    pages.tries[token] = outcome.encoded
    while len(pages.tries) > TRIES_KEPT:
        pages.tries.popitem(last=False)
    report = outcome.report
    return TryResult(
        image_url=f"/staff/artwork-tries/{token}.jpg",
        framing=str(report["framing"]),
        people=int(report["people"]),
        score=report.get("score"),
        sample=sample,
        look=look,
    )


def _sample_portrait() -> bytes:
    # scikit-image ships this NASA portrait (public domain); decoded here, so no photo is copied into the project.
    import skimage.data

    return encode_image(skimage.data.astronaut(), ".jpg")


async def tried_image(request: web.Request) -> web.StreamResponse:
    require_login(request)
    image = request.app[PAGES_KEY].tries.get(request.match_info["token"])
    if image is None:
        raise web.HTTPNotFound(text="This result is gone; try again.")
    return web.Response(body=image, content_type="image/jpeg")


@requires(StaffRole.ADMIN)
async def set_enabled(request: web.Request) -> web.StreamResponse:
    identity = require_login(request)
    record = await _record(request)
    form = await request.post()
    enabled = form.get("enabled") == "1"
    await request.app[CATALOGUE_KEY].update(record.spec.id, ArtworkEdit(enabled=enabled), actor=identity.username)
    return _redirect(SECTION)


@requires(StaffRole.ADMIN)
async def move(request: web.Request) -> web.StreamResponse:
    identity = require_login(request)
    record = await _record(request)
    direction = (await request.post()).get("direction")
    if direction not in ("up", "down"):
        return await _list(request, identity, error="Move an artwork up or down.", status=400)
    ids = [r.spec.id for r in await request.app[CATALOGUE_KEY].records(include_hidden=True)]
    index = ids.index(record.spec.id)
    other = index - 1 if direction == "up" else index + 1
    if 0 <= other < len(ids):
        ids[index], ids[other] = ids[other], ids[index]
        await request.app[CATALOGUE_KEY].reorder(ids, actor=identity.username)
    return _redirect(SECTION)


@requires(StaffRole.ADMIN)
async def confirm_delete(request: web.Request) -> web.StreamResponse:
    """A deletion is asked once more on its own page: the Delete button sits beside Disable in the list."""
    identity = require_login(request)
    record = await _record(request)
    return staff_pages.html(request, "staff/artwork_delete.html", viewer=Viewer.of(identity), section=SECTION, record=record)


@requires(StaffRole.ADMIN)
async def delete(request: web.Request) -> web.StreamResponse:
    identity = require_login(request)
    record = await _record(request)
    try:
        await request.app[CATALOGUE_KEY].delete(record.spec.id, actor=identity.username)
    except ArtworkNotFoundError:
        pass  # deleted meanwhile: what was asked for
    except ArtBoothError as exc:
        return await _list(request, identity, error=_sentence(str(exc)), status=409)
    return _redirect(SECTION)


async def editor_image(request: web.Request) -> web.StreamResponse:
    require_login(request)
    record = await _record(request)
    pages = request.app[PAGES_KEY]
    key = (record.spec.id, record.updated_at)
    if key not in pages.previews:
        catalogue = request.app[CATALOGUE_KEY]
        max_pixels = request.app[SETTINGS_KEY].max_image_pixels
        try:
            path = await catalogue.image_file(record)
            image = await asyncio.to_thread(lambda: _editor_jpeg(path.read_bytes(), max_pixels))
        except PhotoStoreUnavailableError:
            raise  # not missing: the store is away for now (503, web/availability.py)
        except (ArtBoothError, PipelineError, OSError):
            raise web.HTTPNotFound(text="This artwork's image is missing or damaged.") from None
        pages.previews[key] = image
        while len(pages.previews) > PREVIEWS_KEPT:
            pages.previews.popitem(last=False)
    return web.Response(body=pages.previews[key], content_type="image/jpeg")


def _editor_jpeg(data: bytes, max_pixels: int) -> bytes:
    return thumbnail_jpeg(decode_image(data, max_pixels=max_pixels), long_side=EDITOR_LONG_SIDE, quality=88)
