"""Where image bytes come from: a local file or block device (later also a remote file).

Every read is a positional read (os.pread/os.preadv), so one source serves many threads at once
and the GIL is released while the kernel copies. Large aligned reads into aligned buffers go
through a second, O_DIRECT descriptor (hvbackup.directio says why).
"""

from __future__ import annotations

import os
import stat
import threading
from typing import Protocol, runtime_checkable

from hvbackup import directio
from hvbackup.disk.errors import DiskError


@runtime_checkable
class ByteSource(Protocol):
    name: str
    size: int

    def pread(self, offset: int, length: int) -> bytes: ...

    def close(self) -> None: ...


def pread_into(source: ByteSource, buffer: memoryview, offset: int) -> None:
    """Fill `buffer` from `source` at `offset`; a source may offer a faster `pread_into` of its own."""
    fast = getattr(source, "pread_into", None)
    if fast is not None:
        fast(buffer, offset)
        return
    data = source.pread(offset, len(buffer))
    if len(data) != len(buffer):
        raise DiskError(f"{source.name}: unexpected end of file at offset {offset + len(data)}")
    buffer[:] = data


def read_exact(source: ByteSource, offset: int, length: int, what: str) -> bytes:
    """Read `length` bytes or fail with a message naming `what` was being read."""
    if offset < 0 or length < 0 or offset + length > source.size:
        raise DiskError(
            f"{source.name}: {what} at offset {offset} (+{length}) lies past the end of the file ({source.size} bytes)"
        )
    data = source.pread(offset, length)
    if len(data) != length:
        raise DiskError(f"{source.name}: {what} at offset {offset} is truncated")
    return data


class FileSource:
    """A regular file or a block device, read (and optionally written) with positional I/O."""

    def __init__(self, path: str | os.PathLike[str], *, writable: bool = False) -> None:
        self.name = os.fspath(path)
        self.writable = writable
        flags = (os.O_RDWR if writable else os.O_RDONLY) | getattr(os, "O_CLOEXEC", 0)
        try:
            self.fd = os.open(self.name, flags)
        except FileNotFoundError:
            raise DiskError(f"{self.name}: no such file") from None
        except IsADirectoryError:
            raise DiskError(f"{self.name}: is a folder, not a disk image") from None
        except PermissionError:
            raise DiskError(f"{self.name}: permission denied") from None
        mode = os.fstat(self.fd).st_mode
        if stat.S_ISDIR(mode):  # a folder opens read-only without an error; reading it then fails
            os.close(self.fd)
            raise DiskError(f"{self.name}: is a folder, not a disk image")
        self.is_block_device = stat.S_ISBLK(mode)
        self.is_regular_file = stat.S_ISREG(mode)
        self.size = self._measure()
        self._direct_fd: int | None = None
        self._direct_tried = False
        self._direct_lock = threading.Lock()

    def _measure(self) -> int:
        if self.is_block_device:
            return os.lseek(self.fd, 0, os.SEEK_END)
        return os.fstat(self.fd).st_size

    def refresh_size(self) -> None:
        self.size = self._measure()

    def pread(self, offset: int, length: int) -> bytes:
        data = os.pread(self.fd, length, offset)
        if len(data) == length or not data:
            return data
        parts = [data]
        got = len(data)
        while got < length:
            more = os.pread(self.fd, length - got, offset + got)
            if not more:
                break
            parts.append(more)
            got += len(more)
        return b"".join(parts)

    def pread_into(self, buffer: memoryview, offset: int) -> None:
        if directio.fits(buffer, offset) and (direct := self._direct()) is not None:
            got = directio.pread_full(direct, buffer, offset)
            buffer, offset = buffer[got:], offset + got  # the rest, if the file ends unaligned
        if directio.pread_full(self.fd, buffer, offset) != len(buffer):
            raise DiskError(f"{self.name}: unexpected end of file at offset {offset + len(buffer)}")

    def _direct(self) -> int | None:
        """The O_DIRECT descriptor, opened on first use; None where the filesystem has no O_DIRECT."""
        if not self._direct_tried:
            with self._direct_lock:
                if not self._direct_tried:
                    self._direct_fd = directio.open_direct(self.name, os.O_RDONLY)
                    self._direct_tried = True
        return self._direct_fd

    def pwrite(self, offset: int, data: bytes | memoryview) -> None:
        view = memoryview(data)
        done = 0
        while done < len(view):
            done += os.pwrite(self.fd, view[done:], offset + done)
        if offset + done > self.size:
            self.size = offset + done

    def truncate(self, size: int) -> None:
        os.ftruncate(self.fd, size)
        self.size = size

    def fsync(self) -> None:
        os.fsync(self.fd)

    def data_ranges(self) -> list[tuple[int, int]]:
        """(offset, length) pieces that hold data: SEEK_DATA/SEEK_HOLE on files, everything on devices."""
        if not self.is_regular_file:
            return [(0, self.size)] if self.size else []
        ranges: list[tuple[int, int]] = []
        position = 0
        while position < self.size:
            try:
                start = os.lseek(self.fd, position, os.SEEK_DATA)
            except OSError:  # ENXIO: no data after position
                break
            end = os.lseek(self.fd, start, os.SEEK_HOLE)
            ranges.append((start, min(end, self.size) - start))
            position = end
        return ranges

    def close(self) -> None:
        if self._direct_fd is not None:
            os.close(self._direct_fd)
            self._direct_fd = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __repr__(self) -> str:
        return f"FileSource({self.name!r})"


class DirectWriter:
    """A second, O_DIRECT descriptor on a file, for large aligned writes (hvbackup.directio).

    Pieces that are not block-aligned go through the normal descriptor; the kernel keeps both
    views coherent.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd

    @classmethod
    def open(cls, path: str) -> DirectWriter | None:
        fd = directio.open_direct(path, os.O_WRONLY)
        return None if fd is None else cls(fd)

    def fits(self, offset: int, length: int) -> bool:
        return length >= directio.MIN_DIRECT and offset % directio.ALIGN == 0 and length % directio.ALIGN == 0

    def pwrite(self, offset: int, data: bytes | memoryview) -> None:
        view = memoryview(data)
        if view.readonly or directio.address(view) % directio.ALIGN:
            aligned = directio.scratch("direct-write", len(view))
            aligned[:] = view
            view = aligned
        directio.pwrite_full(self.fd, view, offset)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
