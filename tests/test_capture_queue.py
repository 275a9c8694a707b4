"""More booths than one machine (issue 14): two `artbooth serve --role web` nodes and two `artbooth
worker`s, real processes sharing one PostgreSQL database and one S3 store (SeaweedFS), all on loopback.

Six booths capture through both nodes while one worker is killed (SIGKILL) in the middle of a job:
every visitor gets a photo, the dead worker's job is run again by the other worker, and nothing is
stored twice. A visitor link made on one node downloads through the other. Then a node is killed
while a capture is queued: the photo is still made, and the booth, asking the other node with the
same capture id, gets it. Between the two, a settings change and a booth's check-in made on one
node show on the other (tests/test_shared_state.py tests both further, in one process).

Without ARTBOOTH_TEST_POSTGRES_URL (a PostgreSQL server) this is skipped, like the other PostgreSQL tests.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
import skimage.data
from aiohttp.test_utils import unused_port
from sqlalchemy import func, select
from yarl import URL

from api_helpers import ADMIN, CHEAP_HASHES, add_staff_to, browser, sign_in
from booth_helpers import booth_client, pair, pairing_link_at
from databases import POSTGRES_ENV, scratch_postgres_database
from db.engine import create_engine, create_session_factory, database_url
from db.models import CaptureJobRow, PhotoRow
from db.service import SessionFactory
from imagefiles import encoded
from kiosk.capture_queue import booth_job_id
from pipeline.codec import decode_image
from processes import Process, start_artbooth, stop, until_logged
from seaweed import SeaweedFS, seaweedfs_server

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(not os.environ.get(POSTGRES_ENV), reason=f"{POSTGRES_ENV} is not set (a PostgreSQL server)"),
]

BUCKET = "site-photos"
START_S = 180  # two workers loading their models at once on a busy CI machine
CAPTURE_S = 180
# The promise for a settings change; presence is read every second here.
SETTINGS_REACH_S = 1.0
PRESENCE_REACH_S = 10.0


@dataclass
class Site:
    nodes: dict[str, URL]
    processes: dict[str, Process]
    sessions: SessionFactory
    seaweedfs: SeaweedFS

    def kill(self, name: str) -> None:
        process = self.processes[name].process
        process.send_signal(signal.SIGKILL)
        process.wait()

    def logs(self) -> str:
        return "\n".join(process.tail() for process in self.processes.values())


@asynccontextmanager
async def _site(root: Path, models_dir: Path) -> AsyncIterator[Site]:
    async with scratch_postgres_database(os.environ[POSTGRES_ENV]) as url, AsyncExitStack() as stack:
        seaweedfs = stack.enter_context(seaweedfs_server(root / "seaweedfs"))
        shared = os.environ | seaweedfs.environ(f"s3://{BUCKET}") | {
            "ARTBOOTH_DATABASE_URL": url,
            "ARTBOOTH_MODELS_DIR": str(models_dir),
            "ARTBOOTH_HOST": "127.0.0.1",
            # As the other servers of the suite (tests/servers.py): no generated photo at start, no band solve.
            "ARTBOOTH_COMPOSE_WARM_UP": "false",
            "ARTBOOTH_MATTING_BAND_SOLVE": "false",
            # A dead worker is noticed after 2 s, not 4: the test waits less.
            "ARTBOOTH_QUEUE_HEARTBEAT_SECONDS": "0.5",
            "ARTBOOTH_QUEUE_STALLED_SECONDS": "2",
            "ARTBOOTH_QUEUE_WAIT_SECONDS": str(CAPTURE_S),
            "ARTBOOTH_PUBLIC_UPLOAD": "true",
            "ARTBOOTH_KIOSK_PRESENCE_READ_SECONDS": "1",
            "ARTBOOTH_KIOSK_PRESENCE_WRITE_SECONDS": "1",
            **CHEAP_HASHES,
        }
        processes: dict[str, Process] = {}
        nodes: dict[str, URL] = {}
        try:
            for name in ("worker-1", "worker-2"):
                folder = root / name
                environ = shared | {"ARTBOOTH_DATA_DIR": str(folder), "ARTBOOTH_WORKER_NAME": name}
                processes[name] = start_artbooth(name, ["worker"], environ, folder)
            for name in ("node-1", "node-2"):
                folder = root / name
                port = unused_port()
                environ = shared | {
                    "ARTBOOTH_DATA_DIR": str(folder),
                    "ARTBOOTH_PORT": str(port),
                    "ARTBOOTH_PUBLIC_URL": f"http://127.0.0.1:{port}",
                    "ARTBOOTH_NODE_NAME": name,
                }
                processes[name] = start_artbooth(name, ["serve", "--role", "web"], environ, folder)
                nodes[name] = URL(f"http://127.0.0.1:{port}")
            for process in processes.values():
                await until_logged(process, "serving on" if process.name.startswith("node") else "ready", START_S)
            engine = create_engine(database_url(root, url))
            stack.push_async_callback(engine.dispose)
            yield Site(nodes, processes, create_session_factory(engine), seaweedfs)
        finally:
            stop(processes.values())


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(tmp_path_factory, models_dir) -> AsyncIterator[Site]:
    async with _site(tmp_path_factory.mktemp("site"), models_dir) as running_site:
        yield running_site


async def _paired(site: Site, kiosk_id: str) -> aiohttp.ClientSession:
    """A booth screen paired through node 1 (its cookie is the same to every node of the site)."""
    client = booth_client()
    await pair(client, await pairing_link_at(site.sessions, site.nodes["node-1"], kiosk_id))
    return client


async def _capture(
    client: aiohttp.ClientSession, node: URL, kiosk_id: str, artwork: str, photo: bytes, capture_id: str
) -> tuple[int, dict]:
    form = aiohttp.FormData()
    form.add_field("artwork", artwork)
    form.add_field("capture_id", capture_id)
    form.add_field("photo", photo, filename="still.jpg", content_type="image/jpeg")
    async with client.post(node / "api" / "kiosks" / kiosk_id / "capture", data=form) as response:
        return response.status, await response.json()


async def _until(check: Callable[[], Awaitable[bool]], within_s: float, what: str, site: Site) -> None:
    deadline = time.monotonic() + within_s
    while not await check():
        assert time.monotonic() < deadline, f"{what}: not within {within_s} s\n{site.logs()}"
        await asyncio.sleep(0.02)


async def _scalar(site: Site, statement):
    async with site.sessions() as session:
        return await session.scalar(statement)


async def _objects(site: Site) -> set[str]:
    async with site.seaweedfs.client() as client:
        listing = await client.list_objects_v2(Bucket=BUCKET)
    return {item["Key"] for item in listing.get("Contents", ())}


async def _photo_keys(site: Site) -> set[str]:
    async with site.sessions() as session:
        rows = await session.execute(select(PhotoRow.result_key, PhotoRow.thumbnail_key, PhotoRow.raw_key))
    return {key for keys in rows for key in keys if key is not None}


async def _download(node: URL, download_url: str) -> bytes:
    """The photo behind a visitor's link, fetched from ``node`` (whichever node made the link)."""
    async with aiohttp.ClientSession() as phone:
        async with phone.get(node.join(URL(URL(download_url).path + "/photo.jpg"))) as response:
            assert response.status == 200 and response.content_type == "image/jpeg", await response.text()
            return await response.read()


