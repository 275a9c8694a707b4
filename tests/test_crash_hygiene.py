"""Crashes and outages, as an operator meets them: the server killed with kill -9 while it saves
photos, a photos folder that turns read-only, a database that cannot be read, a start without a
database. Afterwards nothing is lost and nothing is left: no rows without files, no files without
rows, no temporary files, no processes of the killed server.

Everything runs on loopback against the real service: `artbooth serve` in a subprocess for the
kills, the app in-process (tests/servers.py) for the outages. As root, permissions stop nothing,
so the read-only folder is made immutable (chattr +i) when the tests run as root.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from aiohttp.test_utils import unused_port
from sqlalchemy import select

from api_helpers import ADMIN, CHEAP_HASHES, add_staff, bearer, browser, new_token, sign_in
from db.engine import DATABASE_FILE
from db.models import PhotoRow
from db.service import ORPHAN_GRACE
from imagefiles import encoded
from kiosk.artworks import ArtworkLibrary
from kiosk.catalogue import ArtworkCatalogue
from kiosk.errors import ExitCode
from kiosk.storage import Storage
from servers import loopback_settings, running
from web.keys import STORAGE_KEY

ARTBOOTH = str(Path(sys.executable).with_name("artbooth"))
ARTWORK = "demo-golden-meadow"
REPORT = {"framing": "half-body", "people": 1, "timings_ms": {"faces": 10.0}, "score": 0.5}
DELETE_PENDING = "could not remove the files now; it will be finished automatically"
# Generous: the machine is shared, and each start loads the models.
START_DEADLINE_S = 180
GONE_DEADLINE_S = 20


def _picture(seed: int) -> bytes:
    return encoded(np.random.default_rng(seed).integers(0, 255, (120, 160, 3), dtype=np.uint8))


def _stored_files(photos_dir: Path) -> list[Path]:
    return [path for path in photos_dir.rglob("*") if path.is_file()] if photos_dir.exists() else []


def _photo_rows(data_dir: Path) -> list[tuple[str, str, list[str]]]:
    """(id, status, file keys) of every photo row, read with SQLite itself."""
    with contextlib.closing(sqlite3.connect(data_dir / DATABASE_FILE)) as db:
        rows = db.execute("SELECT id, status, result_key, thumbnail_key, raw_key FROM photos").fetchall()
    return [(photo_id, status, [key for key in keys if key]) for photo_id, status, *keys in rows]


@contextlib.contextmanager
def unwritable(folder: Path) -> Iterator[None]:
    """Make ``folder`` and every folder in it refuse changes, to root as well: nothing in them can
    be created, renamed or removed until the block ends."""
    folders = [folder, *(path for path in folder.rglob("*") if path.is_dir())]
    if os.geteuid() == 0:
        # Root ignores permissions; the immutable attribute binds root too (ext4, xfs, btrfs...).
        done = subprocess.run(["chattr", "+i", *map(str, folders)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.fail(f"cannot make {folder} read-only for root with chattr +i: {done.stderr.strip()}")
        undo = ["chattr", "-i", *map(str, folders)]
    else:
        for path in folders:
            path.chmod(0o555)
        undo = None
    try:
        with pytest.raises(PermissionError):
            (folder / "probe").write_bytes(b"")
        yield
    finally:
        if undo is not None:
            subprocess.run(undo, check=True)
        else:
            for path in folders:
                path.chmod(0o755)


# --- the store and retention --------------------------------------------------------------------


async def test_retention_removes_temporary_files_of_interrupted_writes_once_they_are_old(settings):
    storage = await Storage.open(settings)
    try:
        await ArtworkCatalogue(storage, ArtworkLibrary(settings)).sync()  # as the service starts
        saved = await storage.save(_picture(1), REPORT, artwork_id=ARTWORK)
        photos_dir = settings.resolved_photos_dir
        key_file = next(path for path in _stored_files(photos_dir) if path.name.endswith(".jpg"))
        # What a kill between writing and renaming leaves: a whole photo under a temporary name.
        interrupted = key_file.with_name(f".{'ab' * 16}.jpg.k3x_9q.tmp")
        interrupted.write_bytes(key_file.read_bytes())
        long_ago = time.time() - ORPHAN_GRACE.total_seconds() - 60
        os.utime(interrupted, (long_ago, long_ago))
        in_progress = key_file.with_name(f".{'cd' * 16}.jpg.p0w_2z.tmp")  # a save writing right now
        in_progress.write_bytes(b"half a photo")
        not_ours = key_file.with_name("notes.tmp")
        not_ours.write_bytes(b"someone else's")
        os.utime(not_ours, (long_ago, long_ago))

        report = await storage.run_retention()

        assert report.orphaned_files_deleted == 1
        assert not interrupted.exists() and in_progress.exists() and not_ours.exists()
        async with storage.sessions() as session:
            assert (await session.scalars(select(PhotoRow.id))).all() == [saved.photo_id]
    finally:
        await storage.close()


# --- kill -9 during saves -----------------------------------------------------------------------


def _processes() -> dict[int, tuple[int, bytes]]:
    """Every process: pid -> (parent pid, environment)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue  # ended while we looked
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        found[int(entry.name)] = (parent, environ)
    return found


