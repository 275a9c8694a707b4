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
from html import escape
from typing import Any

from aiohttp import web

from db.images import thumbnail_jpeg
from db.models import StaffRole
from db.service import ArtworkRecord
from kiosk.artworks import DEMO_KEY_PREFIX, FOLDER_KEY_PREFIX
from kiosk.catalogue import KEEP, TEXT_LIMITS, ArtworkEdit, look_harmonization
from kiosk.errors import ArtBoothError, ArtworkNotFoundError, ExitCode, InvalidEditError, exit_code_for
from kiosk.looks import offered_look
from kiosk.settings import LOOKS, Settings
from kiosk.workers import ComposeOutcome, PoolBusyError
from pipeline.codec import decode_image, encode_image
from pipeline.errors import PipelineError
from pipeline.types import Framing, ReferenceMode
from web.artwork_uploads import refuse_small_artwork
from web.keys import CATALOGUE_KEY, POOL_KEY, SETTINGS_KEY, STORAGE_KEY
from web.score_words import harmony_in_words
from web.staff import StaffIdentity, require_login, requires
from web.staff_pages import CSRF_FIELD, dashboard_page
from web.uploads import UploadRefusedError, read_file, read_form, status_for

SECTION = "/staff/artworks"
# The image the editor draws on, and the list's thumbnails: big enough to place a box to a few pixels.
EDITOR_LONG_SIDE = 1200
# "Try it" results kept for their <img> (the staff pages' CSP allows no data: URLs).
TRIES_KEPT = 8
# Editor images kept in memory (a few hundred kB each).
PREVIEWS_KEPT = 32
# The regions drawn in the editor: the three framings' boxes and the harmonization reference.
REFERENCE = "reference"
REGIONS = (
    (Framing.CLOSE_UP.value, "Close-up"),
    (Framing.HALF_BODY.value, "Half body"),
    (Framing.FULL_BODY.value, "Full body"),
    (REFERENCE, "Reference region"),
)
COORDINATES = ("x0", "y0", "x1", "y1")
# The source of artworks whose image is in the photo store; only those can be deleted.
DASHBOARD = "Dashboard"
REFERENCE_LABELS = {
    ReferenceMode.ARTWORK.value: "the complete artwork",
    ReferenceMode.RING.value: "a ring around the placement box",
    ReferenceMode.REGION.value: "the reference region drawn here",
}
# The looks an artwork offers (kiosk/looks.py), in staff's words; "" (no look of its own): the service's.
LOOK_LABELS = {
    "realistic": "Realistic: colour and light only",
    "painted": "Painted: in the painting's brushwork",
    "visitor": "Visitor chooses",
}
# A photo's look, in a caption.
LOOK_NAMES = {"realistic": "Realistic", "painted": "Painted"}


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


def _html(body: str, *, status: int = 200) -> web.Response:
    return web.Response(text=body, content_type="text/html", status=status)


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _csrf(identity: StaffIdentity) -> str:
    return f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(identity.csrf_token)}">'


def _page(identity: StaffIdentity, title: str, body: str, *, status: int = 200) -> web.Response:
    return _html(
        dashboard_page(
            title,
            body,
            username=identity.username,
            is_admin=identity.role is StaffRole.ADMIN,
            csrf_token=identity.csrf_token,
            section=SECTION,
        ),
        status=status,
    )


def _alert(error: str | None) -> str:
    return f'<p class="error" role="alert">{escape(error)}</p>' if error else ""


def _notice(text: str | None) -> str:
    return f'<p class="notice" role="status">{escape(text)}</p>' if text else ""


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + ("" if message.endswith((".", "!", "?")) else ".")


def _source_label(record: ArtworkRecord) -> str:
    if record.image_key.startswith(DEMO_KEY_PREFIX):
        return "Demo"
    if record.image_key.startswith(FOLDER_KEY_PREFIX):
        return "Artworks folder"
    # Uploaded here, or a folder or demo artwork edited here (its image was then copied into the store).
    return "Demo, edited here" if record.spec.demo else DASHBOARD


def _credit(record: ArtworkRecord) -> str:
    spec = record.spec
    return escape(spec.artist) + (f", {escape(spec.year)}" if spec.year else "")


