"""Capture jobs: what each composition queued for `artbooth worker` is about and how it ended
(kiosk/capture_queue.py; PostgreSQL, serve --role web).

The node that queues a job writes its row (state "queued"); the worker that runs it records the
run (attempts, worker) and the end ("done" with the photo or picture, or "failed" with why) and
announces it with NOTIFY in the same transaction, so the waiting node hears of it exactly when it
can read it. Times are the database's clock, the one every node and worker shares.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from db.engine import CONNECT_TIMEOUT_S, POOL_TIMEOUT_S
from db.models import CaptureJobRow, database_now
from db.notify import announce
from db.service import SessionFactory, _update_count

# The channel a finished job's id is announced on.
CAPTURES_CHANNEL = "artbooth_captures"
QUEUED, DONE, FAILED = "queued", "done", "failed"
# Finished jobs are forgotten after this long (retention): the staff's queue page looks back a week at most.
JOBS_KEPT = timedelta(days=7)


@dataclass(frozen=True)
class CaptureJob:
    id: str
    kind: str
    source: str
    kiosk_id: str | None
    node: str
    worker: str | None
    state: str
    still_key: str
    request: dict[str, Any]
    photo_id: str | None
    result_key: str | None
    report: dict[str, Any] | None
    error_code: str | None
    error: str | None
    attempts: int
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: CaptureJobRow) -> CaptureJob:
        return cls(**{column: getattr(row, column) for column in cls.__dataclass_fields__})

    @property
    def finished(self) -> bool:
        return self.state != QUEUED


async def queue_job(
    engine: AsyncEngine,
    job_id: str,
    *,
    kind: str,
    source: str,
    kiosk_id: str | None,
    node: str,
    still_key: str,
    request: dict[str, Any],
    defer: Callable[[Any], Awaitable[object]],
) -> bool:
    """Record a job and queue it (``defer``, given the transaction's psycopg connection) in one
    transaction: a node that dies in between leaves neither. False, and nothing done, when a job with
    this id exists: the booth asked again for a capture already queued. ``engine`` is a psycopg one
    (queue_engine), the driver procrastinate queues with."""
    row = dict(
        id=job_id, kind=kind, source=source, kiosk_id=kiosk_id, node=node, state=QUEUED, still_key=still_key,
        request=request, attempts=0, queued_at=database_now(),
    )
    async with engine.begin() as connection:
        inserted = await connection.execute(postgresql.insert(CaptureJobRow).values(**row).on_conflict_do_nothing())
        if inserted.rowcount == 0:
            return False
        await defer((await connection.get_raw_connection()).driver_connection)
    return True


def queue_engine(url: URL) -> AsyncEngine:
    """An engine on the service's PostgreSQL database (``url``, the storage engine's) through psycopg."""
    return create_async_engine(
        url.set(drivername="postgresql+psycopg"),
        pool_pre_ping=True,
        pool_size=2,
        pool_timeout=POOL_TIMEOUT_S,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
    )


async def waiting_count(session_factory: SessionFactory) -> int:
    """Jobs no worker has taken yet."""
    async with session_factory() as session:
        waiting = select(func.count()).where(CaptureJobRow.state == QUEUED, CaptureJobRow.started_at.is_(None))
        return await session.scalar(waiting)


async def get_job(session_factory: SessionFactory, job_id: str) -> CaptureJob | None:
    async with session_factory() as session:
        row = await session.get(CaptureJobRow, job_id, populate_existing=True)
        return None if row is None else CaptureJob.from_row(row)


async def start_run(session_factory: SessionFactory, job_id: str, *, worker: str, attempt: int) -> CaptureJob | None:
    """Note that ``worker`` begins run number ``attempt`` of a job still queued; the job, or None
    when it is gone or already finished (a run that finished but whose worker died before the
    queue heard of it)."""
    async with session_factory() as session, session.begin():
        started = update(CaptureJobRow).where(CaptureJobRow.id == job_id, CaptureJobRow.state == QUEUED)
        if not await _update_count(session, started.values(worker=worker, attempts=attempt, started_at=database_now())):
            return None
    return await get_job(session_factory, job_id)


async def finish_job(
    session_factory: SessionFactory,
    job_id: str,
    *,
    state: str,
    notify: bool,
    photo_id: str | None = None,
    result_key: str | None = None,
    report: dict[str, Any] | None = None,
    error_code: str | None = None,
    error: str | None = None,
) -> None:
    """Record how the job ended and, with ``notify`` (PostgreSQL), announce it in the same transaction."""
    values = dict(
        state=state, photo_id=photo_id, result_key=result_key, report=report, error_code=error_code,
        error=None if error is None else error[:2000], finished_at=database_now(),
    )
    async with session_factory() as session, session.begin():
        await session.execute(update(CaptureJobRow).where(CaptureJobRow.id == job_id).values(**values))
        if notify:
            await announce(session, CAPTURES_CHANNEL, job_id)


async def forget_result(session_factory: SessionFactory, job_id: str) -> None:
    """The waiting node read an "image" job's picture (and deleted the file)."""
    async with session_factory() as session, session.begin():
        await session.execute(update(CaptureJobRow).where(CaptureJobRow.id == job_id).values(result_key=None))


