"""VHD (fixed, dynamic) and raw images read through the same interface."""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

import pytest

from hvbackup.disk import VhdError, open_disk
from tests.disk.helpers import MiB, qemu_img, sample_raw, zero_outside

SIZE = 20 * MiB


@pytest.mark.parametrize("subformat", ["dynamic", "fixed"])
def test_qemu_vhd_reads_like_its_raw_source(tmp_path: Path, subformat: str) -> None:
    raw = tmp_path / "source.raw"
    data = sample_raw(raw, SIZE, seed=21)
    path = tmp_path / f"{subformat}.vhd"
    qemu_img("convert", "-f", "raw", "-O", "vpc", "-o", f"subformat={subformat},force_size=on", str(raw), str(path))
    with open_disk(path) as disk:
        assert (disk.format, disk.size, disk.is_fixed) == ("vhd", SIZE, subformat == "fixed")
        assert disk.read(0, SIZE) == data
        assert disk.read(3 * MiB - 7, MiB + 9) == data[3 * MiB - 7 : 4 * MiB + 2]
        ranges = disk.allocated_ranges()
        assert zero_outside(data, ranges)
        if subformat == "dynamic":
            assert sum(n for _, n in ranges) < SIZE


def test_differencing_vhd_is_refused(tmp_path: Path) -> None:
    """qemu cannot make one: turn a dynamic VHD's footer into a differencing one (type 4, checksum fixed)."""
    child = tmp_path / "child.vhd"
    qemu_img("create", "-f", "vpc", str(child), "8M")
    with child.open("r+b") as fh:
        fh.seek(-512, os.SEEK_END)
        footer = bytearray(fh.read(512))
        struct.pack_into(">I", footer, 60, 4)
        struct.pack_into(">I", footer, 64, 0)
        struct.pack_into(">I", footer, 64, ~sum(footer) & 0xFFFFFFFF)
        fh.seek(-512, os.SEEK_END)
        fh.write(footer)
    with pytest.raises(VhdError, match="differencing VHD files are not supported"):
        open_disk(child)


def test_vhd_with_bad_footer_checksum_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.vhd"
    qemu_img("create", "-f", "vpc", "-o", "subformat=fixed", str(path), "4M")
    with path.open("r+b") as fh:
        fh.seek(-512 + 40, os.SEEK_END)
        fh.write(b"\x7f")
    with pytest.raises(VhdError, match="footer checksum mismatch"):
        open_disk(path)


def test_sparse_raw_file_skips_holes(tmp_path: Path) -> None:
    path = tmp_path / "sparse.raw"
    with path.open("wb") as fh:
        fh.truncate(64 * MiB)
        fh.seek(8 * MiB)
        fh.write(b"a" * MiB)
        fh.seek(40 * MiB)
        fh.write(b"b" * 4096)
    with open_disk(path) as disk:
        assert (disk.format, disk.size, disk.block_size) == ("raw", 64 * MiB, None)
        ranges = disk.allocated_ranges()
        assert sum(n for _, n in ranges) <= 2 * MiB
        assert any(o <= 8 * MiB < o + n for o, n in ranges) and any(o <= 40 * MiB < o + n for o, n in ranges)
        assert disk.read(8 * MiB - 1, 2) == b"\0a"


@pytest.mark.root
def test_block_device_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "backing.raw"
    data = sample_raw(path, 16 * MiB, seed=5)
    device = subprocess.run(
        ["losetup", "--find", "--show", "--read-only", str(path)], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        with open_disk(device) as disk:
            assert (disk.format, disk.size) == ("raw", 16 * MiB)
            assert disk.allocated_ranges() == [(0, 16 * MiB)]
            assert disk.read(MiB + 3, 5000) == data[MiB + 3 : MiB + 5003]
    finally:
        subprocess.run(["losetup", "--detach", device], check=True)
