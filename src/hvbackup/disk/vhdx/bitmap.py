"""Sector bitmaps of differencing disks: bit i set = sector i is in this file, clear = in the parent."""

from __future__ import annotations


def bit_runs(bitmap: bytes | bytearray, first: int, count: int) -> list[tuple[int, int, int]]:
    """(bit value, first bit relative to `first`, run length) for bits [first, first + count)."""
    lo = first // 8
    value = int.from_bytes(bitmap[lo : (first + count + 7) // 8], "little") >> (first - lo * 8)
    value &= (1 << count) - 1
    runs: list[tuple[int, int, int]] = []
    i = 0
    while i < count:
        bit = (value >> i) & 1
        other = ~(value >> i) if bit else value >> i  # lowest set bit of `other` ends this run
        length = count - i if other == 0 else min((other & -other).bit_length() - 1, count - i)
        runs.append((bit, i, length))
        i += length
    return runs


def set_bits(bitmap: bytearray, first: int, count: int) -> None:
    """Set bits [first, first + count) of a little-endian bit array."""
    end = first + count
    while first < end and first % 8:
        bitmap[first // 8] |= 1 << (first % 8)
        first += 1
    whole = (end - first) // 8
    if whole > 0:
        bitmap[first // 8 : first // 8 + whole] = b"\xff" * whole
        first += whole * 8
    while first < end:
        bitmap[first // 8] |= 1 << (first % 8)
        first += 1
