"""Real `artbooth` processes (serve nodes, queue workers) started by tests and benches: each with its
output in a log file, and killed by the kernel when the process that started it dies.

No pytest here: bench/scale.py starts its site with these too.
"""

from __future__ import annotations

import asyncio
import ctypes
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cli_helpers import ARTBOOTH

# From <linux/prctl.h>: the signal the kernel sends a process when its parent exits.
_PR_SET_PDEATHSIG = 1
STOP_S = 30


@dataclass
class Process:
    name: str
    process: subprocess.Popen
    log: Path

    def tail(self) -> str:
        return f"--- {self.name} ---\n" + self.log.read_text(errors="replace")[-3000:]


def die_with_parent() -> None:
    """Linux's parent-death signal (a Popen's preexec_fn): a test or bench killed mid-way leaves no
    node, worker or store behind."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def start_artbooth(name: str, args: list[str], environ: dict[str, str], folder: Path) -> Process:
    """`artbooth *args` with exactly ``environ``, its output in ``folder``/``name``.log.

    In a session of its own, so that its whole process group (a serve node's compose workers) can
    be signalled with it (tests/test_reverse_proxy.py does)."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [ARTBOOTH, *args], env=environ, stdout=output, stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent, start_new_session=True,
        )
    return Process(name, process, log)


async def until_logged(process: Process, line: str, within_s: float) -> None:
    """Until ``line`` is in the process's log; RuntimeError, with the log's end, if it exits first or
    takes longer than ``within_s``."""
    deadline = time.monotonic() + within_s
    while line not in process.log.read_text(errors="replace"):
        if process.process.poll() is not None:
            raise RuntimeError(f"{process.name} exited with {process.process.returncode}\n{process.tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{process.name} did not log {line!r} in {within_s} s\n{process.tail()}")
        await asyncio.sleep(0.1)


def stop(processes: Iterable[Process]) -> None:
    """SIGTERM to all at once (a node closes its compose workers, a worker finishes its job), then
    wait for each, insisting (SIGKILL) after STOP_S."""
    processes = list(processes)
    for process in processes:
        if process.process.poll() is None:
            process.process.terminate()
    for process in processes:
        try:
            process.process.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            process.process.kill()
            process.process.wait()
