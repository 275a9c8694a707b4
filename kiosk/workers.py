"""The capture pipeline in a pool of worker processes, so the event loop never runs it.

Each worker loads the models once (the pool's initializer) and keeps its `Engine` in a
process-wide slot: that is the only way a ProcessPoolExecutor task can reach per-worker
state. Results and errors come back as plain data, because our exception classes carry
their own constructors and would not unpickle in the parent.

A worker dies with the service: killed outright (kill -9, the OOM killer), the service cannot
stop its workers, and an orphaned worker would hold its models' memory (about 460 MB) and the
multiprocessing resource tracker's pipe (so the tracker stays too) until someone notices. The
kernel's parent-death signal ends them instead (`_die_with_parent`).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import time
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from kiosk.artworks import ArtworkSource
from kiosk.errors import ArtBoothError, ExitCode, exit_code_for
from kiosk.looks import Harmonization
from kiosk.museum import MuseumIdentity
from kiosk.settings import Settings
from pipeline.errors import PipelineError
from pipeline.types import Framing

if TYPE_CHECKING:  # the workers need no database code: kept out of their imports
    from kiosk.storage import SavedDownload, Storage

log = logging.getLogger(__name__)

_worker_engine = None  # set in each worker process by _load_engine
_worker_warm_up: dict[str, object] = {}  # what the worker's warm-up took, reported to the pool
_worker_barrier = None  # every worker waits here in ComposePool.warm_up, so each one answers once
# A worker waits this long at the warm-up barrier for the others (they load their models meanwhile).
WARM_UP_BARRIER_TIMEOUT_S = 600
# The framings an artwork a booth chose is readied for, the likeliest visitor first (prepare).
PREPARE_ORDER = (Framing.HALF_BODY, Framing.CLOSE_UP, Framing.FULL_BODY)

# From <linux/prctl.h>: the signal the kernel sends this process when its parent exits.
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ComposeOutcome:
    encoded: bytes | None
    report: dict[str, object] | None
    error_code: ExitCode | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class PoolBusyError(ArtBoothError):
    """More captures are waiting than the pool takes; the caller should retry shortly."""


class WorkerStartError(ArtBoothError):
    """A compose worker failed its warm-up (a model missing or corrupt, ...): the service cannot compose."""

    def __init__(self, message: str, exit_code: ExitCode) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _die_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this worker when the service process ends, however it ends.

    Linux sends the signal when the *thread* that started the worker exits: the pool starts its
    workers from the event loop's thread (ComposePool.warm_up, compose), which lives as long as
    the service. Elsewhere there is no such signal, and a worker outliving a killed service is
    left to the operating system's process supervision.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        log.warning("compose worker cannot ask to die with the service: %s", os.strerror(error))
        return
    # The service may have died before the request took effect: then this worker is already orphaned.
    if os.getppid() != parent_pid:
        os._exit(1)


def _load_engine(settings: Settings, parent_pid: int, barrier) -> None:
    global _worker_engine, _worker_warm_up, _worker_barrier
    _die_with_parent(parent_pid)
    from kiosk.engine import Engine

    _worker_barrier = barrier
    _worker_engine = Engine(settings)
    # Every model loaded and one generated photo composed now, not on the first visitor's photo.
    try:
        warm_up_ms = _worker_engine.warm_up()
    except (PipelineError, ArtBoothError) as exc:  # e.g. a model file missing: the service must not start
        _worker_warm_up = {"pid": os.getpid(), "error": str(exc), "error_code": exit_code_for(exc)}
        return
    _worker_warm_up = {"pid": os.getpid(), "ms": {k: round(v, 1) for k, v in warm_up_ms.items()}}


def _compose_in_worker(
    photo_bytes: bytes, artwork: ArtworkSource, harmonization: Harmonization, identity: MuseumIdentity | None
) -> ComposeOutcome:
    try:
        result = _worker_engine.compose(photo_bytes, artwork, harmonization=harmonization, identity=identity)
    except (PipelineError, ArtBoothError) as exc:
        return ComposeOutcome(None, None, exit_code_for(exc), str(exc))
    return ComposeOutcome(result.encoded, result.report())


def _prepare_in_worker(artwork: ArtworkSource, framing: Framing, painted: bool) -> tuple[int, float, str | None]:
    """(styles and reference regions computed, milliseconds, error or None) of readying ``artwork``
    for a visitor in ``framing`` in this worker (Engine.prepare)."""
    start = time.perf_counter()
    try:
        computed = _worker_engine.prepare(artwork, framing, painted=painted)
    except (PipelineError, ArtBoothError) as exc:  # e.g. the painting's file went missing: the capture will say so
        return 0, (time.perf_counter() - start) * 1000.0, str(exc)
    return computed, (time.perf_counter() - start) * 1000.0, None


def _warm_up_report() -> dict[str, object]:
    """This worker's warm-up (it ran in the pool's initializer, before any task). The barrier holds
    each worker until all have come, so the pool's N calls reach N different workers."""
    _worker_barrier.wait(WARM_UP_BARRIER_TIMEOUT_S)
    return _worker_warm_up


