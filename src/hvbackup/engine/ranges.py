"""Byte ranges: merging, mapping to chunk numbers, and reading a changed-ranges file."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from hvbackup.disk.extents import merge_extents
from hvbackup.errors import UsageError

Range = tuple[int, int]  # (offset, length) in bytes


def merge_ranges(ranges: Iterable[Range]) -> list[Range]:
    """Sorted, non-overlapping, non-adjacent ranges covering the same bytes."""
    return merge_extents(list(ranges))


def chunks_touched(ranges: Iterable[Range], chunk_size: int, chunk_count: int) -> set[int]:
    """Numbers of the chunks that overlap any of the ranges."""
    touched: set[int] = set()
    for offset, length in ranges:
        if length <= 0:
            continue
        first = offset // chunk_size
        last = min((offset + length - 1) // chunk_size, chunk_count - 1)
        touched.update(range(first, last + 1))
    return touched


def load_changed_ranges(path: Path, disk_size: int) -> list[Range]:
    """Read a changed-ranges file: a JSON list of [offset, length] pairs or of
    {"offset": ..., "length": ...} objects, byte units, as Hyper-V's GetVirtualDiskChanges gives them.
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read changed ranges file {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"changed ranges file {path} is not JSON: {exc.msg} at line {exc.lineno}") from None
    if isinstance(raw, dict) and "ranges" in raw:
        raw = raw["ranges"]
    if not isinstance(raw, list):
        raise UsageError(f"changed ranges file {path}: expected a list of [offset, length] pairs")
    ranges: list[Range] = []
    for n, item in enumerate(raw):
        offset, length = _parse_range(item, path, n)
        if offset < 0 or length < 0 or offset + length > disk_size:
            raise UsageError(
                f"changed ranges file {path}: range {n} ({offset}, {length}) lies outside the disk ({disk_size} bytes)"
            )
        ranges.append((offset, length))
    return merge_ranges(ranges)


def _parse_range(item: object, path: Path, n: int) -> Range:
    if isinstance(item, dict):
        item = [item.get("offset"), item.get("length")]
    if (
        isinstance(item, (list, tuple))
        and len(item) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in item)
    ):
        return int(item[0]), int(item[1])
    raise UsageError(f"changed ranges file {path}: entry {n} is not an [offset, length] pair of integers")