def _list_body(identity: StaffIdentity, records: list[ArtworkRecord], *, error: str | None, form: dict[str, str]) -> str:
    admin = identity.role is StaffRole.ADMIN
    rows = []
    for index, record in enumerate(records):
        spec = record.spec
        url = f"{SECTION}/{escape(spec.id)}"
        states = [_source_label(record)]
        if not record.enabled:
            states.append("Disabled")
        if not record.available:
            states.append("Files missing")
        actions = ""
        if admin:
            moves = "".join(
                f'<form method="post" action="{url}/move">{_csrf(identity)}'
                f'<input type="hidden" name="direction" value="{direction}">'
                f'<button type="submit" class="small"{" disabled" if not allowed else ""} '
                f'aria-label="Move {escape(spec.title)} {direction}">{symbol}</button></form>'
                for direction, symbol, allowed in (("up", "↑", index > 0), ("down", "↓", index < len(records) - 1))
            )
            toggle = (
                f'<form method="post" action="{url}/enabled">{_csrf(identity)}'
                f'<input type="hidden" name="enabled" value="{"0" if record.enabled else "1"}">'
                f'<button type="submit" class="small">{"Disable" if record.enabled else "Enable"}</button></form>'
            )
            removal = (
                ""
                if _source_label(record) != DASHBOARD
                else f'<a class="button small danger" href="{url}/delete">Delete</a>'
            )
            actions = f'<td class="actions">{moves}{toggle}{removal}</td>'
        rows.append(
            f"""<tr data-artwork="{escape(spec.id)}"{' class="disabled"' if not record.enabled else ""}>
  <td><img class="thumb" src="{url}/image.jpg" alt="" loading="lazy"></td>
  <td><a href="{url}"><strong>{escape(spec.title)}</strong></a><br><span class="credit">{_credit(record)}</span></td>
  <td>{escape(", ".join(states))}</td>
  {actions}
</tr>"""
        )
    upload_form = ""
    if admin:
        upload_form = f"""<form class="panel" method="post" action="{SECTION}" enctype="multipart/form-data">
  <h2>Add an artwork</h2>
  {_csrf(identity)}
  <label>Image <input type="file" name="image" accept="image/*" required></label>
  <label>Title <input name="title" value="{escape(form.get('title', ''))}" maxlength="{TEXT_LIMITS['title']}" required></label>
  <label>Artist <input name="artist" value="{escape(form.get('artist', ''))}" maxlength="{TEXT_LIMITS['artist']}"></label>
  <label>Year <input name="year" value="{escape(form.get('year', ''))}" maxlength="{TEXT_LIMITS['year']}"></label>
  <p class="note">JPEG, PNG, WebP or TIFF. After the upload, draw where visitors stand in it.</p>
  <button type="submit">Upload</button>
</form>"""
    note = "" if admin else '<p class="note">Only administrators can change artworks.</p>'
    return f"""<h1>Artworks</h1>
{_alert(error)}{note}
<p class="note">Kiosks offer the enabled artworks in this order (or the ones chosen for them on the Kiosks page).</p>
<table class="artworks">
<thead><tr><th></th><th>Artwork</th><th>Source</th>{'<th>Change</th>' if admin else ''}</tr></thead>
<tbody>
{''.join(rows)}
</tbody>
</table>
{upload_form}"""


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
        "boxes": {name: [str(form.get(f"{name}-{c}", "")) for c in COORDINATES] for name, _ in REGIONS},
        "look": str(form.get("look", "")),
        "stylize_strength": str(form.get("stylize_strength", "")),
    }


@dataclass(frozen=True)
class TryResult:
    image_url: str
    framing: str
    people: int
    score: float | None
    sample: str
    look: str


def _look_fields(values: dict[str, Any], settings: Settings, off: str) -> str:
    """The artwork's look and painted strength; empty: the service's settings, named in the choice."""
    default = f"Service default ({LOOK_LABELS[settings.look].split(':')[0]})"
    options = "".join(
        f'<option value="{value}"{" selected" if values["look"] == value else ""}>{escape(label)}</option>'
        for value, label in {"": default, **LOOK_LABELS}.items()
    )
    return f"""<label>Look <select name="look"{off}>{options}</select></label>
    <label>Painted strength, 0 to 1 <input type="number" name="stylize_strength" min="0" max="1" step="0.05"
      value="{escape(values['stylize_strength'])}" placeholder="service default, {_number(settings.stylize_strength)}"
      title="0: the photo as taken, 1: fully in the painting's brushwork; empty: the service's default"{off}></label>"""


