"""Photos: list (filtered by kiosk, artwork and time, paged), read, their image files, delete.

A deleted photo's files and row go at once; its download links then answer 410 to visitors.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from db import service
from db.service import DeleteResult, PhotoInfo
from db.store import StoredFileMissingError
from web import availability
from web.api.openapi import NO_CONTENT, Operation, Param, json_answer, ref
from web.api.problems import Problem
from web.keys import STORAGE_KEY
from web.staff import ApiCaller

PHOTO_ID = Param("photo_id", "path", str, "The photo's id (32 hexadecimal digits).", pattern="[0-9a-f]{32}")
MAX_PAGE = 200


def photo_json(request: web.Request, photo: PhotoInfo) -> dict[str, Any]:
    base = f"{request.app[STORAGE_KEY].settings.resolved_public_url}/api/v1/photos/{photo.id}"
    return {
        "id": photo.id,
        "artwork": photo.artwork_id,
        "kiosk": photo.kiosk_id,
        "framing": photo.framing.value,
        "people": photo.people,
        "score": photo.score,
        "scores": photo.scores,
        "variant": photo.variant,
        "created_at": photo.created_at.isoformat(),
        "size_bytes": photo.size_bytes,
        "timings_ms": photo.timings,
        "result_url": f"{base}/result.jpg",
        "thumbnail_url": f"{base}/thumbnail.jpg",
    }


async def _photo(request: web.Request, photo_id: str) -> PhotoInfo:
    photo = await service.get_photo(request.app[STORAGE_KEY].sessions, photo_id)
    if photo is None:
        raise Problem(404, f"there is no photo {photo_id} (it may have been deleted)")
    return photo


async def list_photos(request: web.Request, caller: ApiCaller) -> web.StreamResponse:
    args = LIST.arguments(request)
    for name in ("since", "until"):
        args[name] = _in_utc(name, args[name])
    if args["since"] is not None and args["until"] is not None and args["since"] > args["until"]:
        raise Problem(422, "since must not be later than until", code="invalid_parameter")
    photos, total = await service.list_photos(
        request.app[STORAGE_KEY].sessions,
        kiosk_id=args["kiosk"],
        artwork_id=args["artwork"],
        since=args["since"],
        until=args["until"],
        limit=args["limit"],
        offset=args["offset"],
    )
    return web.json_response(
        {
            "items": [photo_json(request, photo) for photo in photos],
            "total": total,
            "limit": args["limit"],
            "offset": args["offset"],
        }
    )


def _in_utc(name: str, moment: datetime | None) -> datetime | None:
    """The time in UTC, as the database compares it; a 422 naming the parameter for one that has no UTC
    equivalent (9999-12-31T23:00:00-05:00 is after the last moment a datetime holds)."""
    if moment is None:
        return None
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:
        message = f"{name} must be a time between the years 1 and 9999 in UTC, not {moment.isoformat()}"
        raise Problem(
            422, message, code="invalid_parameter", errors=[{"parameter": name, "detail": message}]
        ) from None


async def get_photo(request: web.Request, caller: ApiCaller) -> web.StreamResponse:
    args = GET.arguments(request)
    return web.json_response(photo_json(request, await _photo(request, args["photo_id"])))


async def _file(request: web.Request, key: str) -> web.StreamResponse:
    store = request.app[STORAGE_KEY].store
    path = store.local_path(key)
    if path is not None and path.is_file():
        return web.FileResponse(path, headers={"Content-Type": "image/jpeg", "Cache-Control": "private, no-store"})
    try:
        body = await store.get(key)
    except StoredFileMissingError:
        raise Problem(404, "the photo's file is gone (it is being deleted)") from None
    return web.Response(body=body, content_type="image/jpeg", headers={"Cache-Control": "private, no-store"})


async def result_image(request: web.Request, caller: ApiCaller) -> web.StreamResponse:
    photo = await _photo(request, RESULT.arguments(request)["photo_id"])
    return await _file(request, photo.result_key)


async def thumbnail_image(request: web.Request, caller: ApiCaller) -> web.StreamResponse:
    photo = await _photo(request, THUMBNAIL.arguments(request)["photo_id"])
    return await _file(request, photo.thumbnail_key)


async def delete_photo(request: web.Request, caller: ApiCaller) -> web.StreamResponse:
    photo_id = DELETE.arguments(request)["photo_id"]
    storage = request.app[STORAGE_KEY]
    result = await service.delete_photo(
        storage.sessions, storage.store, photo_id, actor=caller.actor, now=datetime.now(timezone.utc)
    )
    if result is DeleteResult.GONE:
        raise Problem(404, f"there is no photo {photo_id} (it may have been deleted already)")
    if result is DeleteResult.PENDING:  # hidden already; the files go at the next retention run
        headers = availability.retry_after(request)
        raise Problem(503, availability.DELETE_PENDING, code=availability.DELETE_PENDING_CODE, headers=headers)
    return web.Response(status=204)


_JPEG = {"description": "The JPEG.", "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}}

LIST = Operation(
    "GET",
    "/api/v1/photos",
    "listPhotos",
    "List photos, newest first",
    "photos:read",
    list_photos,
    "photos",
    params=(
        Param("kiosk", "query", str, "Only photos taken at this kiosk.", max_length=64),
        Param("artwork", "query", str, "Only photos in this artwork.", max_length=128),
        Param("since", "query", datetime, "Only photos taken at or after this time (UTC unless a zone is given)."),
        Param("until", "query", datetime, "Only photos taken before this time."),
        Param("limit", "query", int, "Photos per page.", default=50, minimum=1, maximum=MAX_PAGE),
        Param("offset", "query", int, "Photos to skip.", default=0, minimum=0, maximum=1_000_000_000),
    ),
    responses={200: json_answer("A page of photos.", ref("PhotoPage"))},
    problems=(422,),
)
GET = Operation(
    "GET", "/api/v1/photos/{photo_id}", "getPhoto", "A photo's metadata", "photos:read", get_photo, "photos",
    params=(PHOTO_ID,),
    responses={200: json_answer("The photo.", ref("Photo"))},
    problems=(404,),
)
RESULT = Operation(
    "GET", "/api/v1/photos/{photo_id}/result.jpg", "getPhotoResult", "The composed photo", "photos:read",
    result_image, "photos", params=(PHOTO_ID,), responses={200: _JPEG}, problems=(404,),
)
THUMBNAIL = Operation(
    "GET", "/api/v1/photos/{photo_id}/thumbnail.jpg", "getPhotoThumbnail", "The photo's thumbnail", "photos:read",
    thumbnail_image, "photos", params=(PHOTO_ID,), responses={200: _JPEG}, problems=(404,),
)
DELETE = Operation(
    "DELETE", "/api/v1/photos/{photo_id}", "deletePhoto", "Delete a photo, its files and its download links",
    "photos:write", delete_photo, "photos", params=(PHOTO_ID,), responses={204: NO_CONTENT}, problems=(404, 503),
)

OPERATIONS = (LIST, GET, RESULT, THUMBNAIL, DELETE)
