"""VHD (Virtual PC / Hyper-V generation 1 format): fixed and dynamic disks, read-only.

Footer, dynamic-disk header and BAT are big-endian. A dynamic block is a sector bitmap followed by
the data; like other readers we take an allocated block as wholly present.
"""

from __future__ import annotations

import struct
import sys
from array import array

from hvbackup.disk.errors import VhdError
from hvbackup.disk.extents import Extent, append_extent
from hvbackup.disk.image import DATA, ZERO, DiskImage, Run
from hvbackup.disk.source import ByteSource, read_exact

FOOTER_SIZE = 512
FOOTER_COOKIE = b"conectix"
DYNAMIC_COOKIE = b"cxsparse"
TYPE_FIXED, TYPE_DYNAMIC, TYPE_DIFFERENCING = 2, 3, 4
UNALLOCATED = 0xFFFFFFFF
_FOOTER = struct.Struct(">8sIIQI4sI4sQQIII16sB")
_DYNAMIC = struct.Struct(">8sQQIIII")


def has_vhd_footer(source: ByteSource) -> bool:
    return source.size >= FOOTER_SIZE and source.pread(source.size - FOOTER_SIZE, 8) == FOOTER_COOKIE


def _ones_complement_ok(block: bytes, checksum_offset: int) -> bool:
    (stored,) = struct.unpack_from(">I", block, checksum_offset)
    total = sum(block[:checksum_offset]) + sum(block[checksum_offset + 4 :])
    return (~total & 0xFFFFFFFF) == stored


class VhdImage(DiskImage):
    format = "vhd"
    _bat: array[int] | None  # None for a fixed disk

    def __init__(self, source: ByteSource) -> None:
        super().__init__(source)
        try:
            self._open()
        except VhdError as error:
            raise VhdError(f"{source.name}: {error}") from None

    def _open(self) -> None:
        footer = read_exact(self.source, self.source.size - FOOTER_SIZE, FOOTER_SIZE, "VHD footer")
        fields = _FOOTER.unpack_from(footer)
        data_offset, self.size, disk_type, unique_id = fields[3], fields[9], fields[11], fields[13]
        if not _ones_complement_ok(footer, 64):
            raise VhdError("footer checksum mismatch")
        self.virtual_disk_id = unique_id.hex()
        self.is_fixed = disk_type == TYPE_FIXED
        if disk_type == TYPE_DIFFERENCING:
            raise VhdError("differencing VHD files are not supported (convert or merge them on the host first)")
        if disk_type == TYPE_FIXED:
            if self.size > self.source.size - FOOTER_SIZE:
                raise VhdError(
                    f"fixed disk of {self.size} bytes does not fit in the {self.source.size}-byte file (truncated?)"
                )
            self._bat = None
            return
        if disk_type != TYPE_DYNAMIC:
            raise VhdError(f"unknown disk type {disk_type}")
        self._open_dynamic(data_offset)

    def _open_dynamic(self, header_offset: int) -> None:
        header = read_exact(self.source, header_offset, 1024, "dynamic disk header")
        cookie, _, table_offset, _, entries, block_size, _ = _DYNAMIC.unpack_from(header)
        if cookie != DYNAMIC_COOKIE:
            raise VhdError(f"dynamic disk header has bad cookie {cookie!r}")
        if not _ones_complement_ok(header, 36):
            raise VhdError("dynamic disk header checksum mismatch")
        if block_size < 512 or block_size & (block_size - 1) or block_size > 256 * 1024 * 1024:
            raise VhdError(f"block size {block_size} is not a power of two from 512 bytes to 256 MiB")
        if entries * block_size < self.size:
            raise VhdError(f"BAT of {entries} entries cannot cover {self.size} bytes")
        self.block_size = block_size
        needed = -(-self.size // block_size)
        self._bat = array("I", read_exact(self.source, table_offset, needed * 4, "BAT"))
        if sys.byteorder == "little":
            self._bat.byteswap()
        self._bitmap_size = -(-(block_size // 512 // 8) // 512) * 512
        for block, sector in enumerate(self._bat):
            if (
                sector != UNALLOCATED
                and sector * 512 + self._bitmap_size + min(block_size, self.size - block * block_size)
                > self.source.size
            ):
                raise VhdError(f"BAT: block {block} at sector {sector} lies past the end of the file")

    def _data_offset(self, bat: array[int], block: int) -> int | None:
        sector = bat[block]
        return None if sector == UNALLOCATED else sector * 512 + self._bitmap_size

    def _map(self, offset: int, length: int) -> list[Run]:
        bat, block_size = self._bat, self.block_size
        if bat is None or block_size is None:  # a fixed disk
            return [Run(offset, length, DATA, offset)]
        runs: list[Run] = []
        position, end = offset, offset + length
        while position < end:
            block, in_block = divmod(position, block_size)
            count = min(block_size - in_block, end - position)
            data = self._data_offset(bat, block)
            if data is None:
                runs.append(Run(position, count, ZERO))
            else:
                runs.append(Run(position, count, DATA, data + in_block))
            position += count
        return runs

    def allocated_ranges(self) -> list[Extent]:
        bat, block_size = self._bat, self.block_size
        if bat is None or block_size is None:  # a fixed disk
            return [(0, self.size)]
        extents: list[Extent] = []
        for block in range(len(bat)):
            if bat[block] != UNALLOCATED:
                start = block * block_size
                append_extent(extents, start, min(block_size, self.size - start))
        return extents
