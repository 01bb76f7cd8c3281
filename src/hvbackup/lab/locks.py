"""fcntl locks on a VM folder: one for whole operations, one for touching disks and vm.json.

A lab operation (checkpoint, merge, state change) holds the operation lock from start to end, and
the I/O lock only around the moments it changes disks or vm.json. The workload holds only the I/O
lock, around each write batch. So a checkpoint can let the workload run while the guest's freeze
hooks flush the application, and still switch the chain while no write is in flight.

fcntl locks belong to the process, and closing any descriptor of the file drops them, so threads
of one process (the engine backs up VMs in parallel) first take a per-file thread lock, and the
file is locked and closed only by the outermost holder.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

OPERATION_LOCK = ".operation.lock"
IO_LOCK = ".io.lock"


class _FileLock:
    def __init__(self) -> None:
        self.thread_lock = threading.RLock()
        self.depth = 0
        self.fd = -1


_locks: dict[str, _FileLock] = {}
_registry = threading.Lock()


def _lock_for(path: Path) -> _FileLock:
    key = os.path.abspath(path)
    with _registry:
        return _locks.setdefault(key, _FileLock())


@contextmanager
def held(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (created if missing) against other processes and other threads."""
    lock = _lock_for(path)
    with lock.thread_lock:
        if lock.depth == 0:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
            lock.fd = fd
        lock.depth += 1
        try:
            yield
        finally:
            lock.depth -= 1
            if lock.depth == 0:
                os.close(lock.fd)  # closing drops the fcntl lock
                lock.fd = -1
