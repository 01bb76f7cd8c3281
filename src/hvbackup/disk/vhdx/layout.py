"""The layout of a new VHDX file (after [MS-VHDX] 2.2 and the qemu recipe in docs/DISK.md §1).

0        file identifier, headers 1 and 2, region tables 1 and 2 (1 MiB)
1 MiB    log (1 MiB, empty: LogGuid zero)
2 MiB    metadata region (1 MiB)
3 MiB    BAT (rounded up to 1 MiB)
...      payload and sector bitmap blocks, 1 MiB aligned
"""

from __future__ import annotations

import os
import struct
import uuid
from array import array
from dataclasses import dataclass

from hvbackup.atomic import replacing
from hvbackup.disk.errors import VhdxError
from hvbackup.disk.vhdx import structures as s

LOG_OFFSET = 1 * s.MiB
LOG_LENGTH = 1 * s.MiB
METADATA_OFFSET = 2 * s.MiB
METADATA_LENGTH = 1 * s.MiB
BAT_OFFSET = 3 * s.MiB
CREATOR = "hvbackup"


@dataclass
class NewDisk:
    size: int
    block_size: int
    logical_sector_size: int
    physical_sector_size: int
    fixed: bool = False
    virtual_disk_id: uuid.UUID | None = None
    parent_locator: dict[str, str] | None = None

    def check(self) -> None:
        if self.logical_sector_size not in (512, 4096) or self.physical_sector_size not in (512, 4096):
            raise VhdxError("sector sizes must be 512 or 4096")
        if not 0 < self.size <= s.MAX_VIRTUAL_SIZE or self.size % self.logical_sector_size:
            raise VhdxError(f"size {self.size} must be a positive multiple of {self.logical_sector_size} up to 64 TiB")
        bs = self.block_size
        if not s.MIN_BLOCK_SIZE <= bs <= s.MAX_BLOCK_SIZE or bs & (bs - 1):
            raise VhdxError(f"block size {bs} must be a power of two from 1 MiB to 256 MiB")
        if self.fixed and self.parent_locator is not None:
            raise VhdxError("a differencing disk cannot be fixed")


def _round_mib(value: int) -> int:
    return -(-value // s.MiB) * s.MiB


def write_new_file(path: str, disk: NewDisk) -> None:
    """Write a complete, empty VHDX to `path` (via a temporary name, so no half-made file is left)."""
    disk.check()
    has_parent = disk.parent_locator is not None
    ratio = s.chunk_ratio(disk.block_size, disk.logical_sector_size)
    blocks = -(-disk.size // disk.block_size)
    entries = s.bat_entry_count(blocks, ratio, has_parent)
    bat_length = _round_mib(entries * 8)
    payload_start = BAT_OFFSET + bat_length
    bat = array("Q", bytes(entries * 8))
    file_size = payload_start
    if disk.fixed:
        for block in range(blocks):
            bat[block + block // ratio] = s.bat_entry(s.PAYLOAD_FULLY_PRESENT, payload_start + block * disk.block_size)
        file_size += blocks * disk.block_size
    header = s.Header(0, uuid.uuid4(), uuid.uuid4(), uuid.UUID(int=0), LOG_LENGTH, LOG_OFFSET)
    regions = s.build_region_table(
        [
            s.Region(s.BAT_REGION, BAT_OFFSET, bat_length, True),
            s.Region(s.METADATA_REGION, METADATA_OFFSET, METADATA_LENGTH, True),
        ]
    )
    with replacing(path, mode=0o644) as fd:
        os.ftruncate(fd, file_size)
        os.pwrite(fd, s.build_file_identifier(CREATOR), 0)
        for number, offset in enumerate(s.HEADER_OFFSETS, start=1):
            header.sequence_number = number
            os.pwrite(fd, header.build(), offset)
        for offset in s.REGION_TABLE_OFFSETS:
            os.pwrite(fd, regions, offset)
        os.pwrite(fd, _metadata(disk), METADATA_OFFSET)
        os.pwrite(fd, bat.tobytes(), BAT_OFFSET)


def _metadata(disk: NewDisk) -> bytes:
    required, virtual = s.METADATA_IS_REQUIRED, s.METADATA_IS_REQUIRED | s.METADATA_IS_VIRTUAL_DISK
    params = s.FileParameters(disk.block_size, disk.fixed, disk.parent_locator is not None)
    items = [
        (s.FILE_PARAMETERS, required, params.build()),
        (s.VIRTUAL_DISK_SIZE, virtual, struct.pack("<Q", disk.size)),
        (s.PAGE83_DATA, virtual, (disk.virtual_disk_id or uuid.uuid4()).bytes_le),
        (s.LOGICAL_SECTOR_SIZE, virtual, struct.pack("<I", disk.logical_sector_size)),
        (s.PHYSICAL_SECTOR_SIZE, virtual, struct.pack("<I", disk.physical_sector_size)),
    ]
    if disk.parent_locator is not None:
        items.append((s.PARENT_LOCATOR, required, s.ParentLocator(disk.parent_locator).build()))
    return s.build_metadata_region(items, METADATA_LENGTH)
