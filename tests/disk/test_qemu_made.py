"""VHDX files made by qemu-img read byte-identical to the raw source they were converted from."""

from __future__ import annotations

import random

import pytest

from hvbackup.disk import open_disk
from tests.disk.helpers import MiB, qemu_img, sample_raw, zero_outside

SIZE = 48 * MiB

VARIANTS = {
    "dynamic-1M": ["-o", "subformat=dynamic,block_size=1M"],
    "dynamic-32M": ["-o", "subformat=dynamic,block_size=32M"],
    "dynamic-1M-no-zero-state": ["-o", "subformat=dynamic,block_size=1M,block_state_zero=off"],
    "fixed-8M": ["-o", "subformat=fixed,block_size=8M"],
}


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, bytes]:
    path = tmp_path_factory.mktemp("qemu") / "source.raw"
    return path, sample_raw(path, SIZE, seed=7)


@pytest.mark.parametrize("variant", VARIANTS)
def test_qemu_vhdx_reads_like_its_raw_source(raw: tuple[object, bytes], variant: str) -> None:
    raw_path, data = raw
    path = raw_path.parent / f"{variant}.vhdx"
    qemu_img("convert", "-f", "raw", "-O", "vhdx", *VARIANTS[variant], str(raw_path), str(path))
    with open_disk(path) as disk:
        assert (disk.format, disk.size, disk.logical_sector_size, disk.block_size) == (
            "vhdx",
            SIZE,
            512,
            _block_size(variant),
        )
        assert disk.is_fixed == variant.startswith("fixed")
        assert disk.read(0, SIZE) == data
        rnd = random.Random(variant)
        for _ in range(200):
            offset = rnd.randrange(SIZE)
            length = rnd.randrange(min(SIZE - offset, 5 * MiB) + 1)
            assert disk.read(offset, length) == data[offset : offset + length]
        ranges = disk.allocated_ranges()
        assert zero_outside(data, ranges)
        if not disk.is_fixed:  # qemu allocates only blocks holding data: all others must be skipped
            bs = disk.block_size
            for offset, length in ranges:
                for block in range(offset // bs, (offset + length - 1) // bs + 1):
                    assert data[block * bs : (block + 1) * bs].count(0) < bs, f"empty block {block} reported allocated"


def test_zero_state_blocks_are_not_allocated(raw: tuple[object, bytes]) -> None:
    """qemu marks all-zero blocks ZERO (state 2) by default; they must read as zeros and count as unallocated."""
    raw_path, _data = raw
    path = raw_path.parent / "zero-state.vhdx"
    qemu_img("convert", "-f", "raw", "-O", "vhdx", "-o", "block_size=1M", str(raw_path), str(path))
    with open_disk(path) as disk:
        states = {disk.block_state(b)[0] for b in range(disk.payload_blocks)}
        assert 2 in states and 6 in states
        for block in range(disk.payload_blocks):
            if disk.block_state(block)[0] == 2:
                assert not any(o < (block + 1) * MiB and block * MiB < o + n for o, n in disk.allocated_ranges())


def _block_size(variant: str) -> int:
    return int(variant.split("-")[1].rstrip("M")) * MiB
