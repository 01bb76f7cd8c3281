"""Malformed or inconsistent images are refused with one clear message naming the problem."""

from __future__ import annotations

import os
import struct
import uuid
from pathlib import Path

import crc32c
import pytest

from hvbackup.disk import DiskError, VhdxError, create_differencing, create_vhdx, open_disk, open_vhdx_writer
from hvbackup.disk.vhdx import structures as s
from hvbackup.disk.vhdx.layout import NewDisk, write_new_file
from hvbackup.errors import EXIT_FAILED, HvBackupError
from tests.disk.helpers import MiB

SIZE = 8 * MiB


@pytest.fixture
def disk(tmp_path: Path) -> Path:
    path = tmp_path / "disk.vhdx"
    with create_vhdx(path, SIZE) as writer:
        for block in range(0, 8, 2):
            writer.write(block * MiB, bytes([block + 1]) * MiB)
    return path


def _poke(path: Path, offset: int, data: bytes, crc_block: tuple[int, int] | None = None) -> None:
    """Overwrite bytes; with `crc_block` (start, length) recompute that structure's CRC so the change gets past it."""
    with path.open("r+b") as fh:
        fh.seek(offset)
        fh.write(data)
        if crc_block:
            fh.seek(crc_block[0])
            block = bytearray(fh.read(crc_block[1]))
            struct.pack_into("<I", block, 4, 0)
            struct.pack_into("<I", block, 4, crc32c.crc32c(block))
            fh.seek(crc_block[0])
            fh.write(block)


def _bat_offset(path: Path) -> int:
    with open_disk(path) as image:
        return image.bat_region.file_offset


def test_errors_are_hvbackup_errors_with_exit_code(disk: Path) -> None:
    os.truncate(disk, 100_000)
    with open(disk, "r+b") as fh:
        fh.write(b"vhdxfile")
    with pytest.raises(VhdxError) as caught:
        open_disk(disk)
    assert isinstance(caught.value, DiskError) and isinstance(caught.value, HvBackupError)
    assert caught.value.exit_code == EXIT_FAILED
    assert str(disk) in str(caught.value) and "smaller than the 1 MiB" in str(caught.value)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(DiskError, match=r"nope.vhdx: no such file"):
        open_disk(tmp_path / "nope.vhdx")


@pytest.mark.parametrize("cut", [2 * MiB + 4096, 3 * MiB + 100, 6 * MiB])
def test_truncated_files_are_refused(disk: Path, cut: int) -> None:
    os.truncate(disk, cut)
    with pytest.raises(VhdxError, match="past the end of the file"):
        open_disk(disk)


def test_bat_entry_past_end_of_file(disk: Path) -> None:
    _poke(disk, _bat_offset(disk) + 2 * 8, struct.pack("<Q", 6 | (10_000 << 20)))
    with pytest.raises(VhdxError, match=r"payload block 2 at file offset .* past the end of the file"):
        open_disk(disk)


def test_overlapping_blocks(disk: Path) -> None:
    bat = _bat_offset(disk)
    with disk.open("rb") as fh:
        fh.seek(bat)
        first = fh.read(8)
    _poke(disk, bat + 2 * 8, first)
    with pytest.raises(VhdxError, match=r"payload block 2 at file offset .* overlaps payload block 0"):
        open_disk(disk)


def test_block_over_the_metadata_region(disk: Path) -> None:
    _poke(disk, _bat_offset(disk), struct.pack("<Q", 6 | (2 << 20)))
    with pytest.raises(VhdxError, match="overlaps"):
        open_disk(disk)


def test_unknown_block_state(disk: Path) -> None:
    _poke(disk, _bat_offset(disk) + 8, struct.pack("<Q", 4))
    with pytest.raises(VhdxError, match="payload block 1 has unknown state 4"):
        open_disk(disk)


