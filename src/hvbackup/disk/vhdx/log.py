"""The VHDX metadata log ([MS-VHDX] 2.3): find the active sequence and replay it in memory.

A file with a non-empty log (LogGuid set) is not consistent until the log is replayed. We never
write a file we back up, so the replay becomes a list of patches laid over the file's bytes
(`PatchedSource`); the writer may apply the same patches to the file itself.
"""

from __future__ import annotations

import bisect
import struct
import uuid
from dataclasses import dataclass

from hvbackup.disk.errors import VhdxError
from hvbackup.disk.extents import merge_extents
from hvbackup.disk.source import ByteSource, read_exact
from hvbackup.disk.vhdx.structures import KiB, checksum_ok, guid_from

LOG_SECTOR = 4 * KiB
_ENTRY_HEADER = struct.Struct("<4sIIIQII16sQQ")
_DESCRIPTOR = struct.Struct("<4sIQQQ")
_DATA_SECTOR_SEQ = struct.Struct("<4sI")
MAX_CANDIDATE_HEADS = 64


@dataclass(frozen=True)
class Patch:
    offset: int
    length: int
    data: bytes | None  # None: zeros


@dataclass(frozen=True)
class LogEntry:
    position: int
    length: int
    tail: int
    sequence: int
    descriptor_count: int
    flushed_file_offset: int
    last_file_offset: int


@dataclass
class LogReplay:
    patches: list[Patch]
    flushed_file_offset: int
    last_file_offset: int


def replay_log(source: ByteSource, log_offset: int, log_length: int, log_guid: uuid.UUID) -> LogReplay:
    """Read the log region and return the patches of its active sequence, oldest first."""
    if log_length < LOG_SECTOR:
        raise VhdxError(f"log: length {log_length} is too small to hold an entry")
    log = read_exact(source, log_offset, log_length, "log")
    entries = _valid_entries(log, log_guid)
    if not entries:
        raise VhdxError("log: the header names a log but no valid log entry matches its LogGuid")
    sequence = _active_sequence(log, entries)
    patches: list[Patch] = []
    for entry in sequence:
        patches.extend(_entry_patches(log, entry))
    head = sequence[-1]
    if head.flushed_file_offset > source.size:
        raise VhdxError(
            f"log: file is {source.size} bytes but the log says {head.flushed_file_offset} were flushed (truncated file)"
        )
    return LogReplay(patches, head.flushed_file_offset, head.last_file_offset)


def _circular(log: bytes, position: int, length: int) -> bytes:
    end = position + length
    if end <= len(log):
        return log[position:end]
    return log[position:] + log[: end - len(log)]


def _valid_entries(log: bytes, log_guid: uuid.UUID) -> dict[int, LogEntry]:
    entries: dict[int, LogEntry] = {}
    for position in range(0, len(log), LOG_SECTOR):
        if log[position : position + 4] != b"loge":
            continue
        _sig, _, length, tail, seq, count, _, guid, flushed, last = _ENTRY_HEADER.unpack_from(log, position)
        if guid_from(guid) != log_guid or length % LOG_SECTOR or not 0 < length <= len(log):
            continue
        if tail % LOG_SECTOR or tail >= len(log) or _descriptor_sectors(count) * LOG_SECTOR > length:
            continue
        if not checksum_ok(_circular(log, position, length)):
            continue
        entries[position] = LogEntry(position, length, tail, seq, count, flushed, last)
    return entries


