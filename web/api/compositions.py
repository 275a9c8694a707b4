"""Compositions: a photo uploaded with an artwork's id is composed into the artwork and stored,
exactly as the gallery's form and the booths do (web/uploads.py), and answered with the stored
photo, its image, the visitor's download link and the options it was composed with.

The options are the harmonization choices staff have when they compose a photo again in the
dashboard (on/off, targets, strength, reference region, look, painted strength), sent as form
fields; each one left out takes the service's setting in effect (the look and painted strength:
the artwork's, kiosk/looks.py). They reach the compose pool the same way: a per-job Harmonization
and the artwork's reference mode. A look that is not one of the looks is a 400.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from db import service
from kiosk.looks import Harmonization, LookError, resolve_look
from kiosk.settings import HARMONIZE_STRENGTH_RANGE, HARMONIZE_TARGETS, LOOKS
from pipeline.types import ReferenceMode
from web.api.openapi import Operation, Param, form_arguments, json_answer, multipart_body, ref
from web.api.photos import photo_json
from web.api.problems import Problem
from web.keys import POOL_KEY, STORAGE_KEY
from web.kiosk import KIOSK_ID
from web.staff import ApiCaller
from web.uploads import UploadRefusedError, compose_upload, read_form, status_for, status_of

HARMONIZE = Param(
    "harmonize", "form", bool,
    "Optional: true or false, whether the subject is harmonized with the painting; by default the service's setting.",
)
TARGETS = Param(
    "harmonize_targets", "form", str,
    "Optional: where the subject's target look comes from: `learned` (a model predicts it) or `fitted` "
    "(matched to the reference region); by default the service's setting.",
    choices=HARMONIZE_TARGETS,
)
STRENGTH = Param(
    "harmonize_strength", "form", float,
    "Optional: how far the subject moves towards its target look, 0 (not at all) to 1 (all the way); "
    "by default the service's setting.",
    minimum=HARMONIZE_STRENGTH_RANGE[0],
    maximum=HARMONIZE_STRENGTH_RANGE[1],
)
REFERENCE = Param(
    "reference", "form", str,
    "Optional: the part of the painting the subject is matched to: `artwork` (all of it), `ring` (the paint "
    "around the subject) or `region` (the artwork's reference region, when it has one); by default the "
    "artwork's own choice (its reference_mode).",
    choices=tuple(mode.value for mode in ReferenceMode),
)
LOOK = Param(
    "look", "form", str,
    "Optional: `realistic` (the visitor's colour and light adapted to the painting) or `painted` (then "
    "repainted with the painting's palette and brushwork); by default the artwork's look, or the service's "
    "fallback_look where the artwork lets the visitor choose. Another value is a 400.",
    choices=LOOKS,
)
STYLIZE_STRENGTH = Param(
    "stylize_strength", "form", float,
    "Optional: the painted look's strength, 0 (the photo as it is) to 1 (the painting's style); by default "
    "the artwork's, or the service's stylize_strength. Ignored by the realistic look.",
    minimum=0.0,
    maximum=1.0,
)
OPTIONS = (HARMONIZE, TARGETS, STRENGTH, REFERENCE, STYLIZE_STRENGTH)
# Which field of Harmonization each option sets.
_HARMONIZATION_FIELDS = {HARMONIZE.name: "enabled", TARGETS.name: "targets", STRENGTH.name: "strength"}


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
    options = form_arguments(OPTIONS, form)
    # Checked by the look rules (kiosk/looks.py, a 400), not as a parameter (a 422).
    look = form.get(LOOK.name) or None
    if look is not None and not isinstance(look, str):
        raise Problem(400, "look must be a plain form field: realistic or painted", code="bad_look")
    try:
        resolve_look(None, look, request.app[STORAGE_KEY].settings)
    except LookError as exc:
        raise Problem(400, str(exc), code="bad_look") from None
    kiosk_id = form.get("kiosk") or None
    if kiosk_id is not None:
        await _check_kiosk(request, kiosk_id)
    harmonization = _harmonization(request, options)
    reference = ReferenceMode(options[REFERENCE.name]) if options[REFERENCE.name] else None
    if reference is ReferenceMode.REGION:
        await _check_region(request, form.get("artwork"))
    outcome, saved = await compose_upload(
        request,
        kiosk_id=kiosk_id,
        harmonization=harmonization,
        reference=reference,
        look=look,
        stylize_strength=options[STYLIZE_STRENGTH.name],
    )
    if not outcome.ok:
        raise Problem(status_of(outcome), outcome.error, code=outcome.error_code.name.lower())
    sessions = request.app[STORAGE_KEY].sessions
    photo = await service.get_photo(sessions, saved.photo_id)
    if photo is None:  # deleted in the instant since it was stored
        raise Problem(410, "the photo was deleted right after it was stored", code="gone")
    if reference is None:
        # Photos keep their artwork's row: the database refuses to delete it while they exist.
        reference = (await service.get_artwork(sessions, photo.artwork_id)).spec.reference_mode
    body = photo_json(request, photo)
    report = outcome.report
    stylized = report.get("stylize")
    return web.json_response(
        {
            "photo": body,
            "result_url": body["result_url"],
            "download_url": saved.url,
            "download_expires_at": saved.expires_at.isoformat(),
            "faces": report.get("faces", []),
            "look": report["look"],
            "candidates": report["candidates"],
            "score": report.get("score"),
            "options": {
                HARMONIZE.name: harmonization.enabled,
                TARGETS.name: harmonization.targets,
                STRENGTH.name: harmonization.strength,
                REFERENCE.name: reference.value,
                LOOK.name: report["look"],
                STYLIZE_STRENGTH.name: stylized["strength"] if stylized else None,
            },
        },
        status=201,
        headers={"Location": f"/api/v1/photos/{photo.id}"},
    )


def _harmonization(request: web.Request, options: dict[str, Any]) -> Harmonization:
    """The options sent, over the harmonization the compose pool uses now (the settings in effect)."""
    chosen = {field: options[name] for name, field in _HARMONIZATION_FIELDS.items() if options[name] is not None}
    return dataclasses.replace(request.app[POOL_KEY].harmonization, **chosen)


async def _check_kiosk(request: web.Request, kiosk_id: object) -> None:
    if not isinstance(kiosk_id, str) or not KIOSK_ID.fullmatch(kiosk_id):
        raise Problem(422, "kiosk must be a kiosk id: 1-64 lowercase letters, digits and dashes", code="invalid_kiosk")
    if await service.get_kiosk(request.app[STORAGE_KEY].sessions, kiosk_id) is None:
        raise Problem(422, f"there is no kiosk {kiosk_id!r}; leave 'kiosk' out or name a registered kiosk", code="invalid_kiosk")


async def _check_region(request: web.Request, artwork_id: object) -> None:
    """Refuse the reference ``region`` for an artwork without one (an unknown artwork is compose_upload's 404)."""
    if not isinstance(artwork_id, str) or not artwork_id:
        return
    record = await service.get_artwork(request.app[STORAGE_KEY].sessions, artwork_id)
    if record is not None and record.spec.reference_region is None:
        others = ", ".join(mode.value for mode in ReferenceMode if mode is not ReferenceMode.REGION)
        detail = f"artwork {artwork_id!r} has no reference region; reference must be one of {others} for it, or left out"
        raise Problem(422, detail, code="invalid_parameter", errors=[{"parameter": REFERENCE.name, "detail": detail}])


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
        "The visitor's photo, the chosen artwork and, optionally, how to harmonize the visitor with it.",
        fields=(*OPTIONS, LOOK),
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
