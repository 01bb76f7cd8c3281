"""A bounded, ordered thread pipeline.

Work items go to a pool of threads; results come back in submission order, and never more
than `max_in_flight` items are queued or running at once, so memory stays bounded whatever the
size of the disk. The hot calls inside workers (pread, BLAKE3, zstd, AEAD) release the GIL, so
threads use every core.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    """Three threads per core: workers also wait for reads and writes, and with fewer of them the
    cores sat idle during I/O (bench: a cold 2.1 GiB backup took 7.6 s with 3 workers on 2
    cores, 5.2 s with 6, 5.1 s with 10)."""
    return max(4, 3 * (os.cpu_count() or 2))


def ordered_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    workers: int | None = None,
    max_in_flight: int | None = None,
) -> Iterator[R]:
    """Yield fn(item) for each item, in order, running up to `workers` at a time.

    If a worker raises, the exception is raised from the iterator at that item's turn and the
    remaining queued work is cancelled.
    """
    workers = workers or default_workers()
    max_in_flight = max_in_flight or workers * 2
    pending: deque[Future[R]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hvb-worker") as pool:
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= max_in_flight:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
