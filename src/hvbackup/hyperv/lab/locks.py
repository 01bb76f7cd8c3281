"""fcntl locks on a VM folder: one for whole operations, one for touching disks and vm.json.

A lab operation (checkpoint, merge, state change) holds the operation lock from start to end, and
the I/O lock only around the moments it changes disks or vm.json. The workload holds only the I/O
lock, around each write batch. So a checkpoint can let the workload run while the guest's freeze
hooks flush the application, and still switch the chain while no write is in flight.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

OPERATION_LOCK = ".operation.lock"
IO_LOCK = ".io.lock"


@contextmanager
def held(path: Path) -> Iterator[None]:
    """An exclusive fcntl lock on `path` (created if missing) for the duration of the block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the lock