class Node:
    """A serve node in another process, as the api_helpers want a server: by its address."""

    def __init__(self, base: URL) -> None:
        self.base = base

    def make_url(self, path: str) -> URL:
        return self.base.join(URL(path))


async def _compose_through_the_api(node: URL, artwork: str, photo: bytes) -> None:
    form = aiohttp.FormData()
    form.add_field("artwork", artwork)
    form.add_field("photo", photo, filename="portrait.jpg", content_type="image/jpeg")
    async with aiohttp.ClientSession() as integrator:
        async with integrator.post(node / "api" / "compose", data=form) as response:
            assert response.status == 200, await response.text()
            answer = await response.json()
    assert answer["image"].startswith("data:image/jpeg;base64,") and answer["report"]["people"] == 1


async def _try_in_the_dashboard(site: Site, node: URL, artwork: str) -> None:
    """Staff try the artwork's settings with the sample portrait: both looks (the demo offers the visitor's choice)."""
    await add_staff_to(site.sessions)
    async with aiohttp.ClientSession() as visitor:
        async with visitor.get(node / "api" / "artworks") as response:
            spec = next(one for one in await response.json() if one["id"] == artwork)
    boxes = {f"{name}-{corner}": str(value) for name, box in spec["boxes"].items() for corner, value in zip(("x0", "y0", "x1", "y1"), box)}
    async with browser() as staff:
        csrf = await sign_in(staff, Node(node), ADMIN)
        form = {"csrf_token": csrf, "title": spec["title"], "artist": spec["artist"], "year": spec["year"],
                "reference_mode": spec["reference_mode"], "enabled": "1", **boxes}
        async with staff.post(node / "staff" / "artworks" / artwork / "try", data=form) as response:
            assert response.status == 200, await response.text()
            page = await response.text()
        tried = re.findall(r'src="(/staff/artwork-tries/[A-Za-z0-9_-]+\.jpg)"', page)
        assert len(tried) == 2, page
        async with staff.get(node.join(URL(tried[0]))) as response:
            assert response.status == 200 and response.content_type == "image/jpeg"


