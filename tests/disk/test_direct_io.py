"""Reads and writes that bypass the page cache must return and store exactly what buffered I/O does."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hvbackup import directio
from hvbackup.disk import create_vhdx, open_disk
from hvbackup.disk.errors import DiskError
from hvbackup.disk.source import FileSource
from hvbackup.zeros import is_zero

from .helpers import MiB, qemu_img, sample_raw


def test_aligned_reads_use_o_direct_and_match_the_file(tmp_path: Path) -> None:
    path = tmp_path / "disk.raw"
    data = os.urandom(3 * MiB + 1234)  # the file ends off a block boundary
    path.write_bytes(data)
    source = FileSource(path)
    try:
        for offset, length in ((0, MiB), (MiB, 2 * MiB + 1234), (4096, 512 * 1024)):
            buffer = directio.scratch("test", length)
            buffer[:] = b"\xff" * length
            source.pread_into(buffer, offset)
            assert buffer.tobytes() == data[offset : offset + length]
        assert source._direct_fd is not None, "large aligned reads went through the page cache"
        with pytest.raises(DiskError, match="unexpected end of file"):
            source.pread_into(directio.scratch("test", MiB), 3 * MiB)
    finally:
        source.close()


def test_reused_buffers_read_zeros_where_nothing_is_allocated(tmp_path: Path) -> None:
    raw = tmp_path / "disk.raw"
    sample_raw(raw, 24 * MiB, seed=7)
    vhdx = tmp_path / "disk.vhdx"
    qemu_img("convert", "-O", "vhdx", "-o", "subformat=dynamic,block_size=1M", str(raw), str(vhdx))
    with open_disk(vhdx) as disk:
        for offset in range(0, disk.size, 4 * MiB):
            buffer = directio.scratch("test", 4 * MiB)
            buffer[:] = b"\xee" * len(buffer)  # what the previous chunk left behind
            disk.read_into(buffer, offset)
            assert buffer.tobytes() == raw.read_bytes()[offset : offset + 4 * MiB]


def test_threads_writing_chunks_of_one_block_make_a_vhdx_qemu_reads_back(tmp_path: Path) -> None:
    """VhdxWriter writes payload outside its lock: chunks of the same 32 MiB block from several threads."""
    chunks = [os.urandom(4 * MiB) if n % 5 else bytes(4 * MiB) for n in range(24)]
    path = tmp_path / "out.vhdx"
    with create_vhdx(path, 96 * MiB, block_size=32 * MiB) as writer:
        order = list(range(len(chunks)))[::-1]
        threads = [
            threading.Thread(target=lambda part=order[k::4]: [writer.write(n * 4 * MiB, chunks[n]) for n in part])
            for k in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        writer.flush()
    qemu_img("check", str(path))
    raw = tmp_path / "out.raw"
    qemu_img("convert", "-O", "raw", str(path), str(raw))
    assert raw.read_bytes() == b"".join(chunks)


def _mostly_zero(size_and_spot: tuple[int, int]) -> bytes:
    size, spot = size_and_spot
    data = bytearray(size)
    if size and spot >= 0:
        data[spot % size] = 1
    return bytes(data)


BUFFERS = st.one_of(
    st.binary(max_size=3 * 1024 * 1024 // 64).map(lambda b: b * 64),
    st.tuples(st.integers(0, 3 * MiB), st.integers(-1, 3 * MiB)).map(_mostly_zero),
)


@settings(max_examples=200, deadline=None)
@given(BUFFERS, st.integers(0, 70), st.sampled_from(["bytes", "bytearray", "view"]))
def test_is_zero_agrees_with_comparing_to_zeros(data: bytes, cut: int, kind: str) -> None:
    data = data[cut:]
    value = {"bytes": data, "bytearray": bytearray(data), "view": memoryview(bytearray(b"x" + data))[1:]}[kind]
    assert is_zero(value) == (data == bytes(len(data)))


def test_is_zero_sees_one_byte_at_the_end_of_a_large_view() -> None:
    buffer = bytearray(5 * MiB)
    assert is_zero(memoryview(buffer))
    buffer[-1] = 1
    assert not is_zero(memoryview(buffer)) and not is_zero(bytes(buffer))
