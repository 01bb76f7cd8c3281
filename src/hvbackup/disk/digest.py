"""A fingerprint of what a disk holds, independent of its format and layout."""

from __future__ import annotations

import hashlib
import os

from hvbackup.disk.opener import open_disk

_PIECE = 4 << 20
_ZEROS = bytes(_PIECE)


def virtual_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a disk's whole virtual content; unallocated ranges hashed as zeros without reading them."""
    digest = hashlib.sha256()
    with open_disk(path) as image:
        position = 0
        for offset, length in [*image.allocated_ranges(), (image.size, 0)]:
            while position < offset:
                step = min(_PIECE, offset - position)
                digest.update(_ZEROS if step == _PIECE else _ZEROS[:step])
                position += step
            for start in range(offset, offset + length, _PIECE):
                digest.update(image.read(start, min(_PIECE, offset + length - start)))
            position = max(position, offset + length)
    return digest.hexdigest()
