"""What the benchmarks that run a server process share: waiting for it, and its CPU time."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from pathlib import Path

import aiohttp


async def wait_until_up(url: str, process: subprocess.Popen, timeout_s: float = 180) -> None:
    """Until ``url`` answers 200; fails at once if the server process exits."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.25)
    raise RuntimeError(f"{url} did not come up in {timeout_s} s")


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time of these processes so far (ones that have ended count 0)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def stop(process: subprocess.Popen, timeout_s: float = 30) -> None:
    """Ask the server to stop (SIGTERM: it closes its peers and workers), then insist."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
