"""Payload block states: UNDEFINED, ZERO, UNMAPPED (3, and 5 as qemu wrote it) read as zeros and hide the parent."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from hvbackup.disk import create_differencing, create_vhdx, open_disk
from tests.disk.helpers import MiB

SIZE = 4 * MiB


def _set_state(path: Path, block: int, state: int) -> None:
    with open_disk(path) as disk:
        entry_offset = disk.bat_region.file_offset + disk._payload_index(block) * 8
    with path.open("r+b") as fh:
        fh.seek(entry_offset)
        fh.write(struct.pack("<Q", state))


@pytest.mark.parametrize("state", [1, 2, 3, 5])
def test_zero_like_states_read_zero_and_hide_the_parent(tmp_path: Path, state: int) -> None:
    parent, child = tmp_path / "parent.vhdx", tmp_path / "child.avhdx"
    with create_vhdx(parent, SIZE) as writer:
        writer.write(0, b"\x01" * SIZE)
    with create_differencing(child, parent) as writer:
        writer.write(MiB, b"\x02" * MiB)
    _set_state(child, 1, state)
    with open_disk(child) as disk:
        assert disk.read(0, 3 * MiB) == b"\x01" * MiB + bytes(MiB) + b"\x01" * MiB
        assert disk.allocated_ranges() == [(0, MiB), (2 * MiB, 2 * MiB)]
    _set_state(parent, 0, state)
    with open_disk(parent) as disk:
        assert disk.read(0, 2 * MiB) == bytes(MiB) + b"\x01" * MiB
        assert disk.allocated_ranges() == [(MiB, 3 * MiB)]


def test_whole_zero_block_written_into_a_child_becomes_a_zero_block(tmp_path: Path) -> None:
    """Zeros over a parent's data must read as zeros, without storing a block of zeros."""
    parent, child = tmp_path / "parent.vhdx", tmp_path / "child.avhdx"
    with create_vhdx(parent, SIZE) as writer:
        writer.write(0, b"\x01" * SIZE)
    with create_differencing(child, parent) as writer:
        writer.write(MiB, bytes(MiB))
    with open_disk(child) as disk:
        assert disk.block_state(1)[0] == 2
        assert disk.read(MiB - 1, 2) == b"\x01\x00"
