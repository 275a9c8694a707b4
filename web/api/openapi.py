"""The API described once: each resource module lists its operations (path, method, scope,
parameters, bodies, responses, handler) as Operation values; routes.py registers exactly those,
and `document` turns the same values into the OpenAPI 3.0 document served at
/api/v1/openapi.json. Query and path parameters are parsed by their own declarations (Param),
so what the document promises is what the handlers check.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from db.api_tokens import SCOPES, TOKEN_PREFIX
from kiosk.settings import ARTWORK_LOOKS, HARMONIZE_STRENGTH_RANGE, HARMONIZE_TARGETS, LOOKS
from pipeline.types import Framing, ReferenceMode
from web.api.problems import PROBLEM_JSON, Problem
from web.staff import CSRF_HEADER, SESSION_COOKIE, ApiCaller

Handler = Callable[[web.Request, ApiCaller], Awaitable[web.StreamResponse]]

TITLE = "ArtBooth API"
VERSION = "1.0.0"


@dataclass(frozen=True)
class Param:
    """A query or path parameter, or a field of a multipart form: its OpenAPI schema and its parser
    are the same declaration."""

    name: str
    location: str  # "query" | "path" | "form"
    kind: type  # str, int, float, bool or datetime
    description: str
    required: bool = False
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None
    max_length: int | None = None
    # The only values a str parameter takes.
    choices: tuple[str, ...] | None = None

    def schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {
            str: {"type": "string"},
            int: {"type": "integer"},
            float: {"type": "number"},
            bool: {"type": "boolean"},
            datetime: {"type": "string", "format": "date-time"},
        }[self.kind]
        for key, value in (
            ("default", self.default),
            ("minimum", self.minimum),
            ("maximum", self.maximum),
            ("pattern", self.pattern),
            ("maxLength", self.max_length),
            ("enum", list(self.choices) if self.choices is not None else None),
        ):
            if value is not None:
                schema[key] = value
        return schema

    def spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "in": self.location,
            "required": self.required or self.location == "path",
            "description": self.description,
            "schema": self.schema(),
        }

    def parse(self, raw: str) -> Any:
        """The value, or a 422 problem (404 for a path segment that cannot name anything)."""
        if self.location == "path":
            if self.pattern is not None and not re.fullmatch(self.pattern, raw):
                raise Problem(404, f"there is no such resource: {self.name} {raw!r} is not a valid id")
            return raw
        if self.kind is int:
            try:
                value = int(raw)
            except ValueError:
                raise _invalid(self, f"{self.name} must be a whole number, not {raw!r}") from None
            if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
                raise _invalid(self, f"{self.name} must be between {self.minimum} and {self.maximum}, not {value}")
            return value
        if self.kind is float:
            try:
                value = float(raw)
            except ValueError:
                value = math.nan
            if not math.isfinite(value) or (self.minimum is not None and value < self.minimum) or (
                self.maximum is not None and value > self.maximum
            ):
                raise _invalid(self, f"{self.name} must be a number from {self.minimum} to {self.maximum}, not {raw!r}")
            return value
        if self.kind is bool:
            if raw.lower() not in ("true", "false"):
                raise _invalid(self, f"{self.name} must be true or false, not {raw!r}")
            return raw.lower() == "true"
        if self.kind is datetime:
            try:
                value = datetime.fromisoformat(raw)
            except ValueError:
                raise _invalid(self, f"{self.name} must be an ISO 8601 date and time, e.g. 2026-11-22T10:00:00Z, not {raw!r}") from None
            # Without a zone the time is taken as UTC, the zone of everything the API returns.
            return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
        if self.max_length is not None and len(raw) > self.max_length:
            raise _invalid(self, f"{self.name} is at most {self.max_length} characters long")
        if self.pattern is not None and not re.fullmatch(self.pattern, raw):
            raise _invalid(self, f"{self.name} {raw!r} does not have the form {self.pattern}")
        if self.choices is not None and raw not in self.choices:
            raise _invalid(self, f"{self.name} must be one of {', '.join(self.choices)}, not {raw!r}")
        return raw

    def property(self) -> dict[str, Any]:
        """Its schema as a property of a form's schema."""
        return self.schema() | {"description": self.description}


