"""Where image bytes come from: the ByteSource protocol, reads that must be whole, and local files.

A local file or block device is hvbackup.localfile.LocalFile, shared with the hosts' disk reads;
FileSource is that file raising DiskErrors.
"""

from __future__ import annotations

from hvbackup.disk.errors import DiskError
from hvbackup.localfile import ByteSource, LocalFile

__all__ = ["ByteSource", "FileSource", "pread_into", "read_exact"]


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


class FileSource(LocalFile):
    """A local file or block device (hvbackup.localfile) whose failures are DiskErrors."""

    def cannot_open(self, exc: OSError) -> Exception:
        reason = _OPEN_FAILURES.get(type(exc))
        return exc if reason is None else DiskError(f"{self.name}: {reason}")

    def truncated(self, offset: int) -> Exception:
        return DiskError(f"{self.name}: unexpected end of file at offset {offset}")


_OPEN_FAILURES: dict[type[OSError], str] = {
    FileNotFoundError: "no such file",
    IsADirectoryError: "is a folder, not a disk image",
    PermissionError: "permission denied",
}
