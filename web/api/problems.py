"""Errors of the REST API as RFC 9457 problem details (``application/problem+json``).

Every error under /api/v1 leaves as a problem: those the API's handlers raise (Problem), the
HTTP exceptions of aiohttp and of the staff authentication (401, 403, 404, 405, 413, ...), and
any unexpected exception, which is logged with its traceback and answered 500 without details.
The ``middleware`` makes sure of it, so no HTML error page ever reaches an API client.

A problem carries ``type`` (always ``about:blank``: the status says what kind of error it is),
``title`` (the status's phrase), ``status``, ``detail`` (what went wrong and how to fix it, for
a person), ``instance`` (the request's path) and ``code`` (a stable name for programs, e.g.
``no_person``); validation problems add ``errors``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
API_AREA = "/api/v1"

# Headers of a refused response worth keeping on the problem that replaces it.
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")
_DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


def in_api(path: str) -> bool:
    return path == API_AREA or path.startswith(API_AREA + "/")


class Problem(Exception):
    """Raise from an API handler: answered as a problem with this status and detail."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        **members: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code or _DEFAULT_CODES.get(status, HTTPStatus(status).phrase.lower().replace(" ", "_"))
        self.headers = dict(headers or {})
        self.members = members

    def response(self, request: web.Request) -> web.Response:
        return problem_response(
            request, self.status, self.detail, code=self.code, headers=self.headers, **self.members
        )


def problem_response(
    request: web.Request,
    status: int,
    detail: str,
    *,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
    **members: Any,
) -> web.Response:
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.path,
        "code": code or _DEFAULT_CODES.get(status, "error"),
        **members,
    }
    return web.Response(
        text=json.dumps(body), status=status, content_type=PROBLEM_JSON, headers=dict(headers or {})
    )


def _detail_of(request: web.Request, status: int, text: str | None) -> str:
    """A sentence for a refused request whose handler (or aiohttp) gave only a status or a terse text."""
    if status == 404:
        return f"there is no API resource at {request.path}; the API is described at {API_AREA}/openapi.json"
    if status == 405:
        return f"{request.method} is not allowed on {request.path}"
    if status == 413:
        return "the request body is larger than this service accepts"
    if text:
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("error") or parsed.get("detail"), str):
            return parsed.get("detail") or parsed["error"]
        # aiohttp's own texts look like "404: Not Found": nothing more than the status.
        if not text.startswith(f"{status}:"):
            return text.strip()
    return HTTPStatus(status).phrase


def _as_problem(request: web.Request, response: web.StreamResponse, text: str | None) -> web.Response:
    status = response.status
    kept = {name: response.headers[name] for name in _KEPT_HEADERS if name in response.headers}
    problem = problem_response(request, status, _detail_of(request, status, text), headers=kept)
    # Everything else a middleware added (security headers, a cleared cookie) stays.
    for name, value in response.headers.items():
        if name not in ("Content-Type", "Content-Length") and name not in problem.headers:
            problem.headers[name] = value
    for name, morsel in response.cookies.items():
        problem.cookies[name] = morsel
    return problem


@web.middleware
async def middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Under /api/v1 every error is a problem; elsewhere nothing changes."""
    if not in_api(request.path):
        return await handler(request)
    try:
        response = await handler(request)
    except Problem as problem:
        return problem.response(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _as_problem(request, exc, exc.text)
    except HttpProcessingError as exc:
        # A body aiohttp could not parse (a broken multipart part, say) is the client's error.
        return problem_response(request, 400, f"the request body is malformed: {exc.message}", code="malformed_body")
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unexpected error answering %s %s", request.method, request.path)
        return problem_response(
            request, 500, "the service failed unexpectedly; the error was logged", code="internal_error"
        )
    if (
        response.status >= 400
        and not response.prepared
        and response.content_type != PROBLEM_JSON
        and isinstance(response, web.Response)
    ):
        return _as_problem(request, response, response.text if response.body is not None else None)
    return response
