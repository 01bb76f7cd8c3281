"""Random write sequences behave like the same writes on a plain bytearray; merge applies the child."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hvbackup.disk import create_differencing, create_vhdx, merge_differencing, open_disk
from tests.disk.helpers import MiB

SIZE = 6 * MiB
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def writes(draw: st.DrawFn, size: int = SIZE) -> list[tuple[int, bytes]]:
    result = []
    for _ in range(draw(st.integers(1, 12))):
        offset = draw(st.one_of(st.integers(0, size - 1), st.sampled_from([0, MiB - 1, MiB, 3 * MiB - 512, size - 1])))
        length = draw(st.one_of(st.integers(1, 5000), st.sampled_from([512, 4096, MiB, MiB + 1, 2 * MiB])))
        length = min(length, size - offset)
        kind = draw(st.sampled_from(["random", "zero", "fill"]))
        if kind == "zero":
            data = bytes(length)
        elif kind == "fill":
            data = bytes([draw(st.integers(1, 255))]) * length
        else:
            data = draw(st.binary(min_size=min(length, 64), max_size=min(length, 64))) * (length // 64 + 1)
            data = data[:length] if data else bytes([7]) * length
        result.append((offset, data))
    return result


def _apply(model: bytearray, sequence: list[tuple[int, bytes]]) -> None:
    for offset, data in sequence:
        model[offset : offset + len(data)] = data


def _check_ranges(disk, model: bytes) -> None:
    """Everything outside the reported allocated ranges must be zero."""
    position = 0
    for offset, length in [*disk.allocated_ranges(), (len(model), 0)]:
        assert model[position:offset].count(0) == offset - position
        position = offset + length


@SETTINGS
@given(sequence=writes(), sector=st.sampled_from([512, 4096]))
def test_dynamic_disk_equals_bytearray(tmp_path: Path, sequence: list[tuple[int, bytes]], sector: int) -> None:
    path = tmp_path / f"d{sector}.vhdx"
    model = bytearray(SIZE)
    with create_vhdx(path, SIZE, block_size=MiB, logical_sector_size=sector) as disk:
        for offset, data in sequence:
            disk.write(offset, data)
            model[offset : offset + len(data)] = data
        assert disk.read(0, SIZE) == model
    with open_disk(path) as disk:
        assert disk.read(0, SIZE) == model
        _check_ranges(disk, bytes(model))


@SETTINGS
@given(base=writes(), top=writes(), sector=st.sampled_from([512, 4096]))
def test_differencing_chain_and_merge_equal_bytearray(
    tmp_path: Path, base: list[tuple[int, bytes]], top: list[tuple[int, bytes]], sector: int
) -> None:
    parent, child = tmp_path / f"p{sector}.vhdx", tmp_path / f"c{sector}.avhdx"
    model = bytearray(SIZE)
    with create_vhdx(parent, SIZE, block_size=MiB, logical_sector_size=sector) as disk:
        for offset, data in base:
            disk.write(offset, data)
    _apply(model, base)
    parent_only = bytes(model)
    with create_differencing(child, parent) as disk:
        for offset, data in top:
            disk.write(offset, data)
    _apply(model, top)
    with open_disk(child) as disk:
        assert disk.read(0, SIZE) == model
        _check_ranges(disk, bytes(model))
    with open_disk(parent) as disk:
        assert disk.read(0, SIZE) == parent_only, "writing the child must not change the parent"
    merge_differencing(child)
    assert not child.exists()
    with open_disk(parent) as disk:
        assert disk.read(0, SIZE) == model
