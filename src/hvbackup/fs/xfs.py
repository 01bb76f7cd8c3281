"""xfs inodes read with struct, for stat over large directories.

dissect.xfs parses each inode through its generic structure parser; here inode clusters are
read in 64 KiB pieces and only the fields stat needs are unpacked (the on-disk xfs_dinode is
big-endian). dissect.xfs still reads directories, extents and file data.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from typing import Any

from hvbackup.fs.errors import DamagedFilesystem

# xfs_dinode: magic, mode, version, format, onlink, uid, gid, nlink, projid, pad, atime, mtime, ctime, size
_CORE = struct.Struct(">HHBBHIII4x8xQQQQ")
_FLAGS2 = struct.Struct(">Q")
_FLAGS2_OFFSET = 120
_BIGTIME = 1 << 3
_INODE_MAGIC = 0x494E  # "IN"
_PIECE = 64 * 1024
_PIECES_CACHED = 64


class XfsReader:
    def __init__(self, xfs: Any) -> None:
        self.inode_size = xfs.sb.sb_inodesize
        self._pieces: OrderedDict[tuple[int, int], bytes] = OrderedDict()

    def stat_fields(self, node: Any) -> dict:
        raw = self._inode_bytes(node)
        magic, mode, version, _fmt, onlink, uid, gid, nlink, atime, mtime, ctime, size = _CORE.unpack_from(raw)
        if magic != _INODE_MAGIC:
            raise DamagedFilesystem(f"xfs inode {node.inum} is damaged in the snapshot (no inode magic)")
        bigtime = version >= 3 and _FLAGS2.unpack_from(raw, _FLAGS2_OFFSET)[0] & _BIGTIME
        return {
            "mode": mode,
            "uid": uid,
            "gid": gid,
            "size": size,
            "nlink": nlink if version >= 2 else onlink,
            "atime_ns": _time_ns(atime, bigtime),
            "mtime_ns": _time_ns(mtime, bigtime),
            "ctime_ns": _time_ns(ctime, bigtime),
        }

    def _inode_bytes(self, node: Any) -> bytes:
        ag = node.ag
        offset = node.relative_inum * self.inode_size
        base = offset - offset % _PIECE
        key = (ag.num, base)
        piece = self._pieces.get(key)
        if piece is None:
            ag.fh.seek(base)
            piece = ag.fh.read(_PIECE)
            self._pieces[key] = piece
            if len(self._pieces) > _PIECES_CACHED:
                self._pieces.popitem(last=False)
        raw = piece[offset - base : offset - base + _FLAGS2_OFFSET + 8]
        if len(raw) < _FLAGS2_OFFSET + 8:
            ag.fh.seek(offset)
            raw = ag.fh.read(_FLAGS2_OFFSET + 8).ljust(_FLAGS2_OFFSET + 8, b"\0")
        return raw


def _time_ns(value: int, bigtime: bool) -> int:
    """Big timestamps count nanoseconds from 1901-12-13; the classic ones are 32-bit seconds and nanoseconds."""
    if bigtime:
        seconds, ns = divmod(value, 1_000_000_000)
        seconds -= 1 << 31
    else:
        seconds, ns = value >> 32, value & 0xFFFFFFFF
    return seconds * 1_000_000_000 + ns
