"""`artbooth worker`: takes queued compositions from PostgreSQL and runs them (kiosk/capture_queue.py).

One composition at a time per process: the models are loaded once and warmed before the first
job is taken, and each job's pipeline runs in a thread, so the event loop goes on sending the
worker's heartbeats to procrastinate. Every worker also looks, each heartbeat, for jobs whose
worker fell silent (killed, out of memory, its machine gone) and hands them back to the queue;
a job is run at most queue_max_attempts times. Start as many workers as the machines' cores
allow: each holds its models (about 700 MB).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone

import procrastinate
from procrastinate.exceptions import ProcrastinateException
from sqlalchemy.exc import SQLAlchemyError

from db import capture_jobs, service
from db.capture_jobs import CaptureJob
from db.store import StoredFileMissingError, derived_key
from kiosk.artworks import ArtworkLibrary, ArtworkSource
from kiosk.capture_queue import (
    CAPTURE_QUEUE,
    COMPOSE_TASK,
    QueueUnavailableError,
    ensure_queue_schema,
    queue_app,
)
from kiosk.catalogue import ArtworkCatalogue
from kiosk.errors import ArtBoothError, ArtworkNotFoundError, ExitCode, exit_code_for
from kiosk.looks import Harmonization
from kiosk.museum import load_identity
from kiosk.settings import Settings
from kiosk.storage import Storage
from pipeline.errors import PipelineError
from pipeline.types import ArtworkSpec

log = logging.getLogger(__name__)


class JobRunner:
    """Runs one queued composition: the still read from the photo store, composed, and stored as the
    visitor's photo (under keys derived from the job's id) or as the picture staff asked for."""

    def __init__(self, storage: Storage, catalogue: ArtworkCatalogue, engine, name: str) -> None:
        self._storage = storage
        self._catalogue = catalogue
        self._engine = engine
        self.name = name

    async def run(self, context: procrastinate.JobContext, job_id: str) -> None:
        storage = self._storage
        attempt = context.job.attempts + 1
        job = await capture_jobs.start_run(storage.sessions, job_id, worker=self.name, attempt=attempt)
        if job is None:
            return  # finished by an earlier run whose worker died before the queue heard of it
        if attempt > storage.settings.queue_max_attempts:
            await self._finish_failed(job, ExitCode.FAILURE, f"the composition stopped its worker {attempt - 1} times")
            return
        if job.kind == "photo" and await service.get_photo(storage.sessions, job.id) is not None:
            # An earlier run stored the photo, then died before recording it.
            await self._finish(job, photo_id=job.id, report=None)
            return
        log.info("job %s: %s for %s, run %d", job.id, job.kind, job.kiosk_id or job.source, attempt)
        try:
            await self._compose(job)
        except (OSError, SQLAlchemyError) as exc:  # the database or the store failed: retried unless this was the last run
            if attempt >= storage.settings.queue_max_attempts:
                await self._finish_failed(job, ExitCode.STORAGE_FAILED, f"could not store the photo ({exc})")
            raise

    async def _compose(self, job: CaptureJob) -> None:
        storage = self._storage
        await storage.reload_settings()  # staff's dashboard changes, as the serve nodes have them
        try:
            still = await storage.store.get(job.still_key)
            source = await self._source(job)
            harmonization = Harmonization(**job.request["harmonization"])
            identity = await load_identity(storage)
            result = await asyncio.to_thread(
                self._engine.compose, still, source, harmonization=harmonization, identity=identity
            )
        except StoredFileMissingError:
            await self._finish_failed(job, ExitCode.STORAGE_FAILED, "the camera's photo is missing from the photo store")
            return
        except (PipelineError, ArtBoothError) as exc:  # refused (no person, unreadable), as the pool says it
            await self._finish_failed(job, exit_code_for(exc), str(exc))
            return
        report = result.report()
        if job.kind == "photo":
            settings = storage.settings
            await service.save_composition(
                storage.sessions,
                storage.store,
                result_jpeg=result.encoded,
                raw_photo=still,
                keep_raw=settings.keep_raw_photos,
                artwork_id=source.spec.id,
                kiosk_id=job.kiosk_id,
                report=report,
                link_ttl=timedelta(hours=settings.download_link_hours),
                now=datetime.now(timezone.utc),
                max_pixels=settings.max_image_pixels,
                language=job.request.get("language"),
                photo_id=job.id,
                token_hash=job.request["token_hash"],
            )
            await self._finish(job, photo_id=job.id, report=report)
        else:
            result_key = derived_key(job.id, "result")
            await storage.store.put_at(result_key, result.encoded)
            await self._finish(job, result_key=result_key, report=report)

    async def _source(self, job: CaptureJob) -> ArtworkSource:
        """The artwork as the node asked for it (a draft staff try included), its image as stored."""
        spec = ArtworkSpec.from_json(job.request["artwork"])
        record = await service.get_artwork(self._storage.sessions, spec.id)
        if record is None:
            raise ArtworkNotFoundError(f"no artwork {spec.id!r}")
        return ArtworkSource(spec=spec, image_path=await self._catalogue.image_file(record))

    async def _finish(self, job: CaptureJob, **outcome) -> None:
        await capture_jobs.finish_job(self._storage.sessions, job.id, state=capture_jobs.DONE, notify=True, **outcome)
        await self._storage.store.delete(job.still_key)  # kept, where kept, as the photo's raw file
        log.info("job %s done", job.id)

    async def _finish_failed(self, job: CaptureJob, code: ExitCode, message: str) -> None:
        await capture_jobs.finish_job(
            self._storage.sessions, job.id, state=capture_jobs.FAILED, notify=True, error_code=code.name, error=message
        )
        await self._storage.store.delete(job.still_key)
        log.info("job %s refused: %s", job.id, message)


async def hand_back_stalled_jobs(queue: procrastinate.App, settings: Settings) -> None:
    """Until cancelled: jobs whose worker stopped sending heartbeats go back to the queue (another
    worker, or this one, runs them again). Every worker does this; a job only one of them gets back."""
    while True:
        await asyncio.sleep(settings.queue_heartbeat_seconds)
        try:
            stalled = await queue.job_manager.get_stalled_jobs(
                queue=CAPTURE_QUEUE, seconds_since_heartbeat=settings.queue_stalled_seconds
            )
            for job in stalled:
                try:
                    await queue.job_manager.retry_job(job)
                except ProcrastinateException:
                    continue  # another worker handed it back first
                log.warning("job %s's worker %s fell silent: the job goes back to the queue", job.args.get("job_id"), job.worker_id)
        except Exception:
            log.exception("could not look for stalled jobs; trying again")


async def run_worker(settings: Settings) -> None:
    """Load and warm the models, then run queued compositions until SIGINT or SIGTERM."""
    from kiosk.engine import Engine  # torch and the models load only for commands that need them

    if not settings.uses_postgresql:
        raise QueueUnavailableError(
            "artbooth worker takes compositions from a queue on PostgreSQL: set database_url to the "
            "serve nodes' postgresql:// database (with SQLite, serve composes itself)"
        )
    storage = await Storage.open(settings)
    try:
        await ensure_queue_schema(storage.engine.url)
        engine = Engine(settings)
        warm_up_ms = await asyncio.to_thread(engine.warm_up)
        name = settings.resolved_worker_name
        runner = JobRunner(storage, ArtworkCatalogue(storage, ArtworkLibrary(settings)), engine, name)
        queue = queue_app(storage.engine.url)
        # Retried here only when the database or the store failed (the task raised); a refused photo is
        # an ending, recorded, and a killed worker's job is handed back by hand_back_stalled_jobs.
        queue.task(
            name=COMPOSE_TASK,
            queue=CAPTURE_QUEUE,
            pass_context=True,
            retry=procrastinate.RetryStrategy(
                max_attempts=settings.queue_max_attempts - 1,
                wait=settings.queue_stalled_seconds,
                retry_exceptions={OSError, SQLAlchemyError},
            ),
        )(runner.run)
        async with queue.open_async():
            stalled = asyncio.create_task(hand_back_stalled_jobs(queue, settings), name="stalled jobs")
            log.info("worker %s ready (warm-up %s ms): taking compositions from the queue", name, _rounded(warm_up_ms))
            try:
                await queue.run_worker_async(
                    queues=[CAPTURE_QUEUE],
                    name=name,
                    concurrency=1,
                    update_heartbeat_interval=settings.queue_heartbeat_seconds,
                    stalled_worker_timeout=settings.queue_stalled_seconds,
                    delete_jobs="successful",
                    install_signal_handlers=True,
                )
            finally:
                stalled.cancel()
                await asyncio.gather(stalled, return_exceptions=True)
    finally:
        await storage.close()


def _rounded(timings: dict[str, float]) -> dict[str, int]:
    return {stage: round(ms) for stage, ms in timings.items()}

