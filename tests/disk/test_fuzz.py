"""Bounded fuzzing: corrupted headers, region tables, metadata, parent locators, BATs and logs.

Every malformed image must give a DiskError (VhdxError for VHDX) with a message, or open and read
consistently; never another exception, a hang, or an allocation sized by a field from the file.
"""

from __future__ import annotations

import struct
import tracemalloc
import uuid

import crc32c
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hvbackup.disk import DiskError, create_differencing, create_vhdx, open_disk
from hvbackup.disk.vhdx import structures as s
from tests.disk.helpers import MemorySource, MiB
from tests.disk.logbuilder import Entry, build_entry, log_region, set_log_guid

SIZE = 8 * MiB
PEAK_LIMIT = 64 * MiB  # the files are ~12 MiB; reading one must never need much more


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("fuzz")
    parent, child = folder / "parent.vhdx", folder / "child.avhdx"
    with create_vhdx(parent, SIZE, block_size=MiB) as disk:
        disk.write(0, b"\x11" * (3 * MiB))
    with create_differencing(child, parent) as disk:
        disk.write(MiB + 1000, b"\x22" * 5000)  # a partially present block with its sector bitmap
        disk.write(4 * MiB, b"\x33" * MiB)
    with open_disk(child) as image:
        layout = {
            "header": [(offset, 80, (offset, s.HEADER_SIZE)) for offset in s.HEADER_OFFSETS],
            "region table": [(offset, 80, (offset, s.REGION_TABLE_SIZE)) for offset in s.REGION_TABLE_OFFSETS],
            "metadata": [
                (image.metadata_region.file_offset, 32 * 8, None),
                (image.metadata_region.file_offset + s.METADATA_TABLE_SIZE, 400, None),
            ],
            "BAT": [(image.bat_region.file_offset, 8 * 16, None)],
            "sector bitmap": [((image._bat[image.chunk_ratio] >> 20) * MiB, 64, None)],
        }
        bat_page_offset = image.bat_region.file_offset
    with child.open("rb") as fh:
        fh.seek(bat_page_offset)
        bat_page = fh.read(4096)
    clean = child.read_bytes()
    log_guid = uuid.uuid4()
    log_offset, _ = log_region(str(child))
    entry = build_entry(
        Entry(3, data=[(bat_page_offset, bat_page)], zeros=[(512 * 1024, 4096)]), log_guid, 0, child.stat().st_size
    )
    with child.open("r+b") as fh:
        fh.seek(log_offset)
        fh.write(entry)
    set_log_guid(str(child), log_guid)
    layout["log"] = [(log_offset, 64 + 32 * 2, (log_offset, len(entry))), (log_offset + 4096, 16, None)]
    return {"clean": clean, "dirty": child.read_bytes(), "parent": parent.read_bytes(), "layout": layout}


def _mutate(
    data: bytes, where: tuple[int, int, tuple[int, int] | None], position: int, patch: bytes, fix_crc: bool
) -> bytes:
    start, span, crc_block = where
    mutated = bytearray(data)
    offset = start + position % span
    mutated[offset : offset + len(patch)] = patch
    if fix_crc and crc_block is not None:
        block_start, block_length = crc_block
        block = mutated[block_start : block_start + block_length]
        struct.pack_into("<I", block, 4, 0)
        struct.pack_into("<I", mutated, block_start + 4, crc32c.crc32c(block))
    return bytes(mutated)


PATCHES = st.one_of(
    st.binary(min_size=1, max_size=8),
    st.sampled_from(
        [
            b"\x00" * 8,
            b"\xff" * 8,
            struct.pack("<Q", 1 << 40),
            struct.pack("<I", 0x7FFFFFFF),
            struct.pack("<Q", 6 | (1 << 40)),
        ]
    ),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    data=st.data(), position=st.integers(0, 10_000), patch=PATCHES, fix_crc=st.booleans(), truncate=st.integers(0, 20)
)
def test_malformed_vhdx_gives_disk_error_or_reads(
    images: dict, data: st.DataObject, position: int, patch: bytes, fix_crc: bool, truncate: int
) -> None:
    layout = images["layout"]
    target = data.draw(st.sampled_from(sorted(layout)))
    where = data.draw(st.sampled_from(layout[target]))
    base = "dirty" if target == "log" else data.draw(st.sampled_from(["clean", "dirty"]))
    mutated = _mutate(images[base], where, position, patch, fix_crc)
    if truncate == 1:
        mutated = mutated[: len(mutated) // 2]
    parent = images["parent"]
    tracemalloc.start()
    try:
        with open_disk(MemorySource(mutated, "child.avhdx"), opener=lambda name: MemorySource(parent, name)) as disk:
            for offset, length in disk.allocated_ranges():
                assert offset >= 0 and offset + length <= disk.size
            disk.read(0, min(disk.size, 2 * SIZE))
            disk.read(MiB + 999, min(3, disk.size - MiB - 999))
    except DiskError as error:
        assert str(error), "a refusal must say what is wrong"

    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < PEAK_LIMIT, f"{target}: {peak} bytes allocated"