class Composer(Protocol):
    """What the web side composes with: ComposePool (this node's worker processes, serve --role all)
    or kiosk.capture_queue.QueuedComposer (workers elsewhere, through PostgreSQL, serve --role web)."""

    harmonization: Harmonization
    identity: MuseumIdentity | None

    def use_identity(self, identity: MuseumIdentity) -> None: ...
    def use_harmonization(self, settings: Settings) -> None: ...
    async def warm_up(self) -> list[dict[str, object]]: ...
    @property
    def broken(self) -> bool: ...
    def prepare(self, artwork: ArtworkSource, *, painted: bool) -> None: ...
    async def prepared(self) -> None: ...
    async def compose(
        self, photo_bytes: bytes, artwork: ArtworkSource, *, harmonization: Harmonization | None = None
    ) -> ComposeOutcome: ...
    async def compose_photo(
        self,
        photo_bytes: bytes,
        artwork: ArtworkSource,
        *,
        harmonization: Harmonization | None = None,
        kiosk_id: str | None = None,
        language: str | None = None,
        capture_id: str | None = None,
    ) -> tuple[ComposeOutcome, SavedDownload | None]: ...
    async def close(self) -> None: ...


class ComposePool:
    """What a `serve --role all` node composes with: its own worker processes. ``storage`` stores
    the photos compose_photo makes (kiosk/capture_queue.py's QueuedComposer has the same interface)."""

    def __init__(self, settings: Settings, storage: Storage | None = None) -> None:
        self._storage = storage
        # spawn: forking a process that already runs threads (torch, the event loop) can deadlock.
        context = multiprocessing.get_context("spawn")
        self._workers = settings.compose_workers
        self._executor = ProcessPoolExecutor(
            max_workers=settings.compose_workers,
            mp_context=context,
            initializer=_load_engine,
            initargs=(settings, os.getpid(), context.Barrier(settings.compose_workers)),
        )
        # Each worker's warm-up (pid, milliseconds per stage), once warm_up has run.
        self.warm_ups: list[dict[str, object]] = []
        # Bounded: each worker busy plus one waiting each; more is refused, not queued forever.
        self._slots = asyncio.Semaphore(2 * settings.compose_workers)
        # The workers load the settings' harmonizer; each job says which one it wants, so a change
        # of the defaults in the dashboard (use_harmonization) needs no restart.
        self.harmonization = Harmonization.from_settings(settings)
        # The museum's name, logo and credit strip, likewise carried by each job; the service sets it
        # (use_identity) before its first photo. None: photos without a credit strip.
        self.identity: MuseumIdentity | None = None
        # Artworks booths chose, readied in a worker one at a time (prepare): the one running, and
        # the newest one asked for since, which replaces any older one still waiting.
        self._preparing: asyncio.Task | None = None
        self._prepare_next: tuple[ArtworkSource, bool] | None = None
        self._captures = 0  # captures asked for and not yet answered: readying gives way to them
        self._broken = False

    def use_identity(self, identity: MuseumIdentity) -> None:
        """Credit photos with ``identity`` from now on (staff changed the museum's name, logo or strip)."""
        self.identity = identity

    def use_harmonization(self, settings: Settings) -> None:
        """Compose with the harmonize values of ``settings`` from now on (staff changed them)."""
        self.harmonization = Harmonization.from_settings(settings)

    async def warm_up(self) -> list[dict[str, object]]:
        """Start every worker and have it load all its models (the stylization networks too) and
        compose a generated photo, so the first visitor does not wait; returns their warm-ups."""
        loop = asyncio.get_running_loop()
        self.warm_ups = list(
            await asyncio.gather(*(loop.run_in_executor(self._executor, _warm_up_report) for _ in range(self._workers)))
        )
        for warm_up in self.warm_ups:
            if "error" in warm_up:
                raise WorkerStartError(f"a compose worker cannot compose: {warm_up['error']}", warm_up["error_code"])
            log.info("compose worker %s warm: %s", warm_up["pid"], warm_up["ms"])
        return self.warm_ups

    @property
    def broken(self) -> bool:
        """A worker died (killed, out of memory): the executor takes no more work until a restart.
        ProcessPoolExecutor notices a dead worker at once and marks itself (its ``_broken``, not
        public API, read defensively); a failed submission says so too."""
        return self._broken or bool(getattr(self._executor, "_broken", False))

    def prepare(self, artwork: ArtworkSource, *, painted: bool) -> None:
        """Ready ``artwork`` in a worker now (a booth chose it): its painting decoded, its reference
        regions described and, if it may be ``painted``, its style computed, so the visitor's capture
        does not pay for them. One framing at a time (PREPARE_ORDER), each a short job beside the
        captures; a booth flicking through artworks readies only the newest, and a capture asked for
        meanwhile stops it (a visitor quicker than the countdown waited for all of it: about a second)."""
        self._prepare_next = (artwork, painted)
        if self._preparing is None or self._preparing.done():
            self._preparing = asyncio.create_task(self._prepare_asked())

    async def prepared(self) -> None:
        """Return once the artworks asked for so far are ready (or failed to be)."""
        if self._preparing is not None:
            await asyncio.shield(self._preparing)

    async def _prepare_asked(self) -> None:
        loop = asyncio.get_running_loop()
        while (asked := self._prepare_next) is not None:
            artwork, painted = asked
            self._prepare_next = None
            computed, total_ms, readied = 0, 0.0, []
            for framing in PREPARE_ORDER:
                if self._prepare_next is not None or self._captures:
                    break  # a newer choice replaces this one; a capture computes what it needs itself
                try:
                    count, ms, error = await loop.run_in_executor(self._executor, _prepare_in_worker, artwork, framing, painted)
                except (BrokenExecutor, RuntimeError) as exc:  # a worker died, or the pool is closing: captures will say so
                    self._broken = self._broken or isinstance(exc, BrokenExecutor)
                    log.warning("artwork %s could not be readied: %s", artwork.spec.id, exc)
                    return
                if error is not None:
                    log.warning("artwork %s could not be readied: %s", artwork.spec.id, error)
                    break
                computed, total_ms = computed + count, total_ms + ms
                readied.append(framing.value)
            log.info(
                "artwork %s ready for captures (%s): %d styles and reference regions computed in %.0f ms",
                artwork.spec.id, ", ".join(readied) or "none: a capture came first", computed, total_ms,
            )

    async def compose(
        self, photo_bytes: bytes, artwork: ArtworkSource, *, harmonization: Harmonization | None = None
    ) -> ComposeOutcome:
        """Compose in a worker, harmonized as the settings in effect say unless ``harmonization`` is given."""
        if self._slots.locked():
            raise PoolBusyError("the booth is busy with other photos; try again in a few seconds")
        async with self._slots:
            loop = asyncio.get_running_loop()
            self._captures += 1
            try:
                return await loop.run_in_executor(
                    self._executor,
                    _compose_in_worker,
                    photo_bytes,
                    artwork,
                    harmonization or self.harmonization,
                    self.identity,
                )
            except BrokenExecutor:
                self._broken = True  # /readyz says so from now on
                raise
            finally:
                self._captures -= 1

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
        """Compose and store a visitor's photo (its link's page in ``language``, the booth's); a
        refused photo is the outcome's error. One node: a booth's ``capture_id`` needs no memory here
        (a capture either answered or failed with the node). PoolBusyError and storage errors propagate."""
        outcome = await self.compose(photo_bytes, artwork, harmonization=harmonization)
        if not outcome.ok:
            return outcome, None
        saved = await self._storage.save(
            outcome.encoded,
            outcome.report,
            artwork_id=artwork.spec.id,
            kiosk_id=kiosk_id,
            raw_photo=photo_bytes,
            language=language,
        )
        return outcome, saved

    async def close(self) -> None:
        if self._preparing is not None:
            self._preparing.cancel()
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)