def _processes_of(data_dir: Path) -> set[int]:
    """The processes started for the test's data folder: the server and whatever it started."""
    marker = f"ARTBOOTH_DATA_DIR={data_dir}\0".encode()
    return {pid for pid, (_, environ) in _processes().items() if marker in environ + b"\0"}


def _children(pid: int) -> set[int]:
    return {child for child, (parent, _) in _processes().items() if parent == pid}


async def _wait_until_serving(server: subprocess.Popen, url: str) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    async with aiohttp.ClientSession() as client:
        while time.monotonic() < deadline:
            assert server.poll() is None, f"the server exited with {server.returncode}"
            with contextlib.suppress(aiohttp.ClientError):
                async with client.get(f"{url}/api/artworks") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.2)
    pytest.fail(f"the server did not answer within {START_DEADLINE_S} s")


async def _compose_until_killed(url: str, photo: bytes, answered: list[str]) -> None:
    async with aiohttp.ClientSession() as client:
        while True:
            form = aiohttp.FormData()
            form.add_field("artwork", ARTWORK)
            form.add_field("photo", photo, filename="me.jpg", content_type="image/jpeg")
            try:
                async with client.post(f"{url}/api/compose", data=form) as response:
                    if response.status == 200:
                        answered.append((await response.json())["photo_id"])
                    else:
                        await response.read()
                        await asyncio.sleep(0.1)  # busy: the other stream's photo is being composed
            except aiohttp.ClientError:
                return  # the server is gone


def _temporary_files(photos_dir: Path) -> list[Path]:
    return list(photos_dir.glob("??/??/.*.tmp")) if photos_dir.exists() else []