def _tried_figure(tried: TryResult, title: str) -> str:
    if tried.score is None:
        score = "no harmony score (harmonization is switched off)"
    else:
        score = (
            f'<strong class="score-words">{escape(harmony_in_words(tried.score))}</strong> '
            f'<span class="note">(harmony score <span class="score">{tried.score:.2f}</span>)</span>'
        )
    people = f"{tried.people} {'person' if tried.people == 1 else 'people'}"
    look = LOOK_NAMES[tried.look]
    return f"""<figure class="tried" data-look="{tried.look}">
  <img src="{escape(tried.image_url)}" alt="{escape(tried.sample)}, placed in {escape(title)}, {look.lower()}">
  <figcaption><strong class="look">{look}</strong>: {escape(tried.sample)}, {people}, framed as
  <strong class="framing">{escape(tried.framing)}</strong>. {score}.</figcaption>
</figure>"""


def _editor_body(
    identity: StaffIdentity,
    record: ArtworkRecord,
    values: dict[str, Any],
    *,
    settings: Settings,
    error: str | None = None,
    notice: str | None = None,
    tried: Sequence[TryResult] = (),
) -> str:
    admin = identity.role is StaffRole.ADMIN
    spec = record.spec
    url = f"{SECTION}/{escape(spec.id)}"
    off = "" if admin else " disabled"
    choices = "".join(
        f'<label class="region-choice region-{name}"><input type="radio" name="draw" value="{name}"'
        f'{" checked" if name == Framing.CLOSE_UP.value else ""}{off}> {escape(label)}</label>'
        for name, label in REGIONS
    )
    boxes = "".join(
        f'<div class="box region-{name}" data-region="{name}" data-label="{escape(label)}" hidden></div>'
        for name, label in REGIONS
    )
    coordinate_rows = "".join(
        f'<tr data-region="{name}"><th scope="row">{escape(label)}</th>'
        + "".join(
            f'<td><input type="number" name="{name}-{c}" aria-label="{escape(label)} {c}" min="0" max="1" step="0.0001" '
            f'value="{escape(values["boxes"].get(name, [""] * 4)[i])}"'
            f'{" required" if name != REFERENCE else ""}{off}></td>'
            for i, c in enumerate(COORDINATES)
        )
        + "</tr>"
        for name, label in REGIONS
    )
    modes = "".join(
        f'<option value="{mode}"{" selected" if values["reference_mode"] == mode else ""}>{escape(label)}</option>'
        for mode, label in REFERENCE_LABELS.items()
    )
    buttons = ""
    if admin:
        buttons = f"""<div class="buttons">
  <button type="submit">Save</button>
</div>
<fieldset class="try">
  <legend>Try it</legend>
  <p class="note">Places a sample portrait (or the photo you choose) in the artwork with the boxes and look as
  they are on this page, saved or not (both looks when the visitor chooses). Nothing is stored.</p>
  <label>Photo of a person (optional) <input type="file" name="photo" accept="image/*"></label>
  <button type="submit" formaction="{url}/try" class="secondary">Try it</button>
</fieldset>"""
    result = ""
    if tried:
        figures = "".join(_tried_figure(one, spec.title) for one in tried)
        result = f'<div class="tries" id="tried">{figures}</div>'
    missing = '<p class="error">This artwork\'s files are missing from the artworks folder; kiosks do not offer it.</p>'
    state = "" if record.available else missing
    return f"""<p><a href="{SECTION}">← All artworks</a></p>
<h1>{escape(spec.title)}</h1>
{_alert(error)}{_notice(notice)}{state}
{result}
<form class="artwork-editor" method="post" action="{url}" enctype="multipart/form-data">
  {_csrf(identity)}
  <div class="fields">
    <label>Title <input name="title" value="{escape(values['title'])}" maxlength="{TEXT_LIMITS['title']}" required{off}></label>
    <label>Artist <input name="artist" value="{escape(values['artist'])}" maxlength="{TEXT_LIMITS['artist']}"{off}></label>
    <label>Year <input name="year" value="{escape(values['year'])}" maxlength="{TEXT_LIMITS['year']}"{off}></label>
    <label>Colours match <select name="reference_mode"{off}>{modes}</select></label>
    {_look_fields(values, settings, off)}
    <label class="check"><input type="checkbox" name="enabled" value="1"{" checked" if values["enabled"] else ""}{off}> Offered at the kiosks</label>
  </div>
  <fieldset class="regions">
    <legend>Where visitors stand</legend>
    <p class="note">Each framing has its box: the visitor is scaled into it and stands on its bottom edge
    (a bust is cut by it). {'Choose a box, then drag across the painting to draw it.' if admin else ''}
    The reference region is the part of the painting whose colours and light the visitor takes on.</p>
    <div class="region-choices">{choices}</div>
    <div class="drawing" data-readonly="{'false' if admin else 'true'}">
      <img src="{url}/image.jpg" alt="{escape(spec.title)}" draggable="false">
      {boxes}
    </div>
    <table class="coordinates">
      <thead><tr><th></th><th>left (x0)</th><th>top (y0)</th><th>right (x1)</th><th>bottom (y1)</th></tr></thead>
      <tbody>{coordinate_rows}</tbody>
    </table>
    <p class="note">Fractions of the image's width and height, 0 to 1, from its top-left corner.
    Leave the reference region empty to have none.</p>
  </fieldset>
  {buttons}
</form>
<script src="/static/artwork_editor.js"></script>"""


