"""Bounded memory and connections (web/limits.py): what a flood, a slow client or a greedy address
can make the service hold. Everything goes to 127.0.0.1, bounded in count and time; the limits
are set small here so that a few connections reach them."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import unused_port

from servers import loopback_settings, running
from web.keys import SETTINGS_KEY
from web.limits import GuardedAppRunner

pytestmark = pytest.mark.asyncio(loop_scope="module")

MAX_UPLOAD = 100_000
BUDGET = 250_000  # one largest form (MAX_UPLOAD + 64 KiB) fits, two do not
HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 3.0
CONNECTIONS_PER_ADDRESS = 40
CONCURRENT_PUBLIC = 12
# The most any deadline here may be overrun on a busy CI machine before the test calls it held open.
GRACE = 8.0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory, models_dir):
    settings = loopback_settings(
        tmp_path_factory.mktemp("limits"),
        models_dir,
        ARTBOOTH_MAX_UPLOAD_BYTES=str(MAX_UPLOAD),
        ARTBOOTH_MAX_INFLIGHT_UPLOAD_BYTES=str(BUDGET),
        ARTBOOTH_REQUEST_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT),
        ARTBOOTH_REQUEST_BODY_TIMEOUT_SECONDS=str(BODY_TIMEOUT),
        ARTBOOTH_MAX_CONNECTIONS_PER_ADDRESS=str(CONNECTIONS_PER_ADDRESS),
        ARTBOOTH_PUBLIC_CONCURRENT_REQUESTS=str(CONCURRENT_PUBLIC),
    )
    async with running(settings) as test_server:
        yield test_server


@pytest_asyncio.fixture(loop_scope="module")
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


class RawClient:
    """One hand-driven connection: what a slow or greedy client sends, byte by byte if need be."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self._answer = asyncio.ensure_future(reader.read(4096))

    @classmethod
    async def open(cls, server) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> bool:
        """Send ``data``; False when the server has closed the connection."""
        if self._answer.done():
            return False
        try:
            self.writer.write(data)
            await self.writer.drain()
        except ConnectionError:
            return False
        return True

    async def trickle(self, data: bytes, interval: float = 0.2) -> float:
        """Send ``data`` a byte at a time until the server answers or closes; the seconds that took."""
        start = time.monotonic()
        for byte in data:
            if not await self.send(bytes([byte])):
                break
            await asyncio.wait([self._answer], timeout=interval)
        await asyncio.wait_for(asyncio.shield(self._answer), GRACE)
        return time.monotonic() - start

    async def answer(self, timeout: float) -> bytes:
        """The first bytes the server sends (b"" when it closes without a word)."""
        return await asyncio.wait_for(asyncio.shield(self._answer), timeout)

    def answer_so_far(self) -> bytes | None:
        """What the server has sent (b"": closed), or None while it waits for the request."""
        return self._answer.result() if self._answer.done() else None

    def close(self) -> None:
        self._answer.cancel()
        self.writer.close()


def _headers(path: str, content_length: int | None = None, *, chunked: bool = False) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: multipart/form-data; boundary=b0undary"]
    if content_length is not None:
        lines.append(f"Content-Length: {content_length}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _status_and_headers(answer: bytes) -> tuple[int, dict[str, str]]:
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    return status, {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in head[1:])}


