"""Reading VHDX and AVHDX files: headers, region table, metadata, log replay, BAT and payload."""

from __future__ import annotations

import struct
import sys
import uuid
from array import array
from collections.abc import Iterator
from itertools import compress, pairwise

from hvbackup.disk.errors import VhdxError
from hvbackup.disk.extents import Extent, append_extent, complement_extents, intersect_extents, merge_extents
from hvbackup.disk.image import DATA, PARENT, ZERO, DiskImage, Run
from hvbackup.disk.source import ByteSource, read_exact
from hvbackup.disk.vhdx import structures as s
from hvbackup.disk.vhdx.bitmap import bit_runs
from hvbackup.disk.vhdx.log import PatchedSource, replay_log

NIL = uuid.UUID(int=0)


class VhdxImage(DiskImage):
    """A VHDX or AVHDX file opened for reading. Parents are attached by `hvbackup.disk.open_disk`."""

    format = "vhdx"
    block_size: int  # always set: the metadata's file parameters carry it

    def __init__(self, source: ByteSource) -> None:
        super().__init__(source)
        try:
            self._open()
        except VhdxError as error:
            raise VhdxError(f"{source.name}: {error}") from None

    # -- opening ------------------------------------------------------------------------------
    def _open(self) -> None:
        if self.source.size < s.MiB:
            raise VhdxError(f"file is {self.source.size} bytes, smaller than the 1 MiB VHDX header section")
        if read_exact(self.source, 0, 8, "file identifier") != s.FILE_IDENTIFIER_SIGNATURE:
            raise VhdxError("no 'vhdxfile' signature: not a VHDX file")
        self.header, self.header_slot = self._current_header()
        self.file_write_guid = str(self.header.file_write_guid)
        self.data_write_guid = str(self.header.data_write_guid)
        self.log_replayed = False
        if self.header.log_guid != NIL:
            self._check_inside("log", self.header.log_offset, self.header.log_length)
            self.source = PatchedSource(
                self.source,
                replay_log(self.source, self.header.log_offset, self.header.log_length, self.header.log_guid),
            )
            self.log_replayed = True
        regions = self._region_table()
        self.bat_region = self._required_region(regions, s.BAT_REGION, "BAT")
        self.metadata_region = self._required_region(regions, s.METADATA_REGION, "metadata")
        self._read_metadata()
        self._load_bat()
        self._check_bat()

    def _current_header(self) -> tuple[s.Header, int]:
        headers: list[tuple[s.Header, int, bytes]] = []
        problems: list[str] = []
        for slot, offset in enumerate(s.HEADER_OFFSETS):
            raw = read_exact(self.source, offset, s.HEADER_SIZE, f"header {slot + 1}")
            try:
                headers.append((s.Header.parse(raw, f"header {slot + 1}"), slot, raw))
            except VhdxError as error:
                problems.append(str(error))
        if not headers:
            raise VhdxError("no valid header (" + "; ".join(problems) + ")")
        if len(headers) == 2 and headers[0][0].sequence_number == headers[1][0].sequence_number:
            if headers[0][2] != headers[1][2]:
                raise VhdxError(f"both headers have sequence number {headers[0][0].sequence_number} but differ")
            return headers[0][0], 0
        header, slot, _ = max(headers, key=lambda h: h[0].sequence_number)
        return header, slot

    def _region_table(self) -> dict[uuid.UUID, s.Region]:
        problems: list[str] = []
        for number, offset in enumerate(s.REGION_TABLE_OFFSETS, start=1):
            raw = read_exact(self.source, offset, s.REGION_TABLE_SIZE, f"region table {number}")
            try:
                regions = s.parse_region_table(raw, f"region table {number}")
            except VhdxError as error:
                problems.append(str(error))
                continue
            for region in regions.values():
                if region.required and region.guid not in (s.BAT_REGION, s.METADATA_REGION):
                    raise VhdxError(f"region table {number}: unknown required region {region.guid}")
            return regions
        raise VhdxError("no valid region table (" + "; ".join(problems) + ")")

    def _required_region(self, regions: dict[uuid.UUID, s.Region], guid: uuid.UUID, name: str) -> s.Region:
        region = regions.get(guid)
        if region is None:
            raise VhdxError(f"region table has no {name} region")
        self._check_inside(f"{name} region", region.file_offset, region.length)
        return region

    def _check_inside(self, what: str, offset: int, length: int) -> None:
        if offset + length > self.source.size:
            raise VhdxError(
                f"{what} at {offset} (+{length}) lies past the end of the file ({self.source.size} bytes; truncated?)"
            )

    def _read_metadata(self) -> None:
        region = self.metadata_region
        if region.length < s.METADATA_TABLE_SIZE:
            raise VhdxError(f"metadata region of {region.length} bytes cannot hold its 64 KiB table")
        table = read_exact(self.source, region.file_offset, s.METADATA_TABLE_SIZE, "metadata table")
        entries = s.parse_metadata_table(table, region.length, "metadata table")

        def item(guid: uuid.UUID, name: str, length: int | None) -> bytes:
            entry = entries.get(guid)
            if entry is None:
                raise VhdxError(f"metadata has no {name} item")
            if length is not None and entry.length != length:
                raise VhdxError(f"metadata {name} item is {entry.length} bytes, expected {length}")
            return read_exact(self.source, region.file_offset + entry.offset, entry.length, f"metadata {name}")

        params = s.FileParameters.parse(item(s.FILE_PARAMETERS, "file parameters", 8))
        self.block_size = params.block_size
        self.is_fixed = params.leave_block_allocated
        self.is_differencing = params.has_parent
        (self.size,) = struct.unpack("<Q", item(s.VIRTUAL_DISK_SIZE, "virtual disk size", 8))
        self.virtual_disk_id = str(s.guid_from(item(s.PAGE83_DATA, "virtual disk id", 16)))
        (self.logical_sector_size,) = struct.unpack("<I", item(s.LOGICAL_SECTOR_SIZE, "logical sector size", 4))
        (self.physical_sector_size,) = struct.unpack("<I", item(s.PHYSICAL_SECTOR_SIZE, "physical sector size", 4))
        for name, value in (("logical", self.logical_sector_size), ("physical", self.physical_sector_size)):
            if value not in (512, 4096):
                raise VhdxError(f"metadata: {name} sector size {value} is neither 512 nor 4096")
        if not 0 < self.size <= s.MAX_VIRTUAL_SIZE or self.size % self.logical_sector_size:
            raise VhdxError(
                f"metadata: virtual disk size {self.size} is not a positive multiple of the sector size up to 64 TiB"
            )
        self.parent_locator: dict[str, str] | None = None
        if self.is_differencing:
            self.parent_locator = s.ParentLocator.parse(item(s.PARENT_LOCATOR, "parent locator", None)).entries
            if not self.parent_locator.get("parent_linkage"):
                raise VhdxError("parent locator has no parent_linkage")
            if not any(self.parent_locator.get(k) for k in ("relative_path", "absolute_win32_path", "volume_path")):
                raise VhdxError("parent locator names no parent path")

    def _load_bat(self) -> None:
        self.chunk_ratio = s.chunk_ratio(self.block_size, self.logical_sector_size)
        self.payload_blocks = -(-self.size // self.block_size)
        count = s.bat_entry_count(self.payload_blocks, self.chunk_ratio, self.is_differencing)
        if count * 8 > self.bat_region.length:
            raise VhdxError(f"BAT region of {self.bat_region.length} bytes cannot hold its {count} entries")
        self._bat = array("Q", read_exact(self.source, self.bat_region.file_offset, count * 8, "BAT"))
        if sys.byteorder == "big":
            self._bat.byteswap()
        self._bitmaps: dict[int, bytes | bytearray] = {}

    def _check_bat(self) -> None:
        """Refuse unknown states, blocks past the end of the file, and blocks that overlap anything."""
        used: list[tuple[int, int, str]] = [
            (0, s.MiB, "the header section"),
            (self.bat_region.file_offset, self.bat_region.length, "the BAT region"),
            (self.metadata_region.file_offset, self.metadata_region.length, "the metadata region"),
        ]
        if self.header.log_length:
            used.append((self.header.log_offset, self.header.log_length, "the log"))
        bat, ratio, size, block_size = self._bat, self.chunk_ratio, self.source.size, self.block_size
        for index in compress(range(len(bat)), bat):  # NOT_PRESENT entries are 0: skip them at C speed
            entry = bat[index]
            state, offset = entry & 7, (entry >> 20) * s.MiB
            if index % (ratio + 1) == ratio:
                length, what = s.SECTOR_BITMAP_BLOCK_SIZE, f"sector bitmap block {index // (ratio + 1)}"
                if state == s.SB_NOT_PRESENT:
                    continue
                if state != s.SB_PRESENT:
                    raise VhdxError(f"BAT: {what} has unknown state {state}")
            else:
                block = index - index // (ratio + 1)
                what = f"payload block {block}"
                if state in s.ZERO_STATES or state == s.PAYLOAD_NOT_PRESENT:
                    continue
                if state == s.PAYLOAD_PARTIALLY_PRESENT and not self.is_differencing:
                    raise VhdxError(f"BAT: {what} is partially present in a disk without a parent")
                if state not in (s.PAYLOAD_FULLY_PRESENT, s.PAYLOAD_PARTIALLY_PRESENT):
                    raise VhdxError(f"BAT: {what} has unknown state {state}")
                length = min(block_size, self.size - block * block_size)
                if state == s.PAYLOAD_PARTIALLY_PRESENT and bat[self._bitmap_index(block)] & 7 != s.SB_PRESENT:
                    raise VhdxError(f"BAT: {what} is partially present but its sector bitmap block is not")
            if offset + length > size:
                raise VhdxError(f"BAT: {what} at file offset {offset} lies past the end of the file ({size} bytes)")
            used.append((offset, length, what))
        used.sort()
        for (a_offset, a_length, a_what), (b_offset, _, b_what) in pairwise(used):
            if b_offset < a_offset + a_length:
                raise VhdxError(f"BAT: {b_what} at file offset {b_offset} overlaps {a_what}")

    # -- block lookups ------------------------------------------------------------------------
    def _payload_index(self, block: int) -> int:
        return block + block // self.chunk_ratio

    def _bitmap_index(self, block: int) -> int:
        return (block // self.chunk_ratio) * (self.chunk_ratio + 1) + self.chunk_ratio

    def block_state(self, block: int) -> tuple[int, int]:
        """(state, file offset) of a payload block."""
        entry = self._bat[self._payload_index(block)]
        return entry & 7, (entry >> 20) * s.MiB

    def _sector_bitmap(self, block: int) -> bytes | bytearray:
        """This block's part of its chunk's sector bitmap (one bit per sector)."""
        bitmap = self._bitmaps.get(block)
        if bitmap is None:
            sectors = self.block_size // self.logical_sector_size
            first_sector = (block % self.chunk_ratio) * sectors
            sb_offset = (self._bat[self._bitmap_index(block)] >> 20) * s.MiB
            bitmap = read_exact(
                self.source, sb_offset + first_sector // 8, sectors // 8, f"sector bitmap of block {block}"
            )
            self._bitmaps[block] = bitmap
        return bitmap

    # -- mapping ------------------------------------------------------------------------------
    def _map(self, offset: int, length: int) -> list[Run]:
        runs: list[Run] = []
        position, end, block_size = offset, offset + length, self.block_size
        absent = PARENT if self.parent is not None else ZERO
        while position < end:
            block, in_block = divmod(position, block_size)
            count = min(block_size - in_block, end - position)
            state, file_offset = self.block_state(block)
            if state == s.PAYLOAD_FULLY_PRESENT:
                _add_run(runs, position, count, DATA, file_offset + in_block)
            elif state == s.PAYLOAD_PARTIALLY_PRESENT:
                self._map_partial(runs, block, file_offset, in_block, count, absent)
            else:
                _add_run(runs, position, count, absent if state == s.PAYLOAD_NOT_PRESENT else ZERO, 0)
            position += count
        return runs

    def _map_partial(
        self, runs: list[Run], block: int, file_offset: int, in_block: int, count: int, absent: int
    ) -> None:
        sector = self.logical_sector_size
        first = in_block // sector
        last = -(-(in_block + count) // sector)
        block_start = block * self.block_size
        for bit, start, n in bit_runs(self._sector_bitmap(block), first, last - first):
            lo = max((first + start) * sector, in_block)
            hi = min((first + start + n) * sector, in_block + count)
            kind = DATA if bit else absent
            _add_run(runs, block_start + lo, hi - lo, kind, file_offset + lo if bit else 0)

    def present_blocks(self) -> Iterator[tuple[int, int]]:
        """(block, state) of every payload block whose entry is not NOT_PRESENT, in order."""
        ratio = self.chunk_ratio
        for index in compress(range(len(self._bat)), self._bat):
            state = self._bat[index] & 7
            if index % (ratio + 1) != ratio and state != s.PAYLOAD_NOT_PRESENT:
                yield index - index // (ratio + 1), state

    def own_data_runs(self, block: int) -> list[Run]:
        """The pieces of a payload block stored in this file itself (not zero, not in the parent)."""
        state, file_offset = self.block_state(block)
        start = block * self.block_size
        length = min(self.block_size, self.size - start)
        if state == s.PAYLOAD_FULLY_PRESENT:
            return [Run(start, length, DATA, file_offset)]
        if state == s.PAYLOAD_PARTIALLY_PRESENT:
            runs: list[Run] = []
            self._map_partial(runs, block, file_offset, 0, length, PARENT)
            return [run for run in runs if run.kind == DATA]
        return []

    def allocated_ranges(self) -> list[Extent]:
        own: list[Extent] = []
        hides_parent: list[Extent] = []
        for block, state in self.present_blocks():
            start = block * self.block_size
            length = min(self.block_size, self.size - start)
            if state == s.PAYLOAD_FULLY_PRESENT:
                append_extent(own, start, length)
                append_extent(hides_parent, start, length)
            elif state == s.PAYLOAD_PARTIALLY_PRESENT:
                for run in self._map(start, length):
                    if run.kind == DATA:
                        append_extent(own, run.offset, run.length)
                        append_extent(hides_parent, run.offset, run.length)
            else:
                append_extent(hides_parent, start, length)
        if self.parent is None:
            return own
        see_through = complement_extents(hides_parent, self.size)
        return merge_extents(own + intersect_extents(see_through, self.parent.allocated_ranges()))

    # -- differencing ------------------------------------------------------------------------
    def attach_parent(self, parent: DiskImage, path: str) -> None:
        """Check that `parent` is the disk this AVHDX was made on, then read through it."""
        locator = self.parent_locator
        if locator is None:
            raise VhdxError(f"{self.name}: not a differencing disk, it has no parent to attach")
        linkage = {s.parse_guid_text(locator.get(k, "")) for k in ("parent_linkage", "parent_linkage2")} - {None}
        if parent.data_write_guid is None or uuid.UUID(parent.data_write_guid) not in linkage:
            raise VhdxError(
                f"{self.name}: parent {path} has DataWriteGuid {parent.data_write_guid}, but the child expects "
                f"{locator.get('parent_linkage')} (the parent was modified after the child was made)"
            )
        if parent.size != self.size:
            raise VhdxError(f"{self.name}: parent {path} is {parent.size} bytes, the child is {self.size} bytes")
        if parent.logical_sector_size != self.logical_sector_size:
            raise VhdxError(
                f"{self.name}: parent {path} has {parent.logical_sector_size}-byte sectors, the child {self.logical_sector_size}"
            )
        self.parent = parent
        self.parent_path = path


def _add_run(runs: list[Run], offset: int, length: int, kind: int, file_offset: int) -> None:
    if runs:
        last = runs[-1]
        if (
            last.kind == kind
            and last.offset + last.length == offset
            and (kind != DATA or last.file_offset + last.length == file_offset)
        ):
            runs[-1] = Run(last.offset, last.length + length, kind, last.file_offset)
            return
    runs.append(Run(offset, length, kind, file_offset))