def _descriptor_sectors(count: int) -> int:
    return -(-(64 + 32 * count) // LOG_SECTOR)


def _active_sequence(log: bytes, entries: dict[int, LogEntry]) -> list[LogEntry]:
    """The valid sequence with the highest head sequence number, tail to head."""
    heads = sorted(entries.values(), key=lambda e: e.sequence, reverse=True)[:MAX_CANDIDATE_HEADS]
    max_steps = len(log) // LOG_SECTOR
    for head in heads:
        sequence = _walk(entries, head, max_steps)
        if sequence is not None:
            return sequence
    raise VhdxError("log: no complete sequence of entries from a tail to its head (corrupt log)")


def _walk(entries: dict[int, LogEntry], head: LogEntry, max_steps: int) -> list[LogEntry] | None:
    entry = entries.get(head.tail)
    sequence: list[LogEntry] = []
    while entry is not None and len(sequence) <= max_steps:
        sequence.append(entry)
        if entry is head:
            return sequence
        successor = entries.get((entry.position + entry.length) % (max_steps * LOG_SECTOR))
        if successor is None or successor.sequence != entry.sequence + 1:
            return None
        entry = successor
    return None


def _entry_patches(log: bytes, entry: LogEntry) -> list[Patch]:
    raw = _circular(log, entry.position, entry.length)
    data_sector = _descriptor_sectors(entry.descriptor_count)
    patches: list[Patch] = []
    for i in range(entry.descriptor_count):
        sig, trailing, leading_or_length, file_offset, seq = _DESCRIPTOR.unpack_from(raw, 64 + 32 * i)
        where = f"log entry {entry.sequence} descriptor {i}"
        if seq != entry.sequence:
            raise VhdxError(f"{where}: sequence number {seq} does not match its entry")
        if file_offset % LOG_SECTOR:
            raise VhdxError(f"{where}: file offset {file_offset} is not 4 KiB aligned")
        if sig == b"zero":
            if leading_or_length % LOG_SECTOR:
                raise VhdxError(f"{where}: zero length {leading_or_length} is not a multiple of 4 KiB")
            patches.append(Patch(file_offset, leading_or_length, None))
        elif sig == b"desc":
            if (data_sector + 1) * LOG_SECTOR > entry.length:
                raise VhdxError(f"{where}: its data sector lies past the end of the entry")
            patches.append(
                Patch(
                    file_offset, LOG_SECTOR, _data_sector(raw, data_sector, trailing, leading_or_length, entry, where)
                )
            )
            data_sector += 1
        else:
            raise VhdxError(f"{where}: bad signature {sig!r}")
    return patches


def _data_sector(raw: bytes, index: int, trailing: int, leading: int, entry: LogEntry, where: str) -> bytes:
    start = index * LOG_SECTOR
    sig, seq_high = _DATA_SECTOR_SEQ.unpack_from(raw, start)
    (seq_low,) = struct.unpack_from("<I", raw, start + LOG_SECTOR - 4)
    if sig != b"data" or (seq_high << 32 | seq_low) != entry.sequence:
        raise VhdxError(f"{where}: data sector has a bad signature or sequence number")
    return struct.pack("<Q", leading) + raw[start + 8 : start + LOG_SECTOR - 4] + struct.pack("<I", trailing)


class PatchedSource:
    """A source with replayed log patches laid over it; reads that miss the patches go straight through."""

    def __init__(self, inner: ByteSource, replay: LogReplay) -> None:
        self.inner = inner
        self.name = inner.name
        self.patches = replay.patches
        patch_end = max((p.offset + p.length for p in self.patches), default=0)
        self.size = max(inner.size, replay.last_file_offset, patch_end)
        covered = merge_extents([(p.offset, p.length) for p in self.patches])
        self._starts = [o for o, _ in covered]
        self._ends = [o + n for o, n in covered]

    def _touches_patch(self, offset: int, length: int) -> bool:
        i = bisect.bisect_right(self._ends, offset)
        return i < len(self._starts) and self._starts[i] < offset + length

    def pread(self, offset: int, length: int) -> bytes:
        length = max(0, min(length, self.size - offset))
        if not self._touches_patch(offset, length):
            return self.inner.pread(offset, length)
        data = bytearray(self.inner.pread(offset, length))
        data.extend(bytes(length - len(data)))
        for patch in self.patches:
            start, end = max(offset, patch.offset), min(offset + length, patch.offset + patch.length)
            if start < end:
                piece = (
                    bytes(end - start) if patch.data is None else patch.data[start - patch.offset : end - patch.offset]
                )
                data[start - offset : end - offset] = piece
        return bytes(data)

    def close(self) -> None:
        self.inner.close()
