"""Compositions: a photo uploaded with an artwork's id is composed into the artwork and stored,
exactly as the gallery's form and the booths do (web/uploads.py), and answered with the stored
photo, its image and the visitor's download link.
"""

from __future__ import annotations

from aiohttp import web

from db import service
from web.api.openapi import Operation, json_answer, multipart_body, ref
from web.api.photos import photo_json
from web.api.problems import Problem
from web.keys import STORAGE_KEY
from web.kiosk import KIOSK_ID
from web.staff import ApiCaller
from web.uploads import UploadRefusedError, compose_upload, read_form, status_for, status_of


async def create_composition(request: web.Request, caller: ApiCaller) -> web.StreamResponse:
    if request.content_type != "multipart/form-data":
        raise Problem(
            415,
            f"send the photo as multipart/form-data (fields 'photo' and 'artwork'), not {request.content_type or 'no body'}",
        )
    try:
        form = await read_form(request)
    except UploadRefusedError as exc:
        raise Problem(status_for(exc.exit_code), str(exc)) from None
    kiosk_id = form.get("kiosk") or None
    if kiosk_id is not None:
        await _check_kiosk(request, kiosk_id)
    outcome, saved = await compose_upload(request, kiosk_id=kiosk_id)
    if not outcome.ok:
        raise Problem(status_of(outcome), outcome.error, code=outcome.error_code.name.lower())
    photo = await service.get_photo(request.app[STORAGE_KEY].sessions, saved.photo_id)
    if photo is None:  # deleted in the instant since it was stored
        raise Problem(410, "the photo was deleted right after it was stored", code="gone")
    body = photo_json(request, photo)
    return web.json_response(
        {
            "photo": body,
            "result_url": body["result_url"],
            "download_url": saved.url,
            "download_expires_at": saved.expires_at.isoformat(),
            "faces": outcome.report.get("faces", []),
        },
        status=201,
        headers={"Location": f"/api/v1/photos/{photo.id}"},
    )


async def _check_kiosk(request: web.Request, kiosk_id: object) -> None:
    if not isinstance(kiosk_id, str) or not KIOSK_ID.fullmatch(kiosk_id):
        raise Problem(422, "kiosk must be a kiosk id: 1-64 lowercase letters, digits and dashes", code="invalid_kiosk")
    if await service.get_kiosk(request.app[STORAGE_KEY].sessions, kiosk_id) is None:
        raise Problem(422, f"there is no kiosk {kiosk_id!r}; leave 'kiosk' out or name a registered kiosk", code="invalid_kiosk")


CREATE = Operation(
    "POST",
    "/api/v1/compositions",
    "createComposition",
    "Compose an uploaded photo into an artwork and store it",
    "compositions:write",
    create_composition,
    "compositions",
    request_body=multipart_body(
        {
            "photo": {"type": "string", "format": "binary",
                      "description": "JPEG, PNG, WebP, TIFF or another format Pillow reads; at most max_upload_bytes."},
            "artwork": {"type": "string", "description": "The id of an artwork on offer."},
            "kiosk": {"type": "string", "description": "Optional: the registered kiosk the photo is credited to."},
        },
        ["photo", "artwork"],
        "The visitor's photo and the chosen artwork.",
    ),
    responses={
        201: json_answer(
            "Composed and stored.",
            ref("Composition"),
            headers={"Location": {"schema": {"type": "string"}, "description": "The photo's API resource."}},
        )
    },
    problems=(400, 404, 410, 413, 415, 422, 503),
)

OPERATIONS = (CREATE,)
