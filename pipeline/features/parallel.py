"""Reading many audio files on a few threads, in order, one bounded chunk at a time."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# soundfile (libsndfile) and soxr release the GIL while they decode and resample, so
# threads overlap that work; more threads than cores only adds contention.
WORKERS = min(4, os.cpu_count() or 1)
CHUNK = 32  # files per chunk: bounds the decoded audio held at once


def map_in_chunks(func: Callable[[Item], Result], items: Iterable[Item], chunk: int = CHUNK,
                  workers: int = WORKERS) -> Iterator[tuple[list[Item], list[Result]]]:
    """``(part, [func(item) for item in part])`` for successive parts of ``chunk`` items,
    computed on ``workers`` threads. Results keep the input order (each is computed alone, so
    the bytes do not depend on the thread count); the first exception is raised as it is."""
    items = list(items)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(items), chunk):
            part = items[start : start + chunk]
            yield part, list(pool.map(func, part))
