"""A disk index: the chunk ids of one disk in one snapshot, one per chunk, in disk order.

Serialized (before sealing) as a 32-byte header followed by the ids:

    offset  size  field
    0       8     magic b"HVBINDEX"
    8       8     disk size in bytes (u64 LE)
    16      8     chunk size in bytes (u64 LE)
    24      8     chunk count (u64 LE) = ceil(size / chunk size)
    32      32*n  chunk ids; chunk i covers bytes [i*chunk_size, min((i+1)*chunk_size, size))
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

ID_SIZE = 32
ZERO_CHUNK_ID = bytes(ID_SIZE)
INDEX_MAGIC = b"HVBINDEX"
_HEADER = struct.Struct("<8sQQQ")


class DiskIndex:
    """Chunk ids of one disk; ZERO_CHUNK_ID marks an all-zero chunk that is never stored."""

    def __init__(self, size: int, chunk_size: int, ids: bytes | bytearray) -> None:
        if chunk_size <= 0 or size < 0:
            raise ValueError("disk size must be >= 0 and chunk size > 0")
        count = -(-size // chunk_size)
        if len(ids) != count * ID_SIZE:
            raise ValueError(
                f"a {size}-byte disk in {chunk_size}-byte chunks needs {count} ids, got {len(ids) / ID_SIZE}"
            )
        self.size = size
        self.chunk_size = chunk_size
        self.ids = bytes(ids)

    def __len__(self) -> int:
        return len(self.ids) // ID_SIZE

    def __getitem__(self, i: int) -> bytes:
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self.ids[i * ID_SIZE : (i + 1) * ID_SIZE]

    def __iter__(self) -> Iterator[bytes]:
        ids = self.ids
        for start in range(0, len(ids), ID_SIZE):
            yield ids[start : start + ID_SIZE]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DiskIndex) and (self.size, self.chunk_size, self.ids) == (
            other.size,
            other.chunk_size,
            other.ids,
        )

    def chunk_length(self, i: int) -> int:
        return min(self.chunk_size, self.size - i * self.chunk_size)

    def stored_ids(self) -> set[bytes]:
        """The distinct ids that refer to stored chunks (all but the zero marker)."""
        found = set(self)
        found.discard(ZERO_CHUNK_ID)
        return found

    def to_bytes(self) -> bytes:
        return _HEADER.pack(INDEX_MAGIC, self.size, self.chunk_size, len(self)) + self.ids

    @classmethod
    def from_bytes(cls, raw: bytes) -> DiskIndex:
        if len(raw) < _HEADER.size:
            raise ValueError("index too short")
        magic, size, chunk_size, count = _HEADER.unpack_from(raw)
        if magic != INDEX_MAGIC:
            raise ValueError("bad index magic")
        ids = raw[_HEADER.size :]
        if len(ids) != count * ID_SIZE:
            raise ValueError(f"index says {count} chunks but holds {len(ids) // ID_SIZE}")
        return cls(size, chunk_size, ids)