async def test_kill_9_during_saves_leaves_no_processes_and_retention_leaves_no_debris(tmp_path, models_dir, astronaut):
    data_dir = tmp_path / "killed"
    photos_dir = data_dir / "photos"
    port = unused_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "ARTBOOTH_DATA_DIR": str(data_dir),
        "ARTBOOTH_MODELS_DIR": str(models_dir),
        "ARTBOOTH_PORT": str(port),
        "ARTBOOTH_PUBLIC_URL": url,
        "ARTBOOTH_COMPOSE_WORKERS": "1",
        "ARTBOOTH_PUBLIC_UPLOAD": "true",  # its saves go through /api/compose, off by default
        # Each start only loads the models (as tests/servers.py's do): the warm-up's generated photo
        # and the matte's edge-band solve (pymatting) cost seconds a start and the kills test neither.
        "ARTBOOTH_COMPOSE_WARM_UP": "false",
        "ARTBOOTH_MATTING_BAND_SOLVE": "false",
    }
    photo = encoded(astronaut, "JPEG", quality=90)
    answered: list[str] = []  # photos whose links visitors got: none may be lost
    started: set[int] = set()
    # The first kill, on a fresh store; the second, on a server started over the first's debris.
    rounds = 2
    try:
        for round_number in range(rounds):
            server = subprocess.Popen(
                [ARTBOOTH, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            started.add(server.pid)
            await _wait_until_serving(server, url)
            helpers = _children(server.pid)
            started |= helpers
            assert len(helpers) >= 2, "the compose worker and the resource tracker run beside the server"

            debris = set(_temporary_files(photos_dir))
            streams = [asyncio.create_task(_compose_until_killed(url, photo, answered)) for _ in range(2)]
            if not answered:  # first, one photo whose link was handed out, to check nothing was lost
                deadline = time.monotonic() + 120
                while not answered and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                assert answered, "no photo was saved"
            # Kill while a photo is being written, when we catch one at it (a new temporary file in the
            # store), else at the deadline, mid-composition.
            deadline = time.monotonic() + 30
            while not set(_temporary_files(photos_dir)) - debris and time.monotonic() < deadline:
                await asyncio.sleep(0.002)
            server.send_signal(signal.SIGKILL)
            server.wait()
            await asyncio.gather(*streams)

            deadline = time.monotonic() + GONE_DEADLINE_S
            while (left := _processes_of(data_dir)) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert not left, f"round {round_number + 1}: processes of the killed server still run: {sorted(left)}"

        # An hour later (ORPHAN_GRACE: never the files of a save in progress), one retention run, as cron does.
        long_ago = time.time() - ORPHAN_GRACE.total_seconds() - 60
        for path in _stored_files(photos_dir):
            os.utime(path, (long_ago, long_ago))
        done = subprocess.run(
            [ARTBOOTH, "retention", "run", "--json"], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr

        rows = _photo_rows(data_dir)
        keys = {key for _, _, row_keys in rows for key in row_keys}
        files = {path.name for path in _stored_files(photos_dir)}
        assert {status for _, status, _ in rows} <= {"ready"}
        assert files == keys, f"files without rows: {files - keys}; rows without files: {keys - files}"
        assert not _temporary_files(photos_dir)
        assert set(answered) <= {photo_id for photo_id, _, _ in rows}, "a photo whose link was handed out was lost"
    finally:
        for pid in started:  # only if an assertion failed midway: nothing of ours may outlive the test
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# --- a read-only photos folder ------------------------------------------------------------------


async def test_deletes_in_a_read_only_photos_folder_answer_503_and_retention_finishes_them(tmp_path, models_dir):
    settings = loopback_settings(tmp_path / "data", models_dir, **CHEAP_HASHES)
    async with running(settings) as server, browser() as staff_browser, aiohttp.ClientSession() as client:
        storage = server.app[STORAGE_KEY]
        await add_staff(server)
        csrf = await sign_in(staff_browser, server, ADMIN)
        api_token = await new_token(server, "photos:read", "photos:write")
        by_visitor, by_api, by_staff, kept = [
            await storage.save(_picture(seed), REPORT, artwork_id=ARTWORK) for seed in range(4)
        ]
        files_before = {path.name for path in _stored_files(settings.resolved_photos_dir)}

        with unwritable(settings.resolved_photos_dir):
            async with client.post(f"{by_visitor.url}/delete") as response:
                assert response.status == 503 and response.content_type == "text/html"
                assert DELETE_PENDING in await response.text()
                assert int(response.headers["Retry-After"]) > 0
                assert response.headers["Cache-Control"] == "private, no-store"
            api_photo = server.make_url(f"/api/v1/photos/{by_api.photo_id}")
            async with client.delete(api_photo, headers=bearer(api_token)) as response:
                assert response.status == 503 and response.content_type == "application/problem+json"
                problem = await response.json()
                assert DELETE_PENDING in problem["detail"] and problem["code"] == "delete_pending"
                assert "Retry-After" in response.headers
            async with staff_browser.post(
                server.make_url(f"/staff/photos/{by_staff.photo_id}/delete"),
                data={"csrf_token": csrf},
                allow_redirects=False,
            ) as response:
                assert response.status == 503 and DELETE_PENDING in await response.text()

            # Hidden at once for everyone; nothing lost meanwhile.
            async with client.get(by_visitor.url) as response:
                assert response.status == 410
            async with client.get(api_photo, headers=bearer(api_token)) as response:
                assert response.status == 404
            async with client.get(kept.url) as response:
                assert response.status == 200
            assert {path.name for path in _stored_files(settings.resolved_photos_dir)} == files_before

            still_read_only = await storage.run_retention()
            assert (still_read_only.photos_deleted, still_read_only.photos_failed) == (0, 3)

        finished = await storage.run_retention()  # writable again: the service's own next run
        assert (finished.photos_deleted, finished.photos_failed) == (3, 0)
        async with storage.sessions() as session:
            assert (await session.scalars(select(PhotoRow.id))).all() == [kept.photo_id]
        kept_files = {path.name for path in _stored_files(settings.resolved_photos_dir)}
        assert len(kept_files) == 2 and kept_files < files_before  # the kept photo and its thumbnail
        for deleted in (by_visitor, by_api, by_staff):
            async with client.get(deleted.url) as response:
                assert response.status == 410
        async with client.get(kept.url) as response:
            assert response.status == 200


# --- an unreadable database ---------------------------------------------------------------------


async def test_with_the_database_unreadable_every_page_answers_503_not_500(tmp_path, models_dir):
    # 60 booths' pages at once from this one address: more than one address may ask at once by default.
    settings = loopback_settings(
        tmp_path / "data", models_dir, **CHEAP_HASHES, ARTBOOTH_PUBLIC_CONCURRENT_REQUESTS="64"
    )
    async with running(settings) as server, browser() as staff_browser, aiohttp.ClientSession() as client:
        storage = server.app[STORAGE_KEY]
        await add_staff(server)
        await sign_in(staff_browser, server, ADMIN)
        api_token = await new_token(server, "photos:read")
        saved = await storage.save(_picture(7), REPORT, artwork_id=ARTWORK)

        # The database file becomes unreadable: moved away, with a folder in its place, and the
        # connections the service had open closed (as a restarted database server closes them).
        database = settings.data_dir / DATABASE_FILE
        for path in list(database.parent.glob(f"{DATABASE_FILE}*")):
            path.rename(tmp_path / path.name)
        database.mkdir()
        await storage.engine.dispose()

        booth_pages = await asyncio.gather(*(client.get(server.make_url("/kiosk/hall")) for _ in range(60)))
        for response in booth_pages:
            assert response.status == 503, (response.status, await response.text())
            assert "cannot reach its database" in await response.text()
            assert response.content_type == "text/html" and int(response.headers["Retry-After"]) > 0
            response.release()

        for path in ("/", "/p/" + saved.url.rsplit("/", 1)[1]):
            async with client.get(server.make_url(path)) as response:
                assert (response.status, response.content_type) == (503, "text/html"), path
        async with staff_browser.get(server.make_url("/staff/photos")) as response:
            assert (response.status, response.content_type) == (503, "text/html")
        async with client.get(server.make_url("/api/artworks")) as response:
            assert (response.status, response.content_type) == (503, "application/json")
            assert (await response.json())["code"] == "database_unavailable"
        async with client.get(server.make_url("/api/v1/photos"), headers=bearer(api_token)) as response:
            assert (response.status, response.content_type) == (503, "application/problem+json")
            assert (await response.json())["code"] == "database_unavailable"

        # Back: the same service answers again, nothing lost.
        database.rmdir()
        for path in list(tmp_path.glob(f"{DATABASE_FILE}*")):
            path.rename(database.parent / path.name)
        async with client.get(saved.url) as response:
            assert response.status == 200


# --- a start without a database -----------------------------------------------------------------


def test_serve_without_a_usable_database_fails_in_one_line_before_serving(tmp_path, models_dir):
    data_dir = tmp_path / "data"
    (data_dir / DATABASE_FILE).mkdir(parents=True)  # a folder where the database file should be
    env = {
        **os.environ,
        "ARTBOOTH_DATA_DIR": str(data_dir),
        "ARTBOOTH_MODELS_DIR": str(models_dir),
        "ARTBOOTH_PORT": str(unused_port()),
    }
    done = subprocess.run([ARTBOOTH, "serve"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == ExitCode.DATABASE_UNAVAILABLE, done.stderr
    assert "Traceback" not in done.stderr and "serving on" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("artbooth: error: cannot use the database"), done.stderr
