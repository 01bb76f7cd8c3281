"""A file left with a non-empty log is replayed in memory, never written; qemu-img's replay agrees."""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import uuid
from pathlib import Path

import pytest

from hvbackup.disk import VhdxError, open_disk, open_vhdx_writer
from tests.disk.helpers import MiB, qemu_img, sample_raw
from tests.disk.logbuilder import Entry, build_entry, log_region, set_log_guid

SIZE = 24 * MiB
LOG_GUID = uuid.UUID("6f1c1d2e-0000-4000-8000-00000000abcd")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def dirty(tmp_path: Path) -> tuple[Path, bytes]:
    """A qemu-made VHDX whose log moves one block, drops another and zeroes 8 KiB of a third."""
    raw = tmp_path / "source.raw"
    data = bytearray(sample_raw(raw, SIZE, seed=11))
    path = tmp_path / "dirty.vhdx"
    qemu_img("convert", "-f", "raw", "-O", "vhdx", "-o", "block_size=1M", str(raw), str(path))
    with open_disk(path) as disk:
        states = [disk.block_state(b) for b in range(disk.payload_blocks)]
        bat_offset = disk.bat_region.file_offset
        chunk_ratio = disk.chunk_ratio
    present = [b for b, (state, _) in enumerate(states) if state == 6]
    absent = [b for b, (state, _) in enumerate(states) if state != 6]
    moved, dropped, zeroed = absent[0], present[0], present[1]
    assert moved < chunk_ratio and dropped < chunk_ratio

    new_block = os.urandom(MiB)
    file_size = path.stat().st_size
    new_offset = -(-file_size // MiB) * MiB
    with path.open("r+b") as fh:
        fh.seek(new_offset)
        fh.write(new_block)
        fh.seek(bat_offset)
        bat_page = bytearray(fh.read(4096))
    file_size = new_offset + MiB
    struct.pack_into("<Q", bat_page, moved * 8, 6 | (new_offset // MiB) << 20)
    struct.pack_into("<Q", bat_page, dropped * 8, 0)
    zero_at = states[zeroed][1]

    log_offset, _ = log_region(str(path))
    stale = build_entry(Entry(5, zeros=[(bat_offset, 4096)]), LOG_GUID, 0, file_size)
    first = build_entry(Entry(10, data=[(bat_offset, bytes(bat_page))]), LOG_GUID, 8192, file_size)
    second = build_entry(Entry(11, zeros=[(zero_at, 8192)]), LOG_GUID, 8192, file_size)
    with path.open("r+b") as fh:
        fh.seek(log_offset)
        fh.write(stale)
        fh.seek(log_offset + 8192)
        fh.write(first + second)
    set_log_guid(str(path), LOG_GUID)

    data[moved * MiB : (moved + 1) * MiB] = new_block[: min(MiB, SIZE - moved * MiB)]
    data[dropped * MiB : (dropped + 1) * MiB] = bytes(MiB)
    data[zeroed * MiB : zeroed * MiB + 8192] = bytes(8192)
    return path, bytes(data)


def test_dirty_log_is_replayed_in_memory_without_touching_the_file(dirty: tuple[Path, bytes]) -> None:
    path, expected = dirty
    before = _digest(path)
    with open_disk(path) as disk:
        assert disk.log_replayed
        assert disk.read(0, SIZE) == expected
    assert _digest(path) == before, "the backed-up file must never be written"


def test_qemu_replay_gives_the_same_disk(dirty: tuple[Path, bytes], tmp_path: Path) -> None:
    path, expected = dirty
    copy = tmp_path / "qemu-replayed.vhdx"
    shutil.copy(path, copy)
    qemu_img("check", "-r", "all", "-f", "vhdx", str(copy))
    out = tmp_path / "replayed.raw"
    qemu_img("convert", "-f", "vhdx", "-O", "raw", str(copy), str(out))
    assert out.read_bytes() == expected


def test_writer_applies_the_log_to_the_file(dirty: tuple[Path, bytes]) -> None:
    path, expected = dirty
    open_vhdx_writer(path).close()
    with open_disk(path) as disk:
        assert not disk.log_replayed
        assert disk.read(0, SIZE) == expected
    qemu_img("check", "-f", "vhdx", str(path))


def test_broken_newest_entries_fall_back_to_the_older_sequence_then_refuse(dirty: tuple[Path, bytes]) -> None:
    path, _ = dirty
    log_offset, _ = log_region(str(path))
    with path.open("r+b") as fh:  # break the CRC of the active entries (seq 10 and 11)
        for position in (8192 + 100, 8192 + 4096 * 2 + 100):
            fh.seek(log_offset + position)
            fh.write(b"\xff")
    with open_disk(path) as disk:  # the stale entry (seq 5) is now the newest valid sequence: it empties the BAT page
        assert disk.allocated_ranges() == []
    with path.open("r+b") as fh:
        fh.seek(log_offset + 100)
        fh.write(b"\xff")
    with pytest.raises(VhdxError, match="no valid log entry"):
        open_disk(path)


def test_log_that_says_the_file_was_longer_is_refused(dirty: tuple[Path, bytes]) -> None:
    path, _ = dirty
    os.truncate(path, path.stat().st_size - MiB)
    with pytest.raises(VhdxError, match="truncated"):
        open_disk(path)