def _invalid(param: Param, message: str) -> Problem:
    return Problem(422, message, code="invalid_parameter", errors=[{"parameter": param.name, "detail": message}])


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    scope: str
    handler: Handler
    tag: str
    params: tuple[Param, ...] = ()
    # An OpenAPI requestBody object, when the operation takes a body.
    request_body: dict[str, Any] | None = None
    # The successful answers: status -> OpenAPI response object.
    responses: Mapping[int, dict[str, Any]] = field(default_factory=dict)
    # The statuses of its expected problems besides 401 and 403, which every operation has.
    problems: tuple[int, ...] = ()

    def arguments(self, request: web.Request) -> dict[str, Any]:
        """Its parameters from the request, parsed: absent optional ones take their default."""
        values: dict[str, Any] = {}
        for param in self.params:
            source = request.match_info if param.location == "path" else request.query
            raw = source.get(param.name)
            if raw is None:
                if param.required:
                    raise _invalid(param, f"the {param.name} parameter is required")
                values[param.name] = param.default
            else:
                values[param.name] = param.parse(raw)
        return values


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_answer(description: str, schema: dict[str, Any], *, headers: Mapping[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        answer["headers"] = dict(headers)
    return answer


def json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"required": True, "description": description, "content": {"application/json": {"schema": schema}}}


def form_arguments(fields: tuple[Param, ...], form: Mapping[str, Any]) -> dict[str, Any]:
    """The form's ``fields``, parsed: those absent (or sent empty) take their default."""
    values: dict[str, Any] = {}
    for param in fields:
        raw = form.get(param.name)
        if raw is None or raw == "":
            values[param.name] = param.default
        elif not isinstance(raw, str):
            raise _invalid(param, f"{param.name} must be a plain form field, not a file")
        else:
            values[param.name] = param.parse(raw)
    return values


def multipart_body(
    properties: dict[str, Any], required: list[str], description: str, *, fields: tuple[Param, ...] = ()
) -> dict[str, Any]:
    """A multipart request body: ``properties`` (files among them) and the form ``fields`` parsed by form_arguments."""
    properties = properties | {param.name: param.property() for param in fields}
    return {
        "required": True,
        "description": description,
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "properties": properties, "required": required},
                "encoding": {name: {"contentType": "application/octet-stream"} for name, prop in properties.items() if prop.get("format") == "binary"},
            }
        },
    }


NO_CONTENT = {"description": "Done; no content."}

_STATUS_DESCRIPTIONS = {
    400: "The request is malformed (empty or truncated file, missing field).",
    401: "No valid API token or staff session.",
    403: "The token lacks the scope, or a staff session's request lacks its CSRF token.",
    404: "No such resource.",
    409: "The resource cannot be changed that way now.",
    410: "The resource is gone.",
    413: "The upload is over max_upload_bytes, or its image over max_image_pixels.",
    415: "The body's type, or the uploaded file's, is not one this operation takes.",
    422: "The request is well-formed but its values cannot be used.",
    503: "Busy or unavailable; retry after the Retry-After seconds when given.",
}

_BOX = {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1}, "minItems": 4, "maxItems": 4,
        "description": "[x0, y0, x1, y1] in normalised artwork coordinates"}
