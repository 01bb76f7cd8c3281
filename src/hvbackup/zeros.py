"""Testing and filling buffers with zeros, fast for bytes and memoryviews alike.

Comparing a memoryview with bytes goes element by element in CPython (about 400 MB/s, holding
the GIL); comparing two bytes objects is a memcmp. So views are compared a piece at a time as
bytes, after a cheap look at their first bytes, which settles most non-zero data at once.
"""

from __future__ import annotations

PIECE = 1 << 20
_ZEROS = bytes(PIECE)
_PEEK = 64


def _zeros(length: int) -> bytes:
    return _ZEROS if length == PIECE else bytes(length)


def is_zero(data: bytes | bytearray | memoryview) -> bool:
    if isinstance(data, bytes):
        return data[:_PEEK] == bytes(min(_PEEK, len(data))) and data == _zeros(len(data))
    view = memoryview(data).cast("B")
    if view[:_PEEK].tobytes() != bytes(min(_PEEK, len(view))):
        return False
    for start in range(0, len(view), PIECE):
        piece = view[start : start + PIECE]
        if piece.tobytes() != _zeros(len(piece)):
            return False
    return True


def fill_zero(view: memoryview) -> None:
    for start in range(0, len(view), PIECE):
        piece = view[start : start + PIECE]
        piece[:] = _zeros(len(piece))
