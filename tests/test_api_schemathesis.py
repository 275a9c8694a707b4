"""Schemathesis against the OpenAPI document the running service serves: requests generated from
the document, sent with an administrator's token, must never get a 5xx answer, and every answer
must be one the document describes (status, content type, body schema).

The service runs in a thread with its own event loop, because schemathesis calls it synchronously.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from api_helpers import bearer, new_token
from servers import loopback_settings, running
from web.api.routes import OPERATIONS

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 12


@pytest.fixture(scope="module")
def service(tmp_path_factory, models_dir) -> Iterator[tuple[str, str]]:
    """(base URL, administrator's API token) of the real service, running until the module ends."""
    config = loopback_settings(tmp_path_factory.mktemp("schemathesis"), models_dir)
    started = threading.Event()
    found: dict[str, object] = {}

    async def serve() -> None:
        try:
            async with running(config) as server:
                found["token"] = await new_token(server, name="schemathesis")
                found["url"] = str(server.make_url("")).rstrip("/")
                found["stop"] = stop = asyncio.Event()
                found["loop"] = asyncio.get_running_loop()
                started.set()
                await stop.wait()
        except BaseException as exc:
            found["error"] = exc
            started.set()
            raise

    thread = threading.Thread(target=asyncio.run, args=(serve(),), name="service")
    thread.start()
    assert started.wait(300), "the service did not start"
    assert "error" not in found, found.get("error")
    try:
        yield found["url"], found["token"]
    finally:
        found["loop"].call_soon_threadsafe(found["stop"].set)
        thread.join(60)


@pytest.fixture(scope="module")
def api_schema(service):
    base_url, _ = service
    # The document as the service serves it, not as the code builds it.
    return schemathesis.openapi.from_url(f"{base_url}/api/v1/openapi.json")


@pytest.mark.parametrize("operation_id", [operation.operation_id for operation in OPERATIONS])
def test_generated_requests_get_no_server_error_and_answers_match_the_document(service, api_schema, operation_id):
    base_url, token = service
    operation = api_schema.find_operation_by_label(_label(operation_id))

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,  # the same requests on every run
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def check(case) -> None:
        case.call_and_validate(base_url=base_url, headers=bearer(token), checks=CHECKS)

    check()


def _label(operation_id: str) -> str:
    operation = next(op for op in OPERATIONS if op.operation_id == operation_id)
    return f"{operation.method} {operation.path}"