async def test_slow_clients_are_closed_at_their_deadlines_while_others_are_served(server, http):
    header_tricklers = [await RawClient.open(server) for _ in range(8)]
    body_tricklers = [await RawClient.open(server) for _ in range(8)]
    for client in body_tricklers:
        assert await client.send(_headers("/api/compose", 10_000))  # all eight within the budget
    slow = [client.trickle(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200) for client in header_tricklers]
    slow += [client.trickle(b"--b0undary\r\n" + b"a" * 200) for client in body_tricklers]
    slow_task = asyncio.gather(*slow)

    # The other visitors meanwhile: every request answered as usual.
    served = 0
    while not slow_task.done():
        async with http.get(server.make_url("/api/artworks")) as response:
            assert response.status == 200
            served += 1
        await asyncio.sleep(0.2)
    header_seconds, body_seconds = (await slow_task)[:8], (await slow_task)[8:]
    assert served >= 3
    # Closed: at, not before, each deadline (the body's counts from its headers, sent at once).
    assert all(HEADER_TIMEOUT - 0.2 <= s <= HEADER_TIMEOUT + GRACE for s in header_seconds), header_seconds
    assert all(BODY_TIMEOUT - 0.2 <= s <= BODY_TIMEOUT + GRACE for s in body_seconds), body_seconds
    for client in header_tricklers + body_tricklers:
        assert await client.answer(0) == b""  # closed, not answered
        client.close()


async def test_a_request_whose_handler_outlasts_the_header_deadline_is_answered(tmp_path, models_dir, http):
    """A photo's body arrives in several chunks, then composing it takes longer than the header
    deadline: the booth must get its answer, not a dropped connection (its browser would re-send,
    and the re-sent capture be refused while the first photo is stored and never shown)."""
    settings = loopback_settings(tmp_path, models_dir, ARTBOOTH_REQUEST_HEADER_TIMEOUT_SECONDS="0.5")

    async def slow_handler(request: web.Request) -> web.Response:
        body = await request.read()
        await asyncio.sleep(1.5)  # three header deadlines
        return web.Response(text=f"read {len(body)} bytes")

    app = web.Application()
    app[SETTINGS_KEY] = settings
    app.router.add_post("/slow", slow_handler)
    runner = GuardedAppRunner(app)
    await runner.setup()
    port = unused_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        async with http.post(f"http://127.0.0.1:{port}/slow", data=b"x" * 300_000) as response:
            assert response.status == 200
            assert await response.text() == "read 300000 bytes"
    finally:
        await runner.cleanup()


