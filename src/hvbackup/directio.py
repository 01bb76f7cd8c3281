"""O_DIRECT reads and writes: large aligned I/O that bypasses the page cache.

A backup reads each disk block once and writes each chunk once, and a restore writes a disk that
is not read again soon, so the page cache only costs. On the machine we measured it cost more than
hashing and compressing: perf showed a quarter of a cold backup's cycles in the kernel copying
page-cache pages into our buffers (README, Performance). O_DIRECT needs the memory address, the
file offset and the length aligned to the device's block; each thread keeps page-aligned scratch
buffers for that.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import threading

ALIGN = 4096  # covers 512- and 4096-byte logical sectors
MIN_DIRECT = 256 * 1024  # smaller pieces go through the page cache: no gain, more syscalls
_SCRATCH_MIN = 4 * 1024 * 1024
_scratch = threading.local()


def scratch(slot: str, size: int) -> memoryview:
    """This thread's page-aligned buffer `slot`, at least `size` bytes; the next call with the same
    slot (on this thread) reuses it, so the caller must be done with it by then."""
    buffers = _scratch.__dict__
    buffer = buffers.get(slot)
    if buffer is None or len(buffer) < size:
        buffer = buffers[slot] = mmap.mmap(-1, max(round_up(size), _SCRATCH_MIN))
    return memoryview(buffer)[:size]


def round_up(size: int) -> int:
    return -(-size // ALIGN) * ALIGN


def address(view: memoryview) -> int:
    """The memory address of a writable buffer."""
    return ctypes.addressof(ctypes.c_char.from_buffer(view))


def fits(view: memoryview, offset: int) -> bool:
    """True if a read into (or write from) `view` at file `offset` can go through O_DIRECT."""
    length = len(view)
    return (
        length >= MIN_DIRECT
        and offset % ALIGN == 0
        and length % ALIGN == 0
        and not view.readonly
        and address(view) % ALIGN == 0
    )


def open_direct(path: str | os.PathLike[str], flags: int) -> int | None:
    """A descriptor opened with O_DIRECT, or None where the system or filesystem has none (tmpfs)."""
    if not hasattr(os, "O_DIRECT"):
        return None
    try:
        return os.open(path, flags | os.O_DIRECT | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):
            return None
        raise


def pread_full(fd: int, view: memoryview, offset: int) -> int:
    """Read into `view` until it is full or the file ends; the number of bytes read."""
    done = 0
    while done < len(view):
        got = os.preadv(fd, [view[done:]], offset + done)
        if got == 0:
            break
        done += got
    return done


def pwrite_full(fd: int, view: memoryview, offset: int) -> None:
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def write_full(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view) :]


class DirectWriter:
    """A second, O_DIRECT descriptor on a file, for large aligned writes.

    Pieces that are not block-aligned go through the normal descriptor; the kernel keeps both
    views coherent.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd

    @classmethod
    def open(cls, path: str) -> DirectWriter | None:
        fd = open_direct(path, os.O_WRONLY)
        return None if fd is None else cls(fd)

    def fits(self, offset: int, length: int) -> bool:
        return length >= MIN_DIRECT and offset % ALIGN == 0 and length % ALIGN == 0

    def pwrite(self, offset: int, data: bytes | memoryview) -> None:
        view = memoryview(data)
        if view.readonly or address(view) % ALIGN:
            aligned = scratch("direct-write", len(view))
            aligned[:] = view
            view = aligned
        pwrite_full(self.fd, view, offset)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
