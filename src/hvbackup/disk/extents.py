"""Sorted, non-overlapping (offset, length) lists and the few set operations the images need."""

from __future__ import annotations

Extent = tuple[int, int]


def merge_extents(extents: list[Extent]) -> list[Extent]:
    """Sort and merge touching or overlapping extents; drop empty ones."""
    merged: list[list[int]] = []
    for offset, length in sorted(e for e in extents if e[1] > 0):
        if merged and offset <= merged[-1][0] + merged[-1][1]:
            end = max(merged[-1][0] + merged[-1][1], offset + length)
            merged[-1][1] = end - merged[-1][0]
        else:
            merged.append([offset, length])
    return [(o, n) for o, n in merged]


def intersect_extents(a: list[Extent], b: list[Extent]) -> list[Extent]:
    """The pieces present in both sorted, merged lists."""
    result: list[Extent] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start = max(a[i][0], b[j][0])
        end = min(a[i][0] + a[i][1], b[j][0] + b[j][1])
        if start < end:
            result.append((start, end - start))
        if a[i][0] + a[i][1] < b[j][0] + b[j][1]:
            i += 1
        else:
            j += 1
    return result


def append_extent(extents: list[Extent], offset: int, length: int) -> None:
    """Append to a list built in ascending order, joining with the last extent when they touch."""
    if length <= 0:
        return
    if extents and extents[-1][0] + extents[-1][1] == offset:
        extents[-1] = (extents[-1][0], extents[-1][1] + length)
    else:
        extents.append((offset, length))


def complement_extents(extents: list[Extent], size: int) -> list[Extent]:
    """The pieces of [0, size) not covered by a sorted, merged list."""
    result: list[Extent] = []
    position = 0
    for offset, length in extents:
        append_extent(result, position, offset - position)
        position = offset + length
    append_extent(result, position, size - position)
    return result
