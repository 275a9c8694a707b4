"""Booths pinned to a serve node behind a reverse proxy, as the README's nginx recipe runs them
(scripts/nginx-artbooth.conf): two `artbooth serve` nodes on one PostgreSQL database and one data
folder, behind Debian's nginx. Every request of a booth reaches the same node, the booths spread over
both nodes, and when a node is killed (SIGKILL) its booths' next requests through the proxy are
answered by the other node, which then shows them online; with no node left, booths hear 503 with
Retry-After (a booth's capture asks again on it).

Which node answered a booth: the kiosk_presence table (db/presence.py) holds one row per booth and
node that saw it, written by a node at the first check-in it gets from that booth; the booth's own
stats through the proxy say the same.

nginx runs as the test's user from its own folder; without nginx the test fails (CI installs it,
.ci/run). Without ARTBOOTH_TEST_POSTGRES_URL (a PostgreSQL server) it is skipped, like the other
PostgreSQL tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import unused_port
from sqlalchemy import select
from yarl import URL

from booth_helpers import booth_client, pair, pairing_link_at
from databases import POSTGRES_ENV, scratch_postgres_database
from db.engine import create_engine, create_session_factory
from db.models import KioskPresenceRow
from db.service import SessionFactory
from processes import Process, start_artbooth

pytestmark = [
    pytest.mark.skipif(not os.environ.get(POSTGRES_ENV), reason=f"{POSTGRES_ENV} is not set (a PostgreSQL server)"),
]

TEMPLATE = Path(__file__).parents[1] / "scripts" / "nginx-artbooth.conf"
NODES = ("node-east", "node-west")
# Generous: the machine is shared, and each node loads its models at start.
START_DEADLINE_S = 120
# Booths are paired until each node holds this many; the ids do not choose the node, the ring of
# nginx's consistent hash does (its points come from the nodes' addresses, random ports here).
BOOTHS_PER_NODE = 2
BOOTHS_AT_MOST = 16
HEARTBEATS_EACH = 3


def _nginx() -> str:
    # Debian puts it in /usr/sbin, which a user's PATH may lack.
    found = shutil.which("nginx", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))
    if found is None:
        pytest.fail("nginx is not installed: `apt-get install nginx` (this test runs Debian's as the reverse proxy)")
    return found


def _log_tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"


def _start_node(
    name: str, port: int, *, database_url: str, data_dir: Path, models_dir: Path, public_url: str, log_folder: Path
) -> Process:
    environ = {
        **{key: value for key, value in os.environ.items() if not key.startswith("ARTBOOTH_")},
        "ARTBOOTH_DATABASE_URL": database_url,
        # One machine: both nodes share the data folder (local photos, the museum's logo, artwork caches).
        "ARTBOOTH_DATA_DIR": str(data_dir),
        "ARTBOOTH_MODELS_DIR": str(models_dir),
        "ARTBOOTH_HOST": "127.0.0.1",
        "ARTBOOTH_PORT": str(port),
        "ARTBOOTH_NODE_NAME": name,
        # Links and QR codes point at the proxy, the one address booths and phones know.
        "ARTBOOTH_PUBLIC_URL": public_url,
        "ARTBOOTH_TLS": "off",
        # No capture happens here: web nodes (they would queue captures for workers) start without
        # compose workers and their models.
        "ARTBOOTH_SERVE_ROLE": "web",
    }
    return start_artbooth(name, ["serve"], environ, log_folder)


def _stop(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # whatever of it is left, its compose workers included
    process.wait()


async def _answers(client: aiohttp.ClientSession, url: str, process: subprocess.Popen, log: Path) -> dict:
    """The JSON of ``url`` once it answers 200, while ``process`` runs."""
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        assert process.poll() is None, f"exited with {process.returncode}:\n{_log_tail(log)}"
        with contextlib.suppress(aiohttp.ClientError):
            async with client.get(url) as response:
                if response.status == 200:
                    return await response.json()
        await asyncio.sleep(0.2)
    pytest.fail(f"{url} did not answer within {START_DEADLINE_S} s:\n{_log_tail(log)}")


def _start_proxy(nginx: str, folder: Path, *, listen: str, nodes: list[str]) -> subprocess.Popen:
    """Debian's nginx on the template with its placeholders filled in, inside a main config of the
    test's own: pid, logs and temporary files in ``folder`` (not Debian's /run and /var), so it runs
    as the test's user; its error log is ``folder``/error.log."""
    site = TEMPLATE.read_text().replace("@LISTEN@", listen).replace("@NODE_1@", nodes[0]).replace("@NODE_2@", nodes[1])
    site = site.replace("/var/log/nginx/artbooth.log", str(folder / "artbooth.log"))
    assert not re.search(r"@[A-Z0-9_]+@", site), "a placeholder of the template was left unfilled"
    (folder / "artbooth.conf").write_text(site)
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temporary = [f"    {kind}_temp_path {folder / kind};" for kind in kinds]
    # As root, nginx's workers would run as nobody, who may not enter the test's folders.
    user = [f"user {pwd.getpwuid(os.geteuid()).pw_name};"] if os.geteuid() == 0 else []
    config = folder / "nginx.conf"
    config.write_text(
        "\n".join([
            *user,
            f"pid {folder / 'nginx.pid'};",
            f"error_log {folder / 'error.log'};",
            "events {}",
            "http {",
            f"    access_log {folder / 'access.log'};",
            *temporary,
            f"    include {folder / 'artbooth.conf'};",
            "}",
        ])
        + "\n"
    )
    log = folder / "error.log"
    with log.open("ab") as output:  # appending, as nginx's own writes to it do
        return subprocess.Popen(
            [nginx, "-p", str(folder), "-c", str(config), "-e", str(log), "-g", "daemon off;"],
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )


