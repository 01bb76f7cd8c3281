"""Writing VHDX and AVHDX files: create, write at any offset, flush BAT and sector bitmaps safely.

The writer does not use the log. Data goes to newly allocated blocks at the end of the file; the
BAT and sector bitmaps are kept in memory and written by `flush` only after the data is on disk
(fsync), so a crash leaves the previous consistent state plus unreferenced space. Both headers
get new FileWriteGuid/DataWriteGuid before the first change, as [MS-VHDX] 2.2.2 asks.
"""

from __future__ import annotations

import os
import sys
import threading
import uuid
from collections.abc import Callable

from hvbackup.directio import DirectWriter
from hvbackup.disk.errors import VhdxError
from hvbackup.disk.source import ByteSource, FileSource
from hvbackup.disk.vhdx import structures as s
from hvbackup.disk.vhdx.bitmap import set_bits
from hvbackup.disk.vhdx.layout import NewDisk, write_new_file
from hvbackup.disk.vhdx.log import PatchedSource
from hvbackup.disk.vhdx.reader import NIL, VhdxImage
from hvbackup.zeros import is_zero

BAT_PAGE = 4096


class VhdxWriter(VhdxImage):
    """A VHDX/AVHDX opened for writing (and reading). Call `flush` or `close` to make writes durable."""

    def __init__(self, path: str | os.PathLike[str], *, change_data_write_guid: bool = True) -> None:
        if sys.byteorder != "little":
            raise VhdxError("writing VHDX needs a little-endian machine")
        self.file = FileSource(path, writable=True)
        self._direct: DirectWriter | None = None
        try:
            super().__init__(self.file)
        except BaseException:
            self.file.close()
            raise
        self._lock = threading.Lock()
        self._dirty_pages: set[int] = set()
        self._dirty_bitmaps: set[int] = set()
        self._session_started = False
        self._change_data_write_guid = change_data_write_guid
        if self.log_replayed:
            self._apply_log()
        self._next_free = self._end_of_used_space()

    # -- session -----------------------------------------------------------------------------
    def _apply_log(self) -> None:
        """Write the replayed log into the file and mark the log empty (what [MS-VHDX] 2.3.3 asks of a writer)."""
        source = self.source
        if not isinstance(source, PatchedSource):  # log_replayed: the reader laid the log over the file
            raise VhdxError(f"{self.name}: no replayed log to apply")
        for patch in source.patches:
            self.file.pwrite(patch.offset, patch.data if patch.data is not None else bytes(patch.length))
        self.file.fsync()
        self.header.log_guid = NIL
        self._write_headers()
        self.source = self.file
        self.log_replayed = False

    def _write_headers(self) -> None:
        """Write the current header into the other slot, then into this one, each with a higher sequence number."""
        for slot in (1 - self.header_slot, self.header_slot):
            self.header.sequence_number += 1
            self.file.pwrite(s.HEADER_OFFSETS[slot], self.header.build())
        self.file.fsync()

    def _begin_session(self) -> None:
        if self._session_started:
            return
        self.header.file_write_guid = uuid.uuid4()
        if self._change_data_write_guid:
            self.header.data_write_guid = uuid.uuid4()
            self.data_write_guid = str(self.header.data_write_guid)
        self.file_write_guid = str(self.header.file_write_guid)
        self._write_headers()
        self._session_started = True

    def change_data_write_guid(self) -> None:
        """Give the disk a new DataWriteGuid now (children made on it no longer match)."""
        with self._lock:
            self.header.data_write_guid = uuid.uuid4()
            self.data_write_guid = str(self.header.data_write_guid)
            self._write_headers()

    def _end_of_used_space(self) -> int:
        end = max(
            self.file.size,
            self.bat_region.file_offset + self.bat_region.length,
            self.metadata_region.file_offset + self.metadata_region.length,
        )
        return -(-end // s.MiB) * s.MiB

    def _allocate(self, length: int) -> int:
        offset = self._next_free
        self._next_free += -(-length // s.MiB) * s.MiB
        self.file.truncate(self._next_free)
        return offset

    def _set_entry(self, index: int, state: int, file_offset: int) -> None:
        self._bat[index] = s.bat_entry(state, file_offset)
        self._dirty_pages.add(index * 8 // BAT_PAGE)

    # -- writing -----------------------------------------------------------------------------
    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        """Write `data` at virtual `offset`; zeros into unallocated blocks of a base disk allocate nothing."""
        view = memoryview(data).cast("B")
        if offset < 0 or offset + len(view) > self.size:
            raise VhdxError(
                f"{self.name}: write of {len(view)} bytes at {offset} lies outside the disk ({self.size} bytes)"
            )
        payload: list[tuple[int, memoryview]] = []
        with self._lock:
            self._begin_session()
            position, end = offset, offset + len(view)
            while position < end:
                block, in_block = divmod(position, self.block_size)
                count = min(self.block_size - in_block, end - position)
                self._write_in_block(block, in_block, view[position - offset : position - offset + count], payload)
                position += count
            if payload and self._direct is None:
                self._direct = DirectWriter.open(self.file.name)
        for file_offset, piece in payload:  # outside the lock: threads writing other blocks overlap
            self._write_payload(file_offset, piece)

    def _write_payload(self, file_offset: int, piece: memoryview) -> None:
        """Payload data: whole aligned pieces bypass the page cache (see DirectWriter)."""
        if self._direct is not None and self._direct.fits(file_offset, len(piece)):
            self._direct.pwrite(file_offset, piece)
        else:
            self.file.pwrite(file_offset, piece)

    def _write_in_block(
        self, block: int, in_block: int, piece: memoryview, payload: list[tuple[int, memoryview]]
    ) -> None:
        """Update the block's metadata; whole-payload writes are queued on `payload` for the caller."""
        state, file_offset = self.block_state(block)
        if state == s.PAYLOAD_FULLY_PRESENT:
            payload.append((file_offset + in_block, piece))
            return
        block_length = min(self.block_size, self.size - block * self.block_size)
        whole = in_block == 0 and len(piece) == block_length
        index = self._payload_index(block)
        if state == s.PAYLOAD_PARTIALLY_PRESENT:
            if whole:
                payload.append((file_offset, piece))
                self._set_entry(index, s.PAYLOAD_FULLY_PRESENT, file_offset)
            else:
                self._write_sectors(block, file_offset, in_block, piece)
            return
        zero = is_zero(piece)
        if state == s.PAYLOAD_NOT_PRESENT and self.parent is not None:
            if whole and zero:
                self._set_entry(index, s.PAYLOAD_ZERO, 0)
            elif whole:
                new_offset = self._allocate(self.block_size)
                payload.append((new_offset, piece))
                self._set_entry(index, s.PAYLOAD_FULLY_PRESENT, new_offset)
            else:
                self._start_partial(block)
                self._write_sectors(block, self.block_state(block)[1], in_block, piece)
            return
        if zero:  # the block reads as zeros already (NOT_PRESENT without parent, ZERO, UNMAPPED, UNDEFINED)
            return
        new_offset = self._allocate(self.block_size)
        payload.append((new_offset + in_block, piece))
        self._set_entry(index, s.PAYLOAD_FULLY_PRESENT, new_offset)

    def _start_partial(self, block: int) -> None:
        """Allocate a payload block whose sectors all still come from the parent, and its chunk's bitmap block."""
        bitmap_index = self._bitmap_index(block)
        if self._bat[bitmap_index] & 7 != s.SB_PRESENT:
            self._set_entry(bitmap_index, s.SB_PRESENT, self._allocate(s.SECTOR_BITMAP_BLOCK_SIZE))
        self._bitmaps[block] = bytearray(self.block_size // self.logical_sector_size // 8)
        self._dirty_bitmaps.add(block)
        self._set_entry(self._payload_index(block), s.PAYLOAD_PARTIALLY_PRESENT, self._allocate(self.block_size))

    def _write_sectors(self, block: int, file_offset: int, in_block: int, piece: memoryview) -> None:
        """Write whole sectors into a partially present block (edges filled from what reads there now)."""
        sector = self.logical_sector_size
        start = in_block // sector * sector
        end = -(-(in_block + len(piece)) // sector) * sector
        if start != in_block or end != in_block + len(piece):
            merged = bytearray(self.read(block * self.block_size + start, end - start))
            merged[in_block - start : in_block - start + len(piece)] = piece
            piece = memoryview(merged)
        self.file.pwrite(file_offset + start, piece)
        bitmap = self._bitmaps.get(block)
        if not isinstance(bitmap, bytearray):
            bitmap = bytearray(self._sector_bitmap(block))
            self._bitmaps[block] = bitmap
        set_bits(bitmap, start // sector, (end - start) // sector)
        self._dirty_bitmaps.add(block)
        if bitmap.count(0xFF) == len(bitmap):
            self._set_entry(self._payload_index(block), s.PAYLOAD_FULLY_PRESENT, file_offset)

    # -- durability --------------------------------------------------------------------------
    def flush(self) -> None:
        """Make written data durable, then write changed sector bitmaps and BAT pages, then sync again."""
        with self._lock:
            if not self._dirty_pages and not self._dirty_bitmaps:
                return
            self.file.fsync()
            for block in sorted(self._dirty_bitmaps):
                sectors = self.block_size // self.logical_sector_size
                first_sector = (block % self.chunk_ratio) * sectors
                sb_offset = (self._bat[self._bitmap_index(block)] >> 20) * s.MiB
                self.file.pwrite(sb_offset + first_sector // 8, memoryview(self._bitmaps[block]))
            for page in sorted(self._dirty_pages):
                entries = self._bat[page * BAT_PAGE // 8 : (page + 1) * BAT_PAGE // 8]
                self.file.pwrite(self.bat_region.file_offset + page * BAT_PAGE, entries.tobytes())
            self.file.fsync()
            self._dirty_pages.clear()
            self._dirty_bitmaps.clear()

    def close(self) -> None:
        if self.file.fd >= 0:
            self.flush()
        if self._direct is not None:
            self._direct.close()
        super().close()


def open_vhdx_writer(
    path: str | os.PathLike[str],
    *,
    opener: Callable[[str], ByteSource] | None = None,
    change_data_write_guid: bool = True,
) -> VhdxWriter:
    """Open an existing VHDX/AVHDX for writing; a differencing disk's parents are opened read-only."""
    from hvbackup.disk.opener import attach_parent_chain

    writer = VhdxWriter(path, change_data_write_guid=change_data_write_guid)
    try:
        if writer.is_differencing:
            attach_parent_chain(writer, opener or FileSource)
    except BaseException:
        writer.source.close()
        raise
    return writer


def create_vhdx(
    path: str | os.PathLike[str],
    size: int,
    *,
    block_size: int = s.MiB,
    logical_sector_size: int = 512,
    physical_sector_size: int = 4096,
    fixed: bool = False,
) -> VhdxWriter:
    """Create a dynamic (or fixed) VHDX of `size` bytes and open it for writing."""
    write_new_file(os.fspath(path), NewDisk(size, block_size, logical_sector_size, physical_sector_size, fixed))
    return VhdxWriter(path)


def create_differencing(
    path: str | os.PathLike[str], parent_path: str | os.PathLike[str], *, block_size: int | None = None
) -> VhdxWriter:
    """Create an AVHDX on `parent_path` (a VHDX or AVHDX) and open it for writing."""
    from hvbackup.disk.opener import open_disk

    path, parent_path = os.fspath(path), os.fspath(parent_path)
    with open_disk(parent_path) as parent:
        if not isinstance(parent, VhdxImage):
            raise VhdxError(f"{parent_path}: a differencing VHDX needs a VHDX parent, not {parent.format}")
        relative = os.path.relpath(os.path.abspath(parent_path), os.path.dirname(os.path.abspath(path)))
        locator = {
            "parent_linkage": s.guid_text(uuid.UUID(parent.data_write_guid)),
            "relative_path": relative.replace("/", "\\"),
            "absolute_win32_path": os.path.abspath(parent_path),
        }
        disk = NewDisk(
            parent.size,
            block_size or parent.block_size,
            parent.logical_sector_size,
            parent.physical_sector_size,
            virtual_disk_id=uuid.UUID(parent.virtual_disk_id),
            parent_locator=locator,
        )
    write_new_file(path, disk)
    return open_vhdx_writer(path)