async def delete_jobs_queued_before(session_factory: SessionFactory, cutoff: datetime) -> int:
    """Forget finished jobs queued before ``cutoff`` (retention); queued ones stay."""
    async with session_factory() as session, session.begin():
        return await _update_count(
            session, delete(CaptureJobRow).where(CaptureJobRow.queued_at < cutoff, CaptureJobRow.state != QUEUED)
        )


@dataclass(frozen=True)
class LatencyFigures:
    """Jobs finished by one node's requests or one worker, and how long they took."""

    jobs: int = 0
    failed: int = 0
    # Runs beyond the first: a worker died in the job, another ran it again.
    retries: int = 0
    # From queued to finished (what the visitor waits, less the upload), milliseconds; None without jobs.
    p50_ms: float | None = None
    p95_ms: float | None = None
    # From queued to a worker taking it: the queue's own part of the wait.
    wait_p50_ms: float | None = None


@dataclass(frozen=True)
class QueueFigures:
    """The queue as staff see it: what waits now, and how recent jobs went per node and per worker."""

    waiting: dict[str, int] = field(default_factory=dict)  # by source: booth, api, staff
    running: int = 0
    oldest_waiting_s: float | None = None
    nodes: dict[str, LatencyFigures] = field(default_factory=dict)
    workers: dict[str, LatencyFigures] = field(default_factory=dict)


def _percentile(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile; None of nothing."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def _latencies(rows: list[CaptureJobRow]) -> LatencyFigures:
    total = [(row.finished_at - row.queued_at).total_seconds() * 1000 for row in rows]
    waits = [(row.started_at - row.queued_at).total_seconds() * 1000 for row in rows if row.started_at is not None]
    return LatencyFigures(
        jobs=len(rows),
        failed=sum(row.state == FAILED for row in rows),
        retries=sum(max(row.attempts - 1, 0) for row in rows),
        p50_ms=_percentile(total, 0.50),
        p95_ms=_percentile(total, 0.95),
        wait_p50_ms=_percentile(waits, 0.50),
    )


async def queue_figures(session_factory: SessionFactory, *, since_seconds: float, most: int = 5000) -> QueueFigures:
    """What waits now, and the latest ``most`` jobs finished in the last ``since_seconds``, per node and per worker."""
    async with session_factory() as session, session.begin():
        now = await session.scalar(select(database_now()))
        waiting_rows = (
            await session.execute(
                select(CaptureJobRow.source, CaptureJobRow.started_at, CaptureJobRow.queued_at).where(CaptureJobRow.state == QUEUED)
            )
        ).all()
        finished = list(
            await session.scalars(
                select(CaptureJobRow)
                .where(CaptureJobRow.state != QUEUED, CaptureJobRow.finished_at.is_not(None))
                .where(CaptureJobRow.finished_at >= now - func.make_interval(0, 0, 0, 0, 0, 0, since_seconds))
                .order_by(CaptureJobRow.finished_at.desc())
                .limit(most)
            )
        )
    waiting = Counter(source for source, started, _ in waiting_rows if started is None)
    oldest = min((queued for _, started, queued in waiting_rows if started is None), default=None)
    by_node: dict[str, list[CaptureJobRow]] = {}
    by_worker: dict[str, list[CaptureJobRow]] = {}
    for row in finished:
        by_node.setdefault(row.node, []).append(row)
        by_worker.setdefault(row.worker or "?", []).append(row)
    return QueueFigures(
        waiting=dict(waiting),
        running=sum(started is not None for _, started, _ in waiting_rows),
        oldest_waiting_s=None if oldest is None else max((now - oldest).total_seconds(), 0.0),
        nodes={node: _latencies(rows) for node, rows in sorted(by_node.items())},
        workers={worker: _latencies(rows) for worker, rows in sorted(by_worker.items())},
    )