async def _heartbeat(booth: aiohttp.ClientSession, proxy: str, kiosk_id: str) -> None:
    async with booth.post(f"{proxy}/api/kiosks/{kiosk_id}/heartbeat", json={"camera": "ok"}) as response:
        assert response.status == 200, f"{kiosk_id}: {response.status} {await response.text()}"


async def _stats(booth: aiohttp.ClientSession, proxy: str, kiosk_id: str) -> dict:
    async with booth.get(f"{proxy}/api/kiosks/{kiosk_id}/stats") as response:
        assert response.status == 200, f"{kiosk_id}: {response.status} {await response.text()}"
        return await response.json()


async def _nodes_that_saw(sessions: SessionFactory) -> dict[str, set[str]]:
    """Every booth's nodes: those that ever answered its page, heartbeat or offer (which note it alive)."""
    async with sessions() as session:
        rows = await session.execute(select(KioskPresenceRow.kiosk_id, KioskPresenceRow.node))
    seen: dict[str, set[str]] = defaultdict(set)
    for kiosk_id, node in rows:
        seen[kiosk_id].add(node)
    return seen


async def test_booths_stick_to_one_node_and_move_to_the_other_when_theirs_dies(tmp_path, models_dir):
    nginx = _nginx()  # first: without it, nothing else is worth starting
    async with contextlib.AsyncExitStack() as stack:
        database_url = await stack.enter_async_context(scratch_postgres_database(os.environ[POSTGRES_ENV]))
        engine = create_engine(database_url)
        stack.push_async_callback(engine.dispose)
        sessions = create_session_factory(engine)

        proxy = f"http://127.0.0.1:{unused_port()}"
        ports = {name: unused_port() for name in NODES}
        processes: dict[str, Process] = {}
        for name in NODES:  # started together, as a site's nodes may be (their schema upgrades take turns)
            processes[name] = _start_node(
                name, ports[name], database_url=database_url, data_dir=tmp_path / "data", models_dir=models_dir,
                public_url=proxy, log_folder=tmp_path,
            )
            stack.callback(_stop, processes[name].process, signal.SIGTERM)

        proxy_folder = tmp_path / "nginx"
        proxy_folder.mkdir()
        upstream = [f"127.0.0.1:{ports[name]}" for name in NODES]
        proxy_process = _start_proxy(nginx, proxy_folder, listen=proxy.removeprefix("http://"), nodes=upstream)
        stack.callback(_stop, proxy_process, signal.SIGQUIT)  # SIGQUIT: nginx's graceful stop

        client = await stack.enter_async_context(aiohttp.ClientSession())
        for name in NODES:
            health = await _answers(client, f"http://127.0.0.1:{ports[name]}/healthz", processes[name].process, processes[name].log)
            assert health["node"] == name
        assert (await _answers(client, f"{proxy}/healthz", proxy_process, proxy_folder / "error.log"))["node"] in NODES

        # Booths paired through the proxy, as staff pair them, until each node holds some.
        pinned: dict[str, str] = {}  # kiosk id -> its node
        clients: dict[str, aiohttp.ClientSession] = {}
        for number in range(BOOTHS_AT_MOST):
            kiosk_id = f"booth-{number}"
            clients[kiosk_id] = booth = await stack.enter_async_context(booth_client())
            await pair(booth, await pairing_link_at(sessions, URL(proxy), kiosk_id))
            await _heartbeat(booth, proxy, kiosk_id)
            [pinned[kiosk_id]] = (await _nodes_that_saw(sessions))[kiosk_id]  # where its first heartbeat went
            if all(list(pinned.values()).count(name) >= BOOTHS_PER_NODE for name in NODES):
                break
        on_node = {name: [kiosk_id for kiosk_id, node in pinned.items() if node == name] for name in NODES}
        assert all(len(on_node[name]) >= BOOTHS_PER_NODE for name in NODES), f"the booths did not spread: {on_node}"

        # Each booth's page, heartbeats and stats keep reaching its one node.
        for kiosk_id, booth in clients.items():
            async with booth.get(f"{proxy}/kiosk/{kiosk_id}") as response:
                assert response.status == 200
            for _ in range(HEARTBEATS_EACH):
                await _heartbeat(booth, proxy, kiosk_id)
            assert (await _stats(booth, proxy, kiosk_id))["node"] == pinned[kiosk_id]
        assert await _nodes_that_saw(sessions) == {kiosk_id: {node} for kiosk_id, node in pinned.items()}

        # A visitor's download link (a made-up token here: it answers 404) goes through too.
        token = "T0ken-of-a-visitor-" + "x" * 13
        async with client.get(f"{proxy}/p/{token}/photo.jpg") as response:
            assert response.status == 404

        # The first node dies; its booths' next requests through the proxy reach the other, at once.
        dead, survivor = NODES
        processes[dead].process.kill()
        processes[dead].process.wait()
        for kiosk_id in on_node[dead]:
            booth = clients[kiosk_id]
            await _heartbeat(booth, proxy, kiosk_id)
            async with booth.get(f"{proxy}/kiosk/{kiosk_id}") as response:
                assert response.status == 200  # the booth's page loads again after a reload
            stats = await _stats(booth, proxy, kiosk_id)
            assert stats["node"] == survivor and stats["online"] and stats["camera"] == "ok"
        # The survivor's own booths did not move.
        for kiosk_id in on_node[survivor]:
            await _heartbeat(clients[kiosk_id], proxy, kiosk_id)
        seen = await _nodes_that_saw(sessions)
        assert all(seen[kiosk_id] == {survivor} for kiosk_id in on_node[survivor]), seen
        assert all(seen[kiosk_id] == {dead, survivor} for kiosk_id in on_node[dead]), seen

        # With no node left, booths hear "try again" (a booth's capture does, with the same capture id).
        processes[survivor].process.kill()
        processes[survivor].process.wait()
        kiosk_id = on_node[survivor][0]
        async with clients[kiosk_id].post(f"{proxy}/api/kiosks/{kiosk_id}/heartbeat", json={}) as response:
            assert response.status == 503 and response.headers["Retry-After"] == "2"

        # The proxy's access log has every request, and no secret: no pairing code, no download token.
        logged = (proxy_folder / "artbooth.log").read_text()
        assert logged.count("/kiosk/booth-0/pair") == 2 and "code=" not in logged and "?" not in logged
        assert '"GET /p/TOKEN/photo.jpg" 404' in logged and token not in logged