async def test_an_address_gets_only_so_many_connections(server, http):
    opened = [await RawClient.open(server) for _ in range(CONNECTIONS_PER_ADDRESS + 2)]
    try:
        await asyncio.sleep(0.5)  # the refused are answered at once; the others wait for a request
        answers = [client.answer_so_far() for client in opened]
        refusals = [answer for answer in answers if answer]
        # This test's own session may hold a kept-alive connection too: at least two are refused.
        assert len(refusals) >= 2
        for refusal in refusals:
            status, headers = _status_and_headers(refusal)
            assert status == 429 and int(headers["retry-after"]) > 0
        # One closed, one more may open.
        next(client for client, answer in zip(opened, answers) if answer is None).close()
        await asyncio.sleep(0.2)
        fresh = await RawClient.open(server)
        opened.append(fresh)
        assert await fresh.send(b"GET /api/artworks HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert _status_and_headers(await fresh.answer(GRACE))[0] == 200
    finally:
        for client in opened:
            client.close()


async def test_a_body_over_the_upload_budget_is_refused_before_it_is_read(server, http):
    largest = MAX_UPLOAD + 60_000
    holder = await RawClient.open(server)
    try:
        # A visitor's upload in progress holds most of the budget ...
        assert await holder.send(_headers("/api/compose", largest) + b"--b0undary\r\n")
        # ... so the next one is told to come back, before sending a byte of its body.
        for _ in range(20):
            probe = await RawClient.open(server)
            assert await probe.send(_headers("/api/compose", largest))
            try:
                answer = await probe.answer(0.5)
            except asyncio.TimeoutError:
                probe.close()  # reached the server before the holder did: try again
                continue
            probe.close()
            break
        status, headers = _status_and_headers(answer)
        assert status == 503 and int(headers["retry-after"]) > 0
        assert b"busy" in answer
    finally:
        holder.close()
    # Its share is given back with it: a photo is taken again (and refused as not a photo).
    await asyncio.sleep(0.3)
    async with http.post(server.make_url("/api/compose"), data=_form(b"not a photo")) as response:
        assert response.status == 415


async def test_a_chunked_body_is_cut_off_when_it_outgrows_the_budget(server, http, caplog):
    caplog.set_level(logging.INFO, logger="web.limits")
    holder = await RawClient.open(server)
    chunked = await RawClient.open(server)
    try:
        assert await holder.send(_headers("/api/compose", MAX_UPLOAD + 60_000) + b"--b0undary\r\n")
        await asyncio.sleep(0.3)
        assert await chunked.send(_headers("/api/compose", chunked=True))
        chunk = b"a" * 10_000
        sent = 0
        while sent < MAX_UPLOAD and await chunked.send(b"%x\r\n%s\r\n" % (len(chunk), chunk)):
            sent += len(chunk)
            await asyncio.sleep(0.01)
        # Cut off at the budget (about 90 kB were left), before the form's byte limit is reached.
        assert await chunked.answer(GRACE) == b""
        assert "the upload outgrew the room left for it" in caplog.text
    finally:
        holder.close()
        chunked.close()


async def test_public_requests_at_once_per_address_are_bounded(server, http):
    uploads = [await RawClient.open(server) for _ in range(CONCURRENT_PUBLIC)]
    try:
        for client in uploads:
            assert await client.send(_headers("/api/compose", 1_000) + b"--b0undary\r\n")
        for _ in range(20):
            async with http.get(server.make_url("/p/no-such-link")) as response:
                if response.status == 429:
                    assert int(response.headers["Retry-After"]) > 0
                    assert "at once" in await response.text()
                    break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the address's uploads in progress did not count")
        # The staff and the API are not public endpoints: served all the same.
        async with http.get(server.make_url("/api/artworks")) as response:
            assert response.status == 200
    finally:
        for client in uploads:
            client.close()


async def test_more_than_a_thousand_fields_is_refused_for_its_fields(server, http):
    form = aiohttp.FormData()
    for index in range(1001):
        form.add_field(f"f{index}", "x")
    async with http.post(server.make_url("/api/compose"), data=form) as response:
        body = await response.json()
    assert response.status == 400
    assert "more than 1,000 fields" in body["error"]
    assert "bytes" not in body["error"]


def _form(photo: bytes, artwork: str = "demo-golden-meadow") -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("artwork", artwork)
    form.add_field("photo", photo, filename="photo.jpg", content_type="image/jpeg")
    return form


async def test_an_address_over_its_request_rate_is_asked_to_wait(tmp_path, models_dir, http):
    settings = loopback_settings(tmp_path, models_dir, ARTBOOTH_PUBLIC_REQUESTS_PER_MINUTE="5")
    async with running(settings) as rated:
        statuses = []
        for number in range(6):
            # No trusted proxy (the default): whatever X-Forwarded-For claims, the connection's address counts.
            claimed = {"X-Forwarded-For": f"203.0.113.{number}"}
            async with http.get(rated.make_url("/p/no-such-link"), headers=claimed) as response:
                statuses.append(response.status)
                retry_after = response.headers.get("Retry-After")
        assert statuses[:5] == [404] * 5 and statuses[5] == 429
        assert 0 < int(retry_after) <= 60
        async with http.get(rated.make_url("/api/artworks")) as response:  # not a public endpoint
            assert response.status == 200


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_rate(tmp_path, models_dir, http):
    # The proxy (here, this test on 127.0.0.1) names each client in X-Forwarded-For (web/proxies.py).
    settings = loopback_settings(tmp_path, models_dir, ARTBOOTH_PUBLIC_REQUESTS_PER_MINUTE="3", ARTBOOTH_TRUSTED_PROXIES="127.0.0.1")

    async def statuses(forwarded_for: str, count: int) -> list[int]:
        answers = []
        for _ in range(count):
            async with http.get(rated.make_url("/p/no-such-link"), headers={"X-Forwarded-For": forwarded_for}) as response:
                answers.append(response.status)
        return answers

    async with running(settings) as rated:
        assert await statuses("203.0.113.5", 4) == [404, 404, 404, 429]
        # Another visitor behind the same proxy is not held back by the first; a proxy in the chain
        # that is itself trusted is skipped.
        assert await statuses("203.0.113.6, 127.0.0.1", 3) == [404, 404, 404]
        async with http.get(rated.make_url("/p/no-such-link"), headers={"X-Forwarded-For": "not an address"}) as response:
            assert response.status == 400


def _rss_mb(pid: int) -> float:
    """The process's resident memory, its children (the compose worker) not included."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
async def test_a_flood_of_large_uploads_costs_bounded_memory_and_gives_it_back(tmp_path, models_dir):
    """The issue's flood against `artbooth serve` with its default limits: 50 then 100 posts of
    25 MB at once to the public compose endpoint."""
    port = unused_port()
    environ = {
        **os.environ,
        "ARTBOOTH_DATA_DIR": str(tmp_path / "data"),
        "ARTBOOTH_MODELS_DIR": str(models_dir),
        "ARTBOOTH_PORT": str(port),
        # On loopback every client is one address: let the flood through to the budget.
        "ARTBOOTH_PUBLIC_CONCURRENT_REQUESTS": "1000",
        "ARTBOOTH_MAX_CONNECTIONS_PER_ADDRESS": "1000",
        "ARTBOOTH_PUBLIC_UPLOAD": "true",  # the flood goes to the public compose form, off by default
        # Its worker only loads the models (as tests/servers.py's do): no photo is composed here, and
        # the warm-up's generated photo and the edge-band solve's pymatting would cost seconds a start.
        "ARTBOOTH_COMPOSE_WARM_UP": "false",
        "ARTBOOTH_MATTING_BAND_SOLVE": "false",
    }
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log_file:
        service = subprocess.Popen(
            [str(Path(sys.executable).parent / "artbooth"), "serve"], env=environ, stdout=log_file, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        # Ready when it says so, and then at once: its start (database, workers) is behind it.
        deadline = time.monotonic() + 180
        while "serving on" not in log_path.read_text():
            assert service.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            await asyncio.sleep(0.2)
        log_text = log_path.read_text()
        assert log_text.index("compose pool ready") < log_text.index("serving on")
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=200)) as http:
            async with http.get(base + "/api/artworks") as response:
                assert response.status == 200
                artwork = (await response.json())[0]["id"]
            # One photo first, so the baseline is a service that has composed (artwork loaded and cached).
            async with http.post(base + "/compose", data=_form(b"not a photo", artwork)) as response:
                assert response.status == 415
            await asyncio.sleep(1)
            baseline = _rss_mb(service.pid)
            peak = baseline

            async def sample() -> None:
                nonlocal peak
                while True:
                    peak = max(peak, _rss_mb(service.pid))
                    await asyncio.sleep(0.05)

            big = os.urandom(25_000_000)

            async def post() -> int | str:
                try:
                    async with http.post(base + "/compose", data=_form(big, artwork)) as response:
                        await response.read()
                        if response.status == 503:
                            assert int(response.headers["Retry-After"]) > 0
                        return response.status
                except aiohttp.ClientConnectionError:
                    return "closed"  # cut off while still sending: refused all the same

            sampler = asyncio.create_task(sample())
            answers: Counter = Counter()
            try:
                for count in (50, 100):
                    answers.update(await asyncio.gather(*(post() for _ in range(count))))
            finally:
                sampler.cancel()
            assert set(answers) <= {503, 413, 415, "closed"}, answers
            assert answers[503] > 0, answers  # turned away (with Retry-After) before their bodies were read
            assert peak - baseline <= 150, (baseline, peak)
            # Back within 50 MB of where it started, within 30 s.
            settle_deadline = time.monotonic() + 30
            while _rss_mb(service.pid) - baseline > 50:
                assert time.monotonic() < settle_deadline, (baseline, _rss_mb(service.pid))
                await asyncio.sleep(0.5)
            # And still serving.
            async with http.get(base + "/api/artworks") as response:
                assert response.status == 200
    finally:
        service.terminate()
        service.wait(60)
