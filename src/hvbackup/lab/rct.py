"""Resilient change tracking for lab disks: an append-only log of written ranges per disk, and an epoch.

An RCT id names a position in one disk's log: `rctX:<epoch>:<n>` means "after the first n writes of
that epoch" (Hyper-V's ids are opaque strings of this look, docs/HYPERV.md §3 and §9).
Resetting tracking (what a host crash or a failed live migration does, docs/ASSESS.md §7) starts a new
epoch and empties the log, so every older id becomes unanswerable.
"""

from __future__ import annotations

import json
import struct
import uuid
from collections.abc import Iterator
from pathlib import Path

from hvbackup.atomic import atomic_write
from hvbackup.hyperv.errors import ChangeTrackingUnavailable

_RECORD = struct.Struct("<QQ")  # offset, length
PREFIX = "rctX"


def merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping, non-touching (offset, length) ranges covering the same bytes."""
    merged: list[list[int]] = []
    for start, length in sorted(ranges):
        end = start + length
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end - start) for start, end in merged]


def parse_id(rct_id: str) -> tuple[str, int]:
    """(epoch, position) of an RCT id; ChangeTrackingUnavailable if it is not one of ours."""
    parts = rct_id.split(":")
    if len(parts) != 3 or parts[0] != PREFIX or not parts[2].isdigit():
        raise ChangeTrackingUnavailable(f"{rct_id!r} is not a change-tracking id of this host")
    return parts[1], int(parts[2])


class ChangeLog:
    """The change-tracking files of one disk: `<key>.json` (epoch) and `<key>.log` (16-byte records)."""

    def __init__(self, directory: Path, key: str) -> None:
        self.state_path = directory / f"{key}.json"
        self.log_path = directory / f"{key}.log"
        self.key = key

    def create(self) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        self.reset()

    def reset(self) -> None:
        """A new epoch with an empty log: ids of the old epoch are no longer answerable."""
        self.log_path.write_bytes(b"")
        _write_json(self.state_path, {"epoch": uuid.uuid4().hex})

    @property
    def epoch(self) -> str:
        return json.loads(self.state_path.read_text())["epoch"]

    def count(self) -> int:
        return self.log_path.stat().st_size // _RECORD.size

    def current_id(self) -> str:
        return f"{PREFIX}:{self.epoch}:{self.count()}"

    def record(self, ranges: list[tuple[int, int]]) -> None:
        """Append written ranges (before the data is written: a crash then only over-reports)."""
        if not ranges:
            return
        with open(self.log_path, "ab") as log:
            log.write(b"".join(_RECORD.pack(o, n) for o, n in ranges))

    def changes(self, rct_id: str, until: int | None = None) -> list[tuple[int, int]]:
        """Merged ranges written after `rct_id` and before position `until` (default: now)."""
        epoch, position = parse_id(rct_id)
        if epoch != self.epoch:
            raise ChangeTrackingUnavailable(f"change tracking of disk {self.key} was reset since {rct_id}")
        end = self.count() if until is None else until
        if position > end:
            raise ChangeTrackingUnavailable(f"{rct_id} lies beyond the disk's tracked changes")
        with open(self.log_path, "rb") as log:
            log.seek(position * _RECORD.size)
            data = log.read((end - position) * _RECORD.size)
        return merge_ranges(list(_RECORD.iter_unpack(data)))


def query_changes(
    changes: list[tuple[int, int]], offset: int, size: int, window: int, max_ranges: int
) -> tuple[list[tuple[int, int]], int]:
    """One GetVirtualDiskChanges answer: the ranges in [offset, offset+window) (at most `max_ranges`),
    and how many bytes from `offset` it processed (less than asked when it stops early)."""
    stop = min(size, offset + window)
    found: list[tuple[int, int]] = []
    for start, length in changes:
        end = start + length
        if end <= offset or start >= stop:
            continue
        piece_start, piece_end = max(start, offset), min(end, stop)
        if len(found) == max_ranges:
            return found, piece_start - offset
        found.append((piece_start, piece_end - piece_start))
    return found, stop - offset


def iterate_changes(
    changes: list[tuple[int, int]], size: int, window: int = 64 << 20, max_ranges: int = 256
) -> Iterator[tuple[int, int]]:
    """The whole disk covered by repeated queries, each continuing where the last one stopped."""
    offset = 0
    while offset < size:
        found, processed = query_changes(changes, offset, size, window, max_ranges)
        yield from found
        if processed <= 0:
            raise ChangeTrackingUnavailable(f"change query made no progress at offset {offset}")
        offset += processed


def _write_json(path: Path, data: dict) -> None:
    atomic_write(path, json.dumps(data))
