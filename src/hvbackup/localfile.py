"""The one way to read a file on this machine: image backups, and the disks of local and lab hosts.

`ByteSource` is the protocol every source of disk bytes follows (a local file, a file over SMB,
an image layer). `LocalFile` is a regular file or block device read with positional I/O, so one
source serves many threads at once and the GIL is released while the kernel copies. Large
aligned reads into aligned buffers go through a second, O_DIRECT descriptor (hvbackup.directio
says why). Each folder subclasses it to raise its own errors (disk.source.FileSource,
hyperv.filesource.LocalFileSource).
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from typing import Protocol, runtime_checkable

from hvbackup import directio

_HAS_PREAD = hasattr(os, "pread")  # Windows has none: there a lock guards seek and read


@runtime_checkable
class ByteSource(Protocol):
    name: str
    size: int

    def pread(self, offset: int, length: int) -> bytes: ...

    def close(self) -> None: ...


class LocalFile:
    """A regular file or a block device, read (and optionally written) with positional I/O."""

    def __init__(self, path: str | os.PathLike[str], *, writable: bool = False) -> None:
        self.name = os.fspath(path)
        self.writable = writable
        self.fd = -1
        flags = (os.O_RDWR if writable else os.O_RDONLY) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
        try:
            self.fd = os.open(self.name, flags)
            mode = os.fstat(self.fd).st_mode
            if stat.S_ISDIR(mode):  # a folder opens read-only without an error; reading it then fails
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), self.name)
        except OSError as exc:
            self.close()
            raise self.cannot_open(exc) from None
        self.is_block_device = stat.S_ISBLK(mode)
        self.is_regular_file = stat.S_ISREG(mode)
        self.size = self._measure()
        self._seek_lock = threading.Lock()
        self._direct_fd: int | None = None
        self._direct_tried = False
        self._direct_lock = threading.Lock()

    def cannot_open(self, exc: OSError) -> Exception:
        """The error to raise when the file cannot be opened; a subclass names its folder's error."""
        return exc

    def truncated(self, offset: int) -> Exception:
        """The error to raise when the file ends before a read that must be whole."""
        return EOFError(f"{self.name}: unexpected end of file at offset {offset}")

    def _measure(self) -> int:
        if self.is_block_device:
            return os.lseek(self.fd, 0, os.SEEK_END)
        return os.fstat(self.fd).st_size

    def refresh_size(self) -> None:
        self.size = self._measure()

    def pread(self, offset: int, length: int) -> bytes:
        parts = []
        got = 0
        while got < length:
            more = self._pread_once(length - got, offset + got)
            if not more:
                break
            parts.append(more)
            got += len(more)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _pread_once(self, length: int, offset: int) -> bytes:
        if _HAS_PREAD:
            return os.pread(self.fd, length, offset)
        with self._seek_lock:
            os.lseek(self.fd, offset, os.SEEK_SET)
            return os.read(self.fd, length)

    def pread_into(self, buffer: memoryview, offset: int) -> None:
        if directio.fits(buffer, offset) and (direct := self._direct()) is not None:
            got = directio.pread_full(direct, buffer, offset)
            buffer, offset = buffer[got:], offset + got  # the rest, if the file ends unaligned
        if self._pread_into_full(buffer, offset) != len(buffer):
            raise self.truncated(offset + len(buffer))

    def _pread_into_full(self, buffer: memoryview, offset: int) -> int:
        if hasattr(os, "preadv"):
            return directio.pread_full(self.fd, buffer, offset)
        data = self.pread(offset, len(buffer))
        buffer[: len(data)] = data
        return len(data)

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
        if not self.is_regular_file or not hasattr(os, "SEEK_DATA"):
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
        direct_fd = getattr(self, "_direct_fd", None)
        if direct_fd is not None:
            os.close(direct_fd)
            self._direct_fd = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> LocalFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
