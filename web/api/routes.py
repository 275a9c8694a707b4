"""The API's routes: every resource module's operations, each behind its scope, and the OpenAPI
document that describes exactly those operations."""

from __future__ import annotations

import functools
import json

from aiohttp import web

from web.api import artworks, compositions, kiosks, openapi, photos
from web.staff import API_DOCUMENT, require_scope

OPERATIONS: tuple[openapi.Operation, ...] = (
    *compositions.OPERATIONS,
    *artworks.OPERATIONS,
    *photos.OPERATIONS,
    *kiosks.OPERATIONS,
)


def add_routes(router: web.UrlDispatcher) -> None:
    for operation in OPERATIONS:
        router.add_route(operation.method, operation.path, _scoped(operation), name=operation.operation_id)
    router.add_get(API_DOCUMENT, openapi_document)


def _scoped(operation: openapi.Operation):
    async def handle(request: web.Request) -> web.StreamResponse:
        caller = require_scope(request, operation.scope)
        return await operation.handler(request, caller)

    handle.__name__ = handle.__qualname__ = operation.handler.__name__
    return handle


@functools.cache
def _document_text() -> str:
    return json.dumps(openapi.document(OPERATIONS), indent=1)


async def openapi_document(request: web.Request) -> web.StreamResponse:
    """Public, like any API's description: it names no data, only what may be asked."""
    return web.Response(text=_document_text(), content_type="application/json")
