"""Compositions queued on PostgreSQL for `artbooth worker` processes (issue 14; serve --role web).

procrastinate keeps the queue: jobs, their priorities (booth captures before API compositions
before staff's re-runs and tries), retries, and the workers' heartbeats, all in PostgreSQL.
A serve node writes the camera's still to the photo store, records the job (db/capture_jobs.py)
and queues it, then waits for the worker's NOTIFY, looking now and then in case one was lost.
The worker (kiosk/queue_worker.py) composes and, for a visitor's photo, stores it under keys
derived from the job's id, with the link whose token the waiting node holds: a job run twice
(its worker was killed) stores one photo, and a photo is stored even when the node that queued
it died meanwhile. A booth whose node died asks another node with the same capture id and gets a
fresh link to that photo.

With SQLite (the embedded default), or `serve --role all`, nothing of this runs: the node composes
in its own worker processes (kiosk/workers.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import secrets
import uuid
from datetime import datetime, timedelta, timezone
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import procrastinate
import psycopg
from procrastinate.schema import SchemaManager
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from db import capture_jobs, service
from db.capture_jobs import CAPTURES_CHANNEL, CaptureJob
from db.notify import NotificationListener, asyncpg_dsn
from db.store import derived_key
from kiosk.artworks import ArtworkSource
from kiosk.errors import ArtBoothError, ExitCode, StorageFailedError
from kiosk.looks import Harmonization
from kiosk.museum import MuseumIdentity
from kiosk.settings import Settings
from kiosk.storage import SavedDownload, Storage
from kiosk.workers import ComposeOutcome, PoolBusyError

log = logging.getLogger(__name__)

CAPTURE_QUEUE = "captures"
COMPOSE_TASK = "artbooth.compose"
# Higher runs first: a visitor waits at the booth; an integrator's program can wait a little;
# staff trying settings wait last.
PRIORITIES = {"booth": 30, "api": 20, "staff": 10}
# Held while one process creates procrastinate's tables, so two starting at once do not both try.
_SCHEMA_LOCK_KEY = int.from_bytes(hashlib.sha256(b"artbooth procrastinate schema").digest()[:4], "big")


def queue_app(url: URL) -> procrastinate.App:
    """The procrastinate app on the service's PostgreSQL database (``url``, the storage engine's)."""
    return procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=asyncpg_dsn(url), min_size=1, max_size=4),
    )


async def ensure_queue_schema(url: URL) -> None:
    """Create procrastinate's tables unless they exist (the first node or worker to start does).
    procrastinate is pinned (pyproject.toml): a new version may bring migrations of its own."""
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK_KEY)
            if await connection.fetchval("SELECT to_regclass('procrastinate_jobs')") is None:
                await connection.execute(SchemaManager.get_schema())
                log.info("created the capture queue's tables (procrastinate)")
    finally:
        await connection.close()


def deferrer(queue: procrastinate.App, job_id: str, source: str) -> Callable[[Any], Awaitable[int]]:
    """What queues the job, at ``source``'s priority, on the connection whose transaction records it
    (capture_jobs.queue_job)."""

    def defer(connection) -> Awaitable[int]:
        task = queue.configure_task(COMPOSE_TASK, queue=CAPTURE_QUEUE, priority=PRIORITIES[source], connection=connection)
        return task.defer_async(job_id=job_id)

    return defer


def booth_job_id(kiosk_id: str, capture_id: str) -> str:
    """The job (and photo) id of a booth's capture: the booth's own capture id, hashed with the
    kiosk's, so a booth asking again reaches its own capture and no one else's."""
    return hashlib.sha256(f"{kiosk_id}\0{capture_id}".encode()).hexdigest()[:32]


class QueuedComposer:
    """What a `serve --role web` node composes with: the compose pool's interface, each composition
    queued for the workers."""

    def __init__(self, settings: Settings, storage: Storage) -> None:
        self._storage = storage
        self._node = settings.resolved_node_name
        self._queue = queue_app(storage.engine.url)
        self._engine = capture_jobs.queue_engine(storage.engine.url)
        self.harmonization = Harmonization.from_settings(settings)
        # Workers load the museum's identity themselves, for each job (the settings and logo are in the
        # database they share); this node's copy serves its pages and its logo route.
        self.identity: MuseumIdentity | None = None
        # Jobs this node waits for: woken by their NOTIFY (or any reconnect), each looks at its row.
        self._waiting: dict[str, asyncio.Event] = {}
        self._listener: asyncio.Task | None = None

    def use_identity(self, identity: MuseumIdentity) -> None:
        self.identity = identity

    def use_harmonization(self, settings: Settings) -> None:
        self.harmonization = Harmonization.from_settings(settings)

    async def warm_up(self) -> list[dict[str, object]]:
        """Open the queue (its tables made if this is the first process) and start hearing results."""
        await ensure_queue_schema(self._storage.engine.url)
        await self._queue.open_async()
        listener = NotificationListener(
            self._storage.engine.url,
            CAPTURES_CHANNEL,
            self._heard,
            name=f"captures {self._node}",
            max_retry_s=self._storage.settings.settings_listen_retry_max_seconds,
        )
        self._listener = asyncio.create_task(listener.run(), name="capture results")
        return []

    @property
    def broken(self) -> bool:
        """Never: the workers are other processes, and a dead one's job goes to another."""
        return False

    def prepare(self, artwork: ArtworkSource, *, painted: bool) -> None:
        """Nothing: which worker takes the next capture is the queue's choice; each worker keeps the
        styles and reference regions it computed (stylize_style_cache_size), so an artwork costs them
        once per worker."""

    async def prepared(self) -> None:
        """At once: nothing is readied here (prepare)."""

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        await self._queue.close_async()
        await self._engine.dispose()

    async def compose(
        self, photo_bytes: bytes, artwork: ArtworkSource, *, harmonization: Harmonization | None = None
    ) -> ComposeOutcome:
        """The picture only (staff re-run a photo, or try an artwork's settings), at staff's priority."""
        job_id = uuid.uuid4().hex
        await self._queue_job(
            job_id, "image", "staff", photo_bytes, artwork, harmonization or self.harmonization, kiosk_id=None, language=None
        )
        job = await self._finished(job_id)
        if job.state == capture_jobs.FAILED:
            return _refused(job)
        store = self._storage.store
        encoded = await store.get(job.result_key)
        await store.delete(job.result_key)
        await capture_jobs.forget_result(self._storage.sessions, job_id)
        return ComposeOutcome(encoded, job.report)

    async def compose_photo(
        self,
        photo_bytes: bytes,
        artwork: ArtworkSource,
        *,
        harmonization: Harmonization | None = None,
        kiosk_id: str | None = None,
        language: str | None = None,
        capture_id: str | None = None,
    ) -> tuple[ComposeOutcome, SavedDownload | None]:
        """Queue the photo, wait for the worker to store it, and answer with its link. A booth's
        ``capture_id`` (its own, per press of the button) makes asking again safe: the same job is
        waited for, or its photo linked, whichever node is asked."""
        job_id = booth_job_id(kiosk_id, capture_id) if kiosk_id and capture_id else uuid.uuid4().hex
        existing = await capture_jobs.get_job(self._storage.sessions, job_id)
        token = None
        if existing is None:
            token = secrets.token_urlsafe(service.TOKEN_BYTES)
            queued = await self._queue_job(
                job_id,
                "photo",
                "booth" if kiosk_id else "api",
                photo_bytes,
                artwork,
                harmonization or self.harmonization,
                kiosk_id=kiosk_id,
                language=language,
                token_hash=service.hash_token(token),
            )
            if not queued:
                token = None  # another request of the booth's queued it a moment ago
        job = await self._finished(job_id)
        if job.state == capture_jobs.FAILED:
            return _refused(job), None
        return await self._linked(job, token, kiosk_id=kiosk_id, language=language)

    async def _queue_job(
        self,
        job_id: str,
        kind: str,
        source: str,
        photo_bytes: bytes,
        artwork: ArtworkSource,
        harmonization: Harmonization,
        *,
        kiosk_id: str | None,
        language: str | None,
        token_hash: str | None = None,
    ) -> bool:
        """Write the still, record the job and queue it; False when a job with this id was recorded
        already. PoolBusyError when queue_max_waiting jobs wait already."""
        if await capture_jobs.waiting_count(self._storage.sessions) >= self._storage.settings.queue_max_waiting:
            raise PoolBusyError("the booth is busy with other photos; try again in a few seconds")
        still_key = derived_key(job_id, "still")
        await self._storage.store.put_at(still_key, photo_bytes)
        request = {
            # The artwork as the node has it: a draft staff try, or another reference mode, included.
            "artwork": artwork.spec.to_json(),
            "harmonization": dataclasses.asdict(harmonization),
            "language": language,
            "token_hash": token_hash,
        }
        try:
            return await capture_jobs.queue_job(
                self._engine, job_id, kind=kind, source=source, kiosk_id=kiosk_id, node=self._node,
                still_key=still_key, request=request, defer=deferrer(self._queue, job_id, source),
            )
        except (SQLAlchemyError, psycopg.Error) as exc:  # nothing was queued: the booth may ask again
            raise StorageFailedError(f"could not queue the composition ({exc}); try again") from exc

    async def _finished(self, job_id: str) -> CaptureJob:
        """The job once a worker finished it; PoolBusyError after queue_wait_seconds (asking again
        with the same capture id goes on waiting)."""
        settings = self._storage.settings
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.queue_wait_seconds
        woken = self._waiting.setdefault(job_id, asyncio.Event())
        try:
            while True:
                woken.clear()
                job = await capture_jobs.get_job(self._storage.sessions, job_id)
                if job is None:
                    raise StorageFailedError(f"the queued composition {job_id} is gone")
                if job.finished:
                    return job
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise PoolBusyError("the photo is still being composed; try again in a few seconds")
                try:
                    await asyncio.wait_for(woken.wait(), min(settings.queue_poll_seconds, remaining))
                except TimeoutError:
                    pass  # look anyway: a notification can be lost while the listener reconnects
        finally:
            self._waiting.pop(job_id, None)

    async def _heard(self, finished: list[str]) -> None:
        # None heard: the listener (re)connected, and anything may have finished meanwhile.
        for job_id in finished or list(self._waiting):
            if (woken := self._waiting.get(job_id)) is not None:
                woken.set()

    async def _linked(
        self, job: CaptureJob, token: str | None, *, kiosk_id: str | None, language: str | None
    ) -> tuple[ComposeOutcome, SavedDownload | None]:
        """The stored photo and its link: the one the worker made with this node's token, or a new
        one (the booth asked again, here or after its node died)."""
        sessions, store, settings = self._storage.sessions, self._storage.store, self._storage.settings
        photo = await service.get_photo(sessions, job.photo_id)
        if photo is None:
            raise StorageFailedError("the composed photo was deleted meanwhile")
        now = datetime.now(timezone.utc)
        if token is None:
            created = await service.create_link(
                sessions, photo.id, link_ttl=timedelta(hours=settings.download_link_hours),
                actor=f"kiosk {kiosk_id}" if kiosk_id else "api", now=now, language=language,
            )
            if created is None:
                raise StorageFailedError("the composed photo was deleted meanwhile")
            link, token = created
            expires_at = link.expires_at
        else:
            expires_at = (await service.look_up_link(sessions, token, now=now)).link.expires_at
        encoded = await store.get(photo.result_key)
        saved = SavedDownload(
            photo_id=photo.id,
            token=token,
            url=self._storage.download_url(token),
            expires_at=expires_at,
            capture_size=photo.capture_size,
        )
        return ComposeOutcome(encoded, job.report), saved


def _refused(job: CaptureJob) -> ComposeOutcome:
    """A composition the worker refused (no person, an unreadable photo...), as the pool says it."""
    try:
        code = ExitCode[job.error_code]
    except KeyError:
        code = ExitCode.STORAGE_FAILED
    return ComposeOutcome(None, None, code, job.error)


class QueueUnavailableError(ArtBoothError):
    """The queue needs PostgreSQL: `artbooth worker` on SQLite (`serve --role web` is refused by the settings)."""

    exit_code = ExitCode.BAD_SETTINGS
