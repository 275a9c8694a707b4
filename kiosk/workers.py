"""The capture pipeline in a pool of worker processes, so the event loop never runs it.

Each worker loads the models once (the pool's initializer) and keeps its `Engine` in a
process-wide slot: that is the only way a ProcessPoolExecutor task can reach per-worker
state. Results and errors come back as plain data, because our exception classes carry
their own constructors and would not unpickle in the parent.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from kiosk.artworks import ArtworkSource
from kiosk.engine import Harmonization
from kiosk.errors import ArtBoothError, ExitCode, exit_code_for
from kiosk.settings import Settings
from pipeline.errors import PipelineError

_worker_engine = None  # set in each worker process by _load_engine


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


def _load_engine(settings: Settings) -> None:
    global _worker_engine
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
            initargs=(settings,),
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