_NULLABLE_OBJECT = {"type": "object", "nullable": True, "additionalProperties": True}
# An artwork's look (kiosk/looks.py) and painted strength; null: the service's settings.
_ARTWORK_LOOK = {
    "look": {"type": "string", "enum": list(ARTWORK_LOOKS), "nullable": True,
             "description": "realistic, painted, or visitor (the booth lets the visitor choose); null: the service's look."},
    "stylize_strength": {"type": "number", "minimum": 0, "maximum": 1, "nullable": True,
                         "description": "The painted look's strength; null: the service's stylize_strength."},
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details.",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string", "description": "What went wrong and how to fix it."},
            "instance": {"type": "string"},
            "code": {"type": "string", "description": "A stable name for programs, e.g. no_person."},
            "errors": {"type": "array", "items": {"type": "object"}},
        },
    },
    "Artwork": {
        "type": "object",
        "required": ["id", "title", "artist", "year", "demo", "enabled", "available", "sort_order", "boxes",
                     "reference_region", "reference_mode", "thumbnail_url", "created_at", "updated_at"],
        "properties": {
            "id": {"type": "string"},
            "title": {"type": "string"},
            "artist": {"type": "string"},
            "year": {"type": "string"},
            "demo": {"type": "boolean"},
            "enabled": {"type": "boolean", "description": "Staff offer it to visitors."},
            "available": {"type": "boolean", "description": "Its image is present."},
            "sort_order": {"type": "integer"},
            "boxes": {"type": "object", "description": "The placement box per framing.",
                      "properties": {framing.value: _BOX for framing in Framing}, "additionalProperties": False},
            "reference_region": {**_BOX, "nullable": True},
            "reference_mode": {"type": "string", "enum": [mode.value for mode in ReferenceMode]},
            **_ARTWORK_LOOK,
            "thumbnail_url": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    },
    "ArtworkList": {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": ref("Artwork")}}},
    "ArtworkEdit": {
        "type": "object",
        "description": "The fields to change; those left out stay as they are.",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {
            "title": {"type": "string", "maxLength": 300},
            "artist": {"type": "string", "maxLength": 300},
            "year": {"type": "string", "maxLength": 64},
            "boxes": {"type": "object", "properties": {framing.value: _BOX for framing in Framing}, "additionalProperties": False},
            "reference_region": {**_BOX, "nullable": True},
            "reference_mode": {"type": "string", "enum": [mode.value for mode in ReferenceMode]},
            "enabled": {"type": "boolean"},
            "sort_order": {"type": "integer", "minimum": 0, "maximum": 1_000_000},
            **_ARTWORK_LOOK,
        },
    },
    "ArtworkOrder": {
        "type": "object",
        "required": ["ids"],
        "additionalProperties": False,
        "properties": {"ids": {"type": "array", "items": {"type": "string"}, "description": "Artwork ids, first shown first."}},
    },
    "Photo": {
        "type": "object",
        "required": ["id", "artwork", "kiosk", "framing", "people", "score", "scores", "variant", "created_at",
                     "size_bytes", "result_url", "thumbnail_url"],
        "properties": {
            "id": {"type": "string"},
            "artwork": {"type": "string"},
            "kiosk": {"type": "string", "nullable": True},
            "framing": {"type": "string", "enum": [framing.value for framing in Framing]},
            "people": {"type": "integer"},
            "score": {"type": "number", "nullable": True, "description": "Harmony score of the chosen variant."},
            "scores": {**_NULLABLE_OBJECT, "description": "Harmony score of each candidate variant."},
            "variant": {**_NULLABLE_OBJECT, "description": "The chosen harmonization variant."},
            "created_at": {"type": "string", "format": "date-time"},
            "size_bytes": {"type": "integer"},
            "timings_ms": {"type": "object", "additionalProperties": {"type": "number"}},
            "result_url": {"type": "string", "description": "The composed JPEG (needs photos:read)."},
            "thumbnail_url": {"type": "string", "description": "A small JPEG of it (needs photos:read)."},
        },
    },
    "PhotoPage": {
        "type": "object",
        "required": ["items", "total", "limit", "offset"],
        "properties": {
            "items": {"type": "array", "items": ref("Photo")},
            "total": {"type": "integer", "description": "Photos matching the filters, on every page."},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
        },
    },
    "Composition": {
        "type": "object",
        "required": ["photo", "result_url", "download_url", "download_expires_at", "options", "look", "candidates"],
        "properties": {
            "photo": ref("Photo"),
            "options": ref("CompositionOptions"),
            "result_url": {"type": "string"},
            "download_url": {"type": "string", "description": "The visitor's download page (the QR code's link); no token needed."},
            "download_expires_at": {"type": "string", "format": "date-time"},
            "faces": {"type": "array", "items": {"type": "object"}},
            "look": {"type": "string", "enum": list(LOOKS), "description": "The look the photo was composed in."},
            "candidates": {"type": "array", "items": ref("Candidate"),
                           "description": "Every variant scored: colour and light first, then (painted look) the painted ones."},
            "score": {"type": "number", "nullable": True, "description": "Harmony score of the picture kept."},
        },
    },
    "CompositionOptions": {
        "type": "object",
        "description": "How the photo was composed: the options sent, and the service's settings for those left out.",
        "required": ["harmonize", "harmonize_targets", "harmonize_strength", "reference"],
        "properties": {
            "harmonize": {"type": "boolean"},
            "harmonize_targets": {"type": "string", "enum": list(HARMONIZE_TARGETS)},
            "harmonize_strength": {"type": "number", "minimum": HARMONIZE_STRENGTH_RANGE[0], "maximum": HARMONIZE_STRENGTH_RANGE[1]},
            "reference": {"type": "string", "enum": [mode.value for mode in ReferenceMode],
                          "description": "The reference region the default correction matched."},
            "look": {"type": "string", "enum": list(LOOKS)},
            "stylize_strength": {"type": "number", "minimum": 0, "maximum": 1, "nullable": True,
                                 "description": "The painted look's strength; null for the realistic look."},
        },
    },
    "Candidate": {
        "type": "object",
        "required": ["stage", "name", "score", "kept"],
        "properties": {
            "stage": {"type": "string", "enum": ["colour_light", "painted"]},
            "name": {"type": "string"},
            "score": {"type": "number", "nullable": True, "description": "Harmony score in [0, 1]."},
            "kept": {"type": "boolean", "description": "The variant kept at its stage."},
            "blend": {"type": "number", "description": "Painted variants: the share of the repainting kept."},
        },
    },
    "KioskStats": {
        "type": "object",
        "required": ["kiosk", "online", "connected", "seconds_since_seen", "capturing", "captures", "failures", "preview"],
        "properties": {
            "kiosk": {"type": "string"},
            "online": {"type": "boolean", "description": "Its preview is connected here, or it checked in with any node within three heartbeats."},
            "connected": {"type": "boolean", "description": "Its live preview is connected to this server."},
            "seconds_since_seen": {"type": "number", "nullable": True},
            "node": {"type": "string", "nullable": True, "description": "The serve node it checked in with last."},
            "capturing": {"type": "boolean"},
            "captures": {"type": "integer", "description": "Its photos since this server started, through any node."},
            "failures": {"type": "integer", "description": "Since this server started."},
            "camera": {
                "type": "string",
                "enum": ["ok", "missing", "denied", "insecure", "unknown"],
                "description": "The booth's camera as its screen last reported it (insecure: the page is not HTTPS).",
            },
            "preview": {**_NULLABLE_OBJECT, "description": "fps in and out, drops, render time p50/p95."},
        },
    },
    "Kiosk": {
        "type": "object",
        "required": ["id", "name", "location", "last_seen", "stats"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "location": {"type": "string"},
            "last_seen": {"type": "string", "format": "date-time", "nullable": True},
            "stats": ref("KioskStats"),
        },
    },
    "KioskList": {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": ref("Kiosk")}}},
}


def document(operations: tuple[Operation, ...]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        responses: dict[str, Any] = {str(status): answer for status, answer in op.responses.items()}
        for status in sorted({401, 403, *op.problems}):
            responses[str(status)] = {"$ref": f"#/components/responses/Problem{status}"}
        responses["default"] = {"$ref": "#/components/responses/Problem"}
        spec: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.tag],
            "description": f"Needs the scope `{op.scope}`.",
            "security": [{"bearer": [op.scope]}, {"session": []}],
            "parameters": [param.spec() for param in op.params],
            "responses": responses,
        }
        if op.request_body is not None:
            spec["requestBody"] = op.request_body
        paths.setdefault(op.path, {})[op.method.lower()] = spec
    problem_content = {PROBLEM_JSON: {"schema": ref("Problem")}}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": (
                "The ArtBooth REST API. Authenticate with an API token an administrator creates in the staff "
                f"dashboard (API tokens): `Authorization: Bearer {TOKEN_PREFIX}...`. A signed-in staff session may "
                f"call it too, sending its CSRF token in `{CSRF_HEADER}` on state-changing requests. "
                "Every error is an RFC 9457 problem (application/problem+json)."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "responses": {
                "Problem": {"description": "An error.", "content": problem_content},
                **{
                    f"Problem{status}": {"description": description, "content": problem_content}
                    for status, description in _STATUS_DESCRIPTIONS.items()
                },
            },
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token; its scopes: "
                    + "; ".join(f"`{scope}` {meaning}" for scope, meaning in SCOPES.items()),
                },
                "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
            },
        },
    }
