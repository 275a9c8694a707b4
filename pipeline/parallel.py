"""Independent pieces of work run on two threads: the scoring of candidates is numpy and OpenCV work
on arrays large enough to release the GIL, the models run in onnxruntime and torch, which release it
too, and a capture has two cores."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
Other = TypeVar("Other")


def in_two_threads(function: Callable[[Item], Result], items: Iterable[Item]) -> list[Result]:
    """``[function(item) for item in items]``, two at a time, in order."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="stage") as threads:
        return list(threads.map(function, items))


def side_by_side(beside: Callable[[], Other], here: Callable[[], Result]) -> tuple[Other, Result]:
    """``(beside(), here())``, ``beside`` on a second thread while ``here`` runs on this one."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="beside") as thread:
        pending = thread.submit(beside)
        result = here()
        return pending.result(), result