def _editor(
    request: web.Request,
    identity: StaffIdentity,
    record: ArtworkRecord,
    values: dict[str, Any],
    *,
    status: int = 200,
    **kwargs: Any,
) -> web.Response:
    # The settings in effect (dashboard values included): the "Service default" names the current one.
    settings = request.app[STORAGE_KEY].settings
    body = _editor_body(identity, record, values, settings=settings, **kwargs)
    return _page(identity, record.spec.title, body, status=status)


# --- reading the forms --------------------------------------------------------------------------------


def _coordinates(form: Any, name: str, label: str) -> list[float] | None:
    typed = [str(form.get(f"{name}-{c}", "")).strip() for c in COORDINATES]
    if name == REFERENCE and not any(typed):
        return None
    try:
        return [float(value) for value in typed]
    except ValueError:
        raise InvalidEditError(f"the {label.lower()} needs four numbers from 0 to 1 (left, top, right, bottom)") from None


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
        boxes={name: _coordinates(form, name, label) for name, label in REGIONS if name != REFERENCE},
        reference_region=_coordinates(form, REFERENCE, "Reference region"),
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
    return _page(identity, "Artworks", _list_body(identity, records, error=error, form=form or {}), status=status)


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
            sample = "Your photo"
        else:
            if pages.sample_portrait is None:
                pages.sample_portrait = await asyncio.to_thread(_sample_portrait)
            photo_bytes, sample = pages.sample_portrait, "The sample portrait"
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
    url = f"{SECTION}/{escape(record.spec.id)}"
    body = f"""<h1>Delete {escape(record.spec.title)}?</h1>
<figure><img class="thumb" src="{url}/image.jpg" alt="The artwork to delete"></figure>
<p>The artwork and its image are deleted at once and no kiosk offers it any more. This cannot be undone;
to take it off the kiosks for a while, disable it instead.</p>
<form class="confirm" method="post" action="{url}/delete">
  {_csrf(identity)}
  <button type="submit" class="danger">Delete the artwork</button>
  <a href="{SECTION}">Cancel</a>
</form>"""
    return _page(identity, f"Delete {record.spec.title}", body)


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
            # Finding (or painting) the image and shrinking it: one trip off the event loop.
            image = await asyncio.to_thread(lambda: _editor_jpeg(catalogue.image_path(record).read_bytes(), max_pixels))
        except (ArtBoothError, PipelineError, OSError):
            raise web.HTTPNotFound(text="This artwork's image is missing or damaged.") from None
        pages.previews[key] = image
        while len(pages.previews) > PREVIEWS_KEPT:
            pages.previews.popitem(last=False)
    return web.Response(body=pages.previews[key], content_type="image/jpeg")


def _editor_jpeg(data: bytes, max_pixels: int) -> bytes:
    return thumbnail_jpeg(decode_image(data, max_pixels=max_pixels), long_side=EDITOR_LONG_SIDE, quality=88)
