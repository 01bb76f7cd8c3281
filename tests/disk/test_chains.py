"""Differencing chains: deeper chains, parent lookup through the locator paths, merge, concurrent reads."""

from __future__ import annotations

import random
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hvbackup.disk import (
    FileSource,
    create_differencing,
    create_vhdx,
    finish_merge,
    merge_differencing,
    open_disk,
    open_vhdx_writer,
)
from hvbackup.disk.vhdx import structures as s
from hvbackup.disk.vhdx.layout import NewDisk, write_new_file
from tests.disk.helpers import MiB

SIZE = 12 * MiB


def _scribble(writer, model: bytearray, seed: int, count: int = 25) -> None:
    rnd = random.Random(seed)
    for _ in range(count):
        offset = rnd.randrange(SIZE)
        data = rnd.randbytes(min(rnd.choice([100, 4096, 300_000, MiB + 5]), SIZE - offset))
        writer.write(offset, data)
        model[offset : offset + len(data)] = data


def test_three_level_chain_reads_and_merges_step_by_step(tmp_path: Path) -> None:
    model = bytearray(SIZE)
    base, middle, top = tmp_path / "base.vhdx", tmp_path / "middle.avhdx", tmp_path / "top.avhdx"
    with create_vhdx(base, SIZE) as writer:
        _scribble(writer, model, 1)
    with create_differencing(middle, base) as writer:
        _scribble(writer, model, 2)
    after_middle = bytes(model)
    with create_differencing(top, middle) as writer:
        _scribble(writer, model, 3)
    with open_disk(top) as disk:
        assert disk.parent.parent.format == "vhdx" and disk.parent.parent.parent is None
        assert disk.read(0, SIZE) == model
        assert sum(n for _, n in disk.allocated_ranges()) >= sum(n for _, n in disk.parent.allocated_ranges())
    with open_disk(middle) as disk:
        assert disk.read(0, SIZE) == after_middle
    merge_differencing(top)  # into a differencing parent
    with open_disk(middle) as disk:
        assert disk.read(0, SIZE) == model
    merge_differencing(middle)
    with open_disk(base) as disk:
        assert disk.read(0, SIZE) == model and not disk.is_differencing


def test_absolute_path_is_used_when_the_relative_one_fails(tmp_path: Path) -> None:
    base = tmp_path / "base.vhdx"
    create_vhdx(base, SIZE).close()
    (tmp_path / "elsewhere").mkdir()
    child = tmp_path / "child.avhdx"
    create_differencing(child, base).close()
    moved = tmp_path / "elsewhere" / "child.avhdx"
    shutil.move(child, moved)
    with open_disk(moved) as disk:
        assert disk.parent_path == str(base)


def test_windows_locator_paths_go_through_the_opener(tmp_path: Path) -> None:
    """A child made by Hyper-V names its parent by Windows paths; the opener maps them (e.g. onto an SMB share)."""
    base = tmp_path / "base.vhdx"
    with create_vhdx(base, SIZE) as writer:
        writer.write(0, b"parent data")
    with open_disk(base) as parent:
        linkage, disk_id = parent.data_write_guid, parent.virtual_disk_id
    child = tmp_path / "child.avhdx"
    locator = {
        "parent_linkage": s.guid_text(uuid.UUID(linkage)),
        "relative_path": "..\\Other\\base.vhdx",
        "volume_path": "\\\\?\\Volume{26a21bda-a627-11d7-9931-806e6f6e6963}\\VMs\\base.vhdx",
        "absolute_win32_path": "D:\\VMs\\base.vhdx",
    }
    write_new_file(
        str(child), NewDisk(SIZE, MiB, 512, 4096, parent_locator=locator, virtual_disk_id=uuid.UUID(disk_id))
    )
    asked: list[str] = []

    def opener(name: str) -> FileSource:
        asked.append(name)
        return FileSource(base if name == locator["volume_path"] else name)

    with open_disk(str(child), opener=opener) as disk:
        assert disk.read(0, 11) == b"parent data"
        assert disk.parent_path == locator["volume_path"]
    assert asked == [
        str(child),
        str(tmp_path.parent / "Other" / "base.vhdx"),
        "D:\\VMs\\base.vhdx",
        locator["volume_path"],
    ]


def test_interrupted_merge_can_be_run_again(tmp_path: Path) -> None:
    model = bytearray(SIZE)
    base, child = tmp_path / "base.vhdx", tmp_path / "child.avhdx"
    with create_vhdx(base, SIZE) as writer:
        _scribble(writer, model, 5)
    with create_differencing(child, base) as writer:
        _scribble(writer, model, 6)
    with open_disk(child) as disk:  # half of a merge: the first 6 MiB of the child reach the parent
        half = disk.read(0, 6 * MiB)
    with open_vhdx_writer(base, change_data_write_guid=False) as writer:
        writer.write(0, half)
    merge_differencing(child)
    with open_disk(base) as disk:
        assert disk.read(0, SIZE) == model


def test_a_merge_stopped_after_its_data_half_leaves_a_chain_that_opens(tmp_path: Path) -> None:
    """The lab records the chain between the halves; a proxy killed there must find a working chain."""
    model = bytearray(SIZE)
    base, child = tmp_path / "base.vhdx", tmp_path / "child.avhdx"
    with create_vhdx(base, SIZE) as writer:
        _scribble(writer, model, 9)
    with create_differencing(child, base) as writer:
        _scribble(writer, model, 10)
    with open_disk(base) as disk:
        guid = disk.data_write_guid
    merge_differencing(child, finish=False)
    with open_disk(child) as chain, open_disk(base) as parent:
        assert chain.read(0, SIZE) == model == parent.read(0, SIZE)
        assert parent.data_write_guid == guid
    finish_merge(child, base)
    assert not child.exists()
    with open_disk(base) as disk:
        assert disk.read(0, SIZE) == model and disk.data_write_guid != guid


def test_concurrent_reads_equal_sequential_reads(tmp_path: Path) -> None:
    model = bytearray(SIZE)
    base, child = tmp_path / "base.vhdx", tmp_path / "child.avhdx"
    with create_vhdx(base, SIZE) as writer:
        _scribble(writer, model, 7)
    with create_differencing(child, base) as writer:
        _scribble(writer, model, 8, count=60)
    pieces = [(offset, min(MiB + 17, SIZE - offset)) for offset in range(0, SIZE, 333_333)] * 4
    with open_disk(child) as disk, ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda piece: disk.read(*piece), pieces))
    assert results == [bytes(model[o : o + n]) for o, n in pieces]