def test_one_bad_header_falls_back_to_the_other(disk: Path) -> None:
    with open_disk(disk) as image:
        current = s.HEADER_OFFSETS[image.header_slot]
    _poke(disk, current + 200, b"\x01")
    with open_disk(disk) as image:
        assert image.read(0, 1) == b"\x01"
    other = s.HEADER_OFFSETS[1] if current == s.HEADER_OFFSETS[0] else s.HEADER_OFFSETS[0]
    _poke(disk, other + 200, b"\x01")
    with pytest.raises(VhdxError, match=r"no valid header.*CRC-32C mismatch"):
        open_disk(disk)


def test_region_table_checksum_and_required_regions(disk: Path) -> None:
    _poke(disk, s.REGION_TABLE_OFFSETS[0] + 40, b"\x07")
    with open_disk(disk) as image:  # region table 2 still serves
        assert image.size == SIZE
    unknown = s.Region(uuid.uuid4(), 100 * MiB, MiB, True)
    table = s.build_region_table([s.Region(s.BAT_REGION, 3 * MiB, MiB, True), unknown])
    for offset in s.REGION_TABLE_OFFSETS:
        _poke(disk, offset, table)
    with pytest.raises(VhdxError, match="unknown required region"):
        open_disk(disk)


def test_bad_metadata_values(disk: Path) -> None:
    with open_disk(disk) as image:
        metadata = image.metadata_region.file_offset
    _poke(disk, metadata + s.METADATA_TABLE_SIZE, struct.pack("<I", 3 * MiB))  # block size: not a power of two
    with pytest.raises(VhdxError, match="block size 3145728 is not a power of two"):
        open_disk(disk)


def _differencing(path: Path, size: int, locator: dict[str, str]) -> None:
    write_new_file(str(path), NewDisk(size, MiB, 512, 4096, parent_locator=locator))


def test_missing_parent_names_the_path(tmp_path: Path, disk: Path) -> None:
    child = tmp_path / "child.avhdx"
    create_differencing(child, disk).close()
    disk.rename(tmp_path / "moved.vhdx")
    with pytest.raises(VhdxError, match=f"child.avhdx: parent disk not found \\(tried {tmp_path}/disk.vhdx\\)"):
        open_disk(child)


def test_parent_changed_after_child_was_made(tmp_path: Path, disk: Path) -> None:
    child = tmp_path / "child.avhdx"
    create_differencing(child, disk).close()
    with open_vhdx_writer(disk) as writer:
        writer.write(0, b"x")
    with pytest.raises(VhdxError, match=r"DataWriteGuid .* \(the parent was modified"):
        open_disk(child)


def test_parent_of_a_different_size(tmp_path: Path, disk: Path) -> None:
    with open_disk(disk) as parent:
        linkage = s.guid_text(uuid.UUID(parent.data_write_guid))
    child = tmp_path / "child.avhdx"
    _differencing(child, 4 * MiB, {"parent_linkage": linkage, "relative_path": "disk.vhdx"})
    with pytest.raises(VhdxError, match="is 8388608 bytes, the child is 4194304 bytes"):
        open_disk(child)


def test_loop_in_parent_chain(tmp_path: Path) -> None:
    linkage = s.guid_text(uuid.uuid4())
    _differencing(tmp_path / "a.avhdx", SIZE, {"parent_linkage": linkage, "relative_path": ".\\b.avhdx"})
    _differencing(tmp_path / "b.avhdx", SIZE, {"parent_linkage": linkage, "relative_path": ".\\a.avhdx"})
    with pytest.raises(VhdxError, match=r"parent chain loops back to .*a.avhdx"):
        open_disk(tmp_path / "a.avhdx")


def test_parent_locator_without_linkage(tmp_path: Path) -> None:
    _differencing(tmp_path / "c.avhdx", SIZE, {"relative_path": "p.vhdx"})
    with pytest.raises(VhdxError, match="parent locator has no parent_linkage"):
        open_disk(tmp_path / "c.avhdx")


def test_writes_outside_the_disk_are_refused(disk: Path) -> None:
    with open_vhdx_writer(disk) as writer, pytest.raises(VhdxError, match="outside the disk"):
        writer.write(SIZE - 1, b"ab")
    with open_disk(disk) as image, pytest.raises(DiskError, match="outside the disk"):
        image.read(SIZE, 1)