async def _shared_between_the_nodes(site: Site, kiosk_id: str, booth: aiohttp.ClientSession) -> None:
    """A settings change on node 1 takes effect on node 2 within a second; a booth checking in with
    node 1 is online on node 2's Kiosks page."""
    first, second = site.nodes["node-1"], site.nodes["node-2"]
    async with browser() as admin:
        csrf = await sign_in(admin, Node(first), ADMIN)
        form = {"csrf_token": csrf, "museum_name": "Museum of Two Nodes", "museum_accent_colour": "#1a6b3c"}
        async with admin.post(first / "staff" / "museum", data=form, allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"].endswith("notice=saved")

        async def node_2_shows_the_accent() -> bool:
            async with aiohttp.ClientSession() as visitor:
                async with visitor.get(second / "museum" / "identity.css") as response:
                    return "--accent: #1a6b3c;" in await response.text()

        await _until(node_2_shows_the_accent, SETTINGS_REACH_S, "the settings change on node 2", site)
        # The museum's logo too (stored in the database every node and worker shares).
        logo = encoded(np.full((40, 120, 3), (20, 90, 160), np.uint8), "PNG")
        upload = aiohttp.FormData()
        upload.add_field("csrf_token", csrf)
        upload.add_field("logo", logo, filename="logo.png", content_type="image/png")
        async with admin.post(first / "staff" / "museum" / "logo", data=upload, allow_redirects=False) as response:
            assert response.status == 303, await response.text()

        async def node_2_shows_the_logo() -> bool:
            async with aiohttp.ClientSession() as visitor:
                async with visitor.get(second / "museum" / "logo.png") as response:
                    return response.status == 200 and decode_image(await response.read(), max_pixels=10**6).shape == (40, 120, 3)

        await _until(node_2_shows_the_logo, SETTINGS_REACH_S, "the logo on node 2", site)
        async with booth.post(first / "api" / "kiosks" / kiosk_id / "heartbeat", json={"camera": "ok"}) as response:
            assert response.status == 200

        async def online_on_node_2() -> bool:
            async with admin.get(second / "staff" / "kiosks") as response:
                page = await response.text()
            return 'class="online"' in page.split(f'id="kiosk-{kiosk_id}"')[1].split("</section>")[0]

        # The staff session made on node 1 is good on node 2 too: sessions are in the shared database.
        await _until(online_on_node_2, PRESENCE_REACH_S, "the booth online on node 2", site)


async def test_captures_through_two_nodes_survive_a_killed_worker_and_a_killed_node(site):
    async with aiohttp.ClientSession() as visitor:
        async with visitor.get(site.nodes["node-1"] / "api" / "artworks") as response:
            artwork = (await response.json())[0]["id"]
    photo = encoded(skimage.data.astronaut())
    kiosks = [f"queue-booth-{number}" for number in range(6)]
    booths = [await _paired(site, kiosk_id) for kiosk_id in kiosks]
    try:
        # Six visitors press the button at once, three at each node.
        nodes = [site.nodes["node-1" if number % 2 == 0 else "node-2"] for number in range(6)]
        captures = [
            asyncio.create_task(_capture(booth, node, kiosk_id, artwork, photo, uuid.uuid4().hex))
            for booth, node, kiosk_id in zip(booths, nodes, kiosks)
        ]

        async def worker_1_is_composing() -> bool:
            running = select(func.count()).where(
                CaptureJobRow.worker == "worker-1", CaptureJobRow.state == "queued", CaptureJobRow.started_at.is_not(None)
            )
            return await _scalar(site, running) > 0

        await _until(worker_1_is_composing, CAPTURE_S, "worker-1 taking a job", site)
        site.kill("worker-1")
        answers = await asyncio.wait_for(asyncio.gather(*captures), CAPTURE_S)
        assert [status for status, _ in answers] == [200] * 6, f"{answers}\n{site.logs()}"
        photo_ids = {answer["photo_id"] for _, answer in answers}
        assert len(photo_ids) == 6
        assert await _scalar(site, select(func.count()).select_from(PhotoRow)) == 6
        # One result and one thumbnail per photo; no still left behind, none written twice.
        assert await _objects(site) == await _photo_keys(site)
        assert len(await _objects(site)) == 12
        async with site.sessions() as session:
            runs = sorted((await session.execute(select(CaptureJobRow.state, CaptureJobRow.attempts))).all())
        assert runs == [("done", 1)] * 5 + [("done", 2)], "the killed worker's job ran again, once"
        # A visitor's link made on node 1 downloads through node 2, the same picture.
        made_on_node_1 = answers[0][1]
        assert await _download(site.nodes["node-2"], made_on_node_1["download_url"]) == await _download(
            site.nodes["node-1"], made_on_node_1["download_url"]
        )

        # An integrator's composition and staff trying an artwork's settings go through the queue too,
        # at their priorities; staff's pictures are read back and leave no file behind.
        await _compose_through_the_api(site.nodes["node-2"], artwork, photo)
        await _try_in_the_dashboard(site, site.nodes["node-2"], artwork)
        async with site.sessions() as session:
            jobs = Counter((await session.execute(select(CaptureJobRow.source, CaptureJobRow.kind, CaptureJobRow.state))).all())
        assert jobs == {("booth", "photo", "done"): 6, ("api", "photo", "done"): 1, ("staff", "image", "done"): 2}
        assert await _objects(site) == await _photo_keys(site)
        await _shared_between_the_nodes(site, kiosks[1], booths[1])

        # Node 1 dies while a capture it queued waits for the (one remaining) worker.
        kiosk_id, booth, capture_id = kiosks[0], booths[0], uuid.uuid4().hex
        job_id = booth_job_id(kiosk_id, capture_id)
        pending = asyncio.create_task(_capture(booth, site.nodes["node-1"], kiosk_id, artwork, photo, capture_id))

        async def queued() -> bool:
            return await _scalar(site, select(func.count()).where(CaptureJobRow.id == job_id)) == 1

        await _until(queued, CAPTURE_S, "the capture queued by node 1", site)
        site.kill("node-1")
        with pytest.raises(aiohttp.ClientError):
            await pending
        # The booth asks node 2 with the same capture id (kiosk.js does on a dropped connection).
        status, answer = await asyncio.wait_for(
            _capture(booth, site.nodes["node-2"], kiosk_id, artwork, photo, capture_id), CAPTURE_S
        )
        assert status == 200, f"{answer}\n{site.logs()}"
        assert answer["photo_id"] == job_id
        assert await _scalar(site, select(func.count()).select_from(PhotoRow)) == 8
        assert await _download(site.nodes["node-2"], answer["download_url"])
    finally:
        for booth in booths:
            await booth.close()
