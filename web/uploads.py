"""The one way an uploaded photo becomes a stored composition: the gallery's form (/compose),
/api/compose and the REST API's compositions all come through compose_upload.

The upload is a multipart form with the photo as the ``photo`` file and the artwork's id as
``artwork``. The byte limit (``max_upload_bytes``) is checked here, the pixel limit
(``max_image_pixels``) by the decoder in the worker before anything large is allocated.

Every upload path (these three, the booth's capture, the staff's artwork upload and try-it, and
the REST API's artworks) reads its form with read_form and its file with read_file: aiohttp's
form parser keeps at most 1 MiB of each file in memory and spools the rest to a temporary file,
and read_file reads it back once, off the event loop, for the compose workers. How many bodies
may be in flight at once is web/limits.py's budget.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from typing import IO

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDictProxy

from kiosk.catalogue import look_harmonization
from kiosk.errors import ArtBoothError, ExitCode, exit_code_for
from kiosk.looks import Harmonization
from kiosk.storage import SavedDownload
from kiosk.workers import ComposeOutcome, PoolBusyError
from pipeline.types import ReferenceMode
from web.keys import CATALOGUE_KEY, POOL_KEY, STORAGE_KEY

# Which HTTP status each kind of refused upload gets; anything else is a 400.
_STATUS_FOR_CODE = {
    ExitCode.EMPTY_FILE: 400,
    ExitCode.NOT_AN_IMAGE: 415,
    ExitCode.TRUNCATED_IMAGE: 400,
    ExitCode.IMAGE_TOO_LARGE: 413,
    ExitCode.NO_PERSON: 422,
    ExitCode.ARTWORK_NOT_FOUND: 404,
    ExitCode.MODEL_MISSING: 503,
    ExitCode.DATABASE_UNAVAILABLE: 503,
    ExitCode.STORAGE_FAILED: 503,
    ExitCode.PHOTO_STORE_UNAVAILABLE: 503,
}
# Seconds a client should wait when every compose worker is busy.
BUSY_RETRY_AFTER_S = 5


def upload_limit(request: web.Request) -> int:
    """The largest photo accepted, in bytes (the setting in effect, dashboard changes included)."""
    return request.app[STORAGE_KEY].settings.max_upload_bytes


def too_large_message(limit: int) -> str:
    return f"the upload is over the limit of {limit:,} bytes"


class UploadRefusedError(ArtBoothError):
    """A posted form that cannot be read: too large, or malformed (``exit_code`` says which)."""

    def __init__(self, message: str, exit_code: ExitCode) -> None:
        super().__init__(message)
        self.exit_code = exit_code


async def read_form(request: web.Request) -> MultiDictProxy:
    """The posted form (parsed once; later calls, and request.post(), get the same), or
    UploadRefusedError: over the byte limit, over the field limit, or malformed."""
    try:
        return await request.post()
    except web.HTTPRequestEntityTooLarge:
        # aiohttp refuses too many fields with the same exception as too many bytes; only the
        # byte limit is ever passed by the bytes read so far.
        if request.content.total_bytes <= request.client_max_size:
            raise UploadRefusedError(
                f"the form has more than {request.client_max_fields:,} fields", ExitCode.USAGE
            ) from None
        raise UploadRefusedError(too_large_message(upload_limit(request)), ExitCode.IMAGE_TOO_LARGE) from None
    except (HttpProcessingError, ValueError) as exc:
        # A broken multipart body (bad part headers, a wrong boundary) is the client's error.
        reason = exc.message if isinstance(exc, HttpProcessingError) else str(exc)
        raise UploadRefusedError(f"the form could not be read: {reason}", ExitCode.USAGE) from None


async def read_file(field: web.FileField) -> bytes:
    """An uploaded file's bytes, read once from where the form parser spooled them, off the event loop."""
    return await asyncio.to_thread(_read_whole, field.file)


def _read_whole(file: IO[bytes]) -> bytes:
    # Asked for its size, a file reads straight into one block; read() would gather pieces and join them.
    size = file.seek(0, os.SEEK_END)
    file.seek(0)
    return file.read(size)


async def compose_upload(
    request: web.Request,
    *,
    kiosk_id: str | None = None,
    harmonization: Harmonization | None = None,
    reference: ReferenceMode | None = None,
    look: str | None = None,
    stylize_strength: float | None = None,
) -> tuple[ComposeOutcome, SavedDownload | None]:
    """Compose the form's photo into its artwork and store the result (named after ``kiosk_id``,
    a registered kiosk, when given), harmonized as ``harmonization`` says (by default as the
    settings in effect) against ``reference`` (by default the artwork's own), in ``look`` (by
    default the artwork's, or the setting fallback_look where the artwork leaves it to the visitor;
    kiosk.looks.resolve_look) at ``stylize_strength`` when painted (by default the artwork's, else
    the setting). A refusal is the outcome's error (status_of says its HTTP status; a bad look is a
    400); when every worker is busy, 503 with Retry-After is raised."""
    try:
        form = await read_form(request)
    except UploadRefusedError as exc:
        return refused(exc.exit_code, str(exc)), None
    photo = form.get("photo")
    artwork_id = form.get("artwork")
    if not isinstance(photo, web.FileField):
        return refused(ExitCode.USAGE, "attach the photo as the 'photo' file field"), None
    if not isinstance(artwork_id, str) or not artwork_id:
        return refused(ExitCode.USAGE, "choose an artwork (the 'artwork' field)"), None
    photo_bytes = await read_file(photo)
    limit = upload_limit(request)
    if len(photo_bytes) > limit:
        return refused(ExitCode.IMAGE_TOO_LARGE, too_large_message(limit)), None
    app = request.app
    try:
        record = await app[CATALOGUE_KEY].offered(artwork_id)
        harmonization = look_harmonization(
            record, harmonization or app[POOL_KEY].harmonization, app[STORAGE_KEY].settings, chosen=look
        )
        if stylize_strength is not None and harmonization.look == "painted":
            harmonization = dataclasses.replace(harmonization, stylize_strength=stylize_strength)
        source = (await app[CATALOGUE_KEY].source_of(record)).matched_against(reference)
        outcome, saved = await app[POOL_KEY].compose_photo(
            photo_bytes, source, kiosk_id=kiosk_id, harmonization=harmonization
        )
    except PoolBusyError as exc:
        raise web.HTTPServiceUnavailable(text=str(exc), headers={"Retry-After": str(BUSY_RETRY_AFTER_S)}) from None
    except ArtBoothError as exc:
        return refused(exit_code_for(exc), str(exc)), None
    return outcome, saved


def refused(code: ExitCode, message: str) -> ComposeOutcome:
    return ComposeOutcome(None, None, code, message)


def status_of(outcome: ComposeOutcome) -> int:
    return status_for(outcome.error_code)


def status_for(code: ExitCode) -> int:
    """The HTTP status of an input refused with ``code`` (an uploaded photo's or artwork image's)."""
    return _STATUS_FOR_CODE.get(code, 400)
