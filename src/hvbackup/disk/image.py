"""DiskImage: what every format offers — size, sector sizes, allocation map and random-access reads.

A format only says, for a piece of the virtual disk, where its bytes are (`_map`): in the image file,
zero, or in the parent. `read` turns that into positional reads, so unallocated space is never read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hvbackup.disk.errors import DiskError
from hvbackup.disk.source import ByteSource, pread_into
from hvbackup.zeros import fill_zero

if TYPE_CHECKING:
    from types import TracebackType

DATA = 0  # bytes are in this image's file at file_offset
ZERO = 1  # bytes are zero; nothing is read
PARENT = 2  # bytes come from the parent image at the same virtual offset


@dataclass(frozen=True, slots=True)
class Run:
    offset: int  # virtual offset
    length: int
    kind: int
    file_offset: int = 0


class DiskImage:
    """A virtual disk opened for reading. Thread-safe reads; use as a context manager."""

    format: str = ""
    size: int = 0
    logical_sector_size: int = 512
    physical_sector_size: int = 512
    block_size: int | None = None
    is_fixed: bool = False
    is_differencing: bool = False
    virtual_disk_id: str | None = None
    data_write_guid: str | None = None
    parent: DiskImage | None = None
    parent_path: str | None = None

    def __init__(self, source: ByteSource) -> None:
        self.source = source
        self.name = source.name

    # -- what a format provides -------------------------------------------------------------
    def _map(self, offset: int, length: int) -> list[Run]:
        raise NotImplementedError

    def allocated_ranges(self) -> list[tuple[int, int]]:
        raise NotImplementedError

    # -- reading ------------------------------------------------------------------------------
    def read(self, offset: int, length: int) -> bytes:
        """`length` bytes at virtual `offset`; zeros where nothing is allocated."""
        self._check_range(offset, length)
        if length == 0:
            return b""
        runs = self._map(offset, length)
        if len(runs) == 1 and runs[0].kind == DATA:
            data = self.source.pread(runs[0].file_offset, length)
            if len(data) != length:
                raise DiskError(f"{self.name}: unexpected end of file at offset {runs[0].file_offset + len(data)}")
            return data
        buffer = bytearray(length)
        self.read_into(memoryview(buffer), offset, runs)
        return bytes(buffer)

    def read_into(self, buffer: memoryview, offset: int, runs: list[Run] | None = None) -> None:
        """Fill all of `buffer` with the bytes at virtual `offset`, zeros included."""
        if runs is None:
            self._check_range(offset, len(buffer))
            runs = self._map(offset, len(buffer))
        for run in runs:
            piece = buffer[run.offset - offset : run.offset - offset + run.length]
            if run.kind == DATA:
                pread_into(self.source, piece, run.file_offset)
            elif run.kind == PARENT and self.parent is not None:
                self.parent.read_into(piece, run.offset)
            else:
                fill_zero(piece)

    def _check_range(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise DiskError(
                f"{self.name}: read of {length} bytes at {offset} lies outside the disk ({self.size} bytes)"
            )

    # -- lifetime -----------------------------------------------------------------------------
    def close(self) -> None:
        if self.parent is not None:
            self.parent.close()
        self.source.close()

    def __enter__(self) -> DiskImage:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.format} {self.name!r} size={self.size}>"
