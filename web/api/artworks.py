"""Artworks: list, read, add (an uploaded image), edit, reorder, delete; the catalogue
(kiosk/catalogue.py) does the work and checks the values, as for the dashboard's pages."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from db import service
from db.service import ArtworkRecord
from kiosk.catalogue import ArtworkEdit
from kiosk.errors import ArtBoothError, ArtworkInUseError, ArtworkNotFoundError, ExitCode, InvalidEditError
from web.api.openapi import NO_CONTENT, Operation, Param, json_answer, json_body, multipart_body, ref
from web.api.problems import Problem
from web.artwork_uploads import refuse_small_artwork
from web.keys import CATALOGUE_KEY, STORAGE_KEY
from web.artwork_json import spec_json
from web.staff import ApiCaller
from web.uploads import UploadRefusedError, read_file, read_form, status_for

ARTWORK = Param("artwork_id", "path", str, "The artwork's id.", max_length=128)
# The fields of ArtworkEdit a client may send, and the JSON types each must have.
_EDIT_FIELDS: dict[str, tuple[type, ...]] = {
    "title": (str,),
    "artist": (str,),
    "year": (str,),
    "boxes": (dict,),
    "reference_region": (list, type(None)),
    "reference_mode": (str,),
    "enabled": (bool,),
    "sort_order": (int,),
    "look": (str, type(None)),
    "stylize_strength": (int, float, type(None)),
}
MAX_SORT_ORDER = 1_000_000


def artwork_json(record: ArtworkRecord) -> dict[str, Any]:
    return {
        **spec_json(record.spec),
        "enabled": record.enabled,
        "available": record.available,
        "sort_order": record.sort_order,
        # None: the service's setting (look, stylize_strength) applies.
        "look": record.look,
        "stylize_strength": record.stylize_strength,
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
    }


def _refused(exc: ArtBoothError, *, unknown_status: int = 404) -> Problem:
    """The problem for what the catalogue refused."""
    if isinstance(exc, ArtworkNotFoundError):
        return Problem(unknown_status, str(exc), code="artwork_not_found")
    if isinstance(exc, ArtworkInUseError):
        return Problem(409, str(exc), code="artwork_in_use")
    if isinstance(exc, InvalidEditError):
        return Problem(422, str(exc), code="invalid_artwork")
    if exc.exit_code is ExitCode.FAILURE:
        raise exc  # not the client's doing: answered 500, with the traceback in the log
    # An image refused (empty, not an image, too large) by its kind; storage failures 503.
    return Problem(status_for(exc.exit_code), str(exc), code=exc.exit_code.name.lower())


async def _json_object(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise Problem(415, f"send a JSON object (Content-Type: application/json), not {request.content_type or 'no body'}")
    try:
        body = json.loads(await request.text())
    except (ValueError, UnicodeDecodeError):
        raise Problem(400, "the body is not valid JSON", code="invalid_json") from None
    if not isinstance(body, dict):
        raise Problem(422, "the body must be a JSON object", code="invalid_json")
    return body


async def list_artworks(request: web.Request, caller: ApiCaller) -> web.StreamResponse:
    records = await request.app[CATALOGUE_KEY].records(include_hidden=True)
    return web.json_response({"items": [artwork_json(record) for record in records]})


async def get_artwork(request: web.Request, caller: ApiCaller) -> web.StreamResponse:
    artwork_id = GET.arguments(request)["artwork_id"]
    record = await service.get_artwork(request.app[STORAGE_KEY].sessions, artwork_id)
    if record is None:
        raise Problem(404, f"there is no artwork {artwork_id!r}", code="artwork_not_found")
    return web.json_response(artwork_json(record))


async def create_artwork(request: web.Request, caller: ApiCaller) -> web.StreamResponse:
    if request.content_type != "multipart/form-data":
        raise Problem(415, f"send the artwork as multipart/form-data (its 'image' file and 'title'), not {request.content_type or 'no body'}")
    try:
        form = await read_form(request)
    except UploadRefusedError as exc:
        raise Problem(status_for(exc.exit_code), str(exc)) from None
    image = form.get("image")
    if not isinstance(image, web.FileField):
        raise Problem(400, "attach the artwork's image as the 'image' file field")
    texts = {name: form.get(name, "") for name in ("title", "artist", "year")}
    if not all(isinstance(value, str) for value in texts.values()):
        raise Problem(422, "title, artist and year are text fields, not files", code="invalid_artwork")
    try:
        image_bytes = await read_file(image)
        await refuse_small_artwork(image_bytes, request.app[STORAGE_KEY].settings)
        record = await request.app[CATALOGUE_KEY].create(image_bytes, **texts, actor=caller.actor)
    except ArtBoothError as exc:
        raise _refused(exc) from None
    return web.json_response(artwork_json(record), status=201, headers={"Location": f"/api/v1/artworks/{record.spec.id}"})


async def update_artwork(request: web.Request, caller: ApiCaller) -> web.StreamResponse:
    artwork_id = UPDATE.arguments(request)["artwork_id"]
    body = await _json_object(request)
    unknown = sorted(set(body) - _EDIT_FIELDS.keys())
    if unknown:
        raise Problem(422, f"unknown field {', '.join(map(repr, unknown))}; the fields are {', '.join(_EDIT_FIELDS)}", code="invalid_artwork")
    if not body:
        raise Problem(422, f"send at least one of the fields {', '.join(_EDIT_FIELDS)}", code="invalid_artwork")
    for name, value in body.items():
        types = _EDIT_FIELDS[name]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise Problem(422, f"{name} has the wrong type ({type(value).__name__})", code="invalid_artwork")
    if "sort_order" in body and not 0 <= body["sort_order"] <= MAX_SORT_ORDER:
        raise Problem(422, f"sort_order must lie between 0 and {MAX_SORT_ORDER}", code="invalid_artwork")
    try:
        record = await request.app[CATALOGUE_KEY].update(artwork_id, ArtworkEdit(**body), actor=caller.actor)
    except ArtBoothError as exc:
        raise _refused(exc) from None
    return web.json_response(artwork_json(record))


async def reorder_artworks(request: web.Request, caller: ApiCaller) -> web.StreamResponse:
    body = await _json_object(request)
    ids = body.get("ids")
    if set(body) != {"ids"} or not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise Problem(422, 'send {"ids": [artwork ids, first shown first]}', code="invalid_order")
    try:
        await request.app[CATALOGUE_KEY].reorder(ids, actor=caller.actor)
    except ArtBoothError as exc:
        raise _refused(exc, unknown_status=422) from None
    records = await request.app[CATALOGUE_KEY].records(include_hidden=True)
    return web.json_response({"items": [artwork_json(record) for record in records]})


async def delete_artwork(request: web.Request, caller: ApiCaller) -> web.StreamResponse:
    artwork_id = DELETE.arguments(request)["artwork_id"]
    try:
        await request.app[CATALOGUE_KEY].delete(artwork_id, actor=caller.actor)
    except ArtBoothError as exc:
        raise _refused(exc) from None
    return web.Response(status=204)


_EDIT_PROBLEMS = (400, 404, 409, 415, 422)

LIST = Operation(
    "GET", "/api/v1/artworks", "listArtworks", "List every artwork, hidden ones included, in the booths' order",
    "artworks:read", list_artworks, "artworks", responses={200: json_answer("The artworks.", ref("ArtworkList"))},
)
CREATE = Operation(
    "POST", "/api/v1/artworks", "createArtwork", "Add an artwork from an uploaded image", "artworks:write",
    create_artwork, "artworks",
    request_body=multipart_body(
        {
            "image": {"type": "string", "format": "binary", "description": "The artwork's image."},
            "title": {"type": "string", "maxLength": 300},
            "artist": {"type": "string", "maxLength": 300},
            "year": {"type": "string", "maxLength": 64},
        },
        ["image", "title"],
        "The image and its credit; the placement boxes start at defaults.",
    ),
    responses={201: json_answer("Added.", ref("Artwork"))},
    problems=(400, 413, 415, 422),
)
REORDER = Operation(
    "PUT", "/api/v1/artworks/order", "reorderArtworks", "Put artworks first, in this order", "artworks:write",
    reorder_artworks, "artworks", request_body=json_body(ref("ArtworkOrder"), "The ids to show first."),
    responses={200: json_answer("Every artwork in the new order.", ref("ArtworkList"))},
    problems=(400, 415, 422),
)
GET = Operation(
    "GET", "/api/v1/artworks/{artwork_id}", "getArtwork", "An artwork", "artworks:read", get_artwork, "artworks",
    params=(ARTWORK,), responses={200: json_answer("The artwork.", ref("Artwork"))}, problems=(404,),
)
UPDATE = Operation(
    "PATCH", "/api/v1/artworks/{artwork_id}", "updateArtwork", "Change an artwork's credit, boxes, reference, look or state",
    "artworks:write", update_artwork, "artworks", params=(ARTWORK,),
    request_body=json_body(ref("ArtworkEdit"), "The fields to change."),
    responses={200: json_answer("The changed artwork.", ref("Artwork"))},
    problems=_EDIT_PROBLEMS,
)
DELETE = Operation(
    "DELETE", "/api/v1/artworks/{artwork_id}", "deleteArtwork", "Delete an uploaded artwork no photo was made with",
    "artworks:write", delete_artwork, "artworks", params=(ARTWORK,), responses={204: NO_CONTENT},
    problems=(404, 409),
)

# The fixed path before the parameterised ones, so /artworks/order is never taken for an id.
OPERATIONS = (LIST, CREATE, REORDER, GET, UPDATE, DELETE)
