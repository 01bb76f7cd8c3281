"""Test helper: write [MS-VHDX] 2.3 log entries into a VHDX, as Hyper-V leaves them after a crash."""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field

import crc32c

SECTOR = 4096


@dataclass
class Entry:
    sequence: int
    data: list[tuple[int, bytes]] = field(default_factory=list)  # (file offset, 4 KiB of new content)
    zeros: list[tuple[int, int]] = field(default_factory=list)  # (file offset, length)


def build_entry(entry: Entry, log_guid: uuid.UUID, tail: int, file_size: int) -> bytes:
    count = len(entry.data) + len(entry.zeros)
    descriptor_sectors = -(-(64 + 32 * count) // SECTOR)
    length = (descriptor_sectors + len(entry.data)) * SECTOR
    raw = bytearray(length)
    struct.pack_into(
        "<4sIIIQII16sQQ",
        raw,
        0,
        b"loge",
        0,
        length,
        tail,
        entry.sequence,
        count,
        0,
        log_guid.bytes_le,
        file_size,
        file_size,
    )
    position = 64
    for offset, zero_length in entry.zeros:
        struct.pack_into("<4sIQQQ", raw, position, b"zero", 0, zero_length, offset, entry.sequence)
        position += 32
    for index, (offset, content) in enumerate(entry.data):
        assert len(content) == SECTOR
        leading, trailing = struct.unpack_from("<Q", content)[0], struct.unpack_from("<I", content, SECTOR - 4)[0]
        struct.pack_into("<4sIQQQ", raw, position, b"desc", trailing, leading, offset, entry.sequence)
        position += 32
        sector = (descriptor_sectors + index) * SECTOR
        struct.pack_into("<4sI", raw, sector, b"data", entry.sequence >> 32)
        raw[sector + 8 : sector + SECTOR - 4] = content[8 : SECTOR - 4]
        struct.pack_into("<I", raw, sector + SECTOR - 4, entry.sequence & 0xFFFFFFFF)
    struct.pack_into("<I", raw, 4, crc32c.crc32c(raw))
    return bytes(raw)


def set_log_guid(path: str, log_guid: uuid.UUID) -> None:
    """Put `log_guid` into the current header (bumping its sequence number), as a writer with a dirty log would."""
    with open(path, "r+b") as fh:
        headers = []
        for offset in (64 * 1024, 128 * 1024):
            fh.seek(offset)
            headers.append((offset, bytearray(fh.read(SECTOR))))
        offset, header = max(headers, key=lambda h: struct.unpack_from("<Q", h[1], 8)[0])
        struct.pack_into("<Q", header, 8, struct.unpack_from("<Q", header, 8)[0] + 10)
        header[48:64] = log_guid.bytes_le
        struct.pack_into("<I", header, 4, 0)
        struct.pack_into("<I", header, 4, crc32c.crc32c(header))
        fh.seek(offset)
        fh.write(header)


def log_region(path: str) -> tuple[int, int]:
    """(offset, length) of the log, from the header with the higher sequence number."""
    with open(path, "rb") as fh:
        best = None
        for offset in (64 * 1024, 128 * 1024):
            fh.seek(offset)
            header = fh.read(SECTOR)
            seq = struct.unpack_from("<Q", header, 8)[0]
            length, log_offset = struct.unpack_from("<IQ", header, 68)
            if best is None or seq > best[0]:
                best = (seq, log_offset, length)
    return best[1], best[2]
