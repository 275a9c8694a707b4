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
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from kiosk.artworks import ArtworkSource
from kiosk.engine import Harmonization
from kiosk.errors import ArtBoothError, ExitCode, exit_code_for
from kiosk.settings import Settings
from pipeline.errors import PipelineError

log = logging.getLogger(__name__)

_worker_engine = None  # set in each worker process by _load_engine

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


def _load_engine(settings: Settings, parent_pid: int) -> None:
    global _worker_engine
    _die_with_parent(parent_pid)
    from kiosk.engine import Engine

    _worker_engine = Engine(settings)
    _worker_engine.compositor  # load the models now, not on the first visitor's photo


def _compose_in_worker(photo_bytes: bytes, artwork: ArtworkSource, harmonization: Harmonization) -> ComposeOutcome:
    try:
        result = _worker_engine.compose(photo_bytes, artwork, harmonization=harmonization)
    except (PipelineError, ArtBoothError) as exc:
        return ComposeOutcome(None, None, exit_code_for(exc), str(exc))
    return ComposeOutcome(result.encoded, result.report())


def _ready() -> bool:
    return _worker_engine is not None


class ComposePool:
    def __init__(self, settings: Settings) -> None:
        self._executor = ProcessPoolExecutor(
            max_workers=settings.compose_workers,
            # spawn: forking a process that already runs threads (torch, the event loop) can deadlock.
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_load_engine,
            initargs=(settings, os.getpid()),
        )
        # Bounded: each worker busy plus one waiting each; more is refused, not queued forever.
        self._slots = asyncio.Semaphore(2 * settings.compose_workers)
        # The workers load the settings' harmonizer; each job says which one it wants, so a change
        # of the defaults in the dashboard (use_harmonization) needs no restart.
        self.harmonization = Harmonization.from_settings(settings)

    def use_harmonization(self, settings: Settings) -> None:
        """Compose with the harmonize values of ``settings`` from now on (staff changed them)."""
        self.harmonization = Harmonization.from_settings(settings)

    async def warm_up(self) -> None:
        """Start the workers and load their models now, so the first visitor does not wait."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, _ready)

    async def compose(
        self, photo_bytes: bytes, artwork: ArtworkSource, *, harmonization: Harmonization | None = None
    ) -> ComposeOutcome:
        """Compose in a worker, harmonized as the settings in effect say unless ``harmonization`` is given."""
        if self._slots.locked():
            raise PoolBusyError("the booth is busy with other photos; try again in a few seconds")
        async with self._slots:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self._executor, _compose_in_worker, photo_bytes, artwork, harmonization or self.harmonization
            )

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
