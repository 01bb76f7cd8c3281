"""ext4 directories and inodes read with struct, for listings of 100,000 entries in seconds.

dissect.extfs parses every directory entry and inode through its generic structure parser and
reads each inode separately; here a directory is read in one go, inode tables are read in
64 KiB pieces, and only the fields stat needs are unpacked. dissect.extfs still does the rest
(superblock, group descriptors, extents, file data).
"""

from __future__ import annotations

import os
import struct
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

# struct ext4_inode up to the nanosecond time fields
_INODE = struct.Struct("<HHIIIIIHH80xI8xHH4xHHIII")
_DIRENT = struct.Struct("<IHH")
_PIECE = 64 * 1024
_PIECES_CACHED = 64


class Ext4Reader:
    def __init__(self, extfs: Any) -> None:
        from dissect.extfs.c_ext import c_ext

        sb = extfs.sb
        self.extfs = extfs
        self.inodes_count = sb.s_inodes_count
        self.inodes_per_group = sb.s_inodes_per_group
        self.inode_size = sb.s_inode_size
        self.block_size = extfs.block_size
        self.wide_descriptors = extfs._group_desc_struct == c_ext.ext4_group_desc
        self.typed_dirents = extfs._dirtype == c_ext.ext2_dir_entry_2
        self._tables: dict[int, int] = {}
        self._pieces: OrderedDict[int, bytes] = OrderedDict()

    def children(self, node: Any) -> Iterator[tuple[bytes, Any]]:
        """(name, dissect inode) of each entry; htree index blocks read as empty entries."""
        data = node.open().read()
        offset = 0
        while offset < len(data) - 12:
            inum, rec_len, name_len = _DIRENT.unpack_from(data, offset)
            if rec_len == 0:
                return
            if self.typed_dirents:
                name_len &= 0xFF
            if 0 < inum <= self.inodes_count:  # numbers run 1..count (dissect.extfs drops the last)
                name = data[offset + 8 : offset + 8 + name_len]
                yield name, self.extfs.get_inode(inum, os.fsdecode(name))
            offset += rec_len

    def stat_fields(self, inum: int) -> dict:
        raw = self._inode_bytes(inum)
        (mode, uid, size_lo, atime, ctime, mtime, _dtime, gid, nlink, size_hi, uid_hi, gid_hi, extra_isize, _csum,
         ctime_x, mtime_x, atime_x) = _INODE.unpack(raw)  # fmt: skip
        if self.inode_size <= 128 or extra_isize < 16:
            ctime_x = mtime_x = atime_x = 0
        return {
            "mode": mode,
            "uid": uid | (uid_hi << 16),
            "gid": gid | (gid_hi << 16),
            "size": size_lo | (size_hi << 32),
            "nlink": nlink,
            "atime_ns": _time_ns(atime, atime_x),
            "mtime_ns": _time_ns(mtime, mtime_x),
            "ctime_ns": _time_ns(ctime, ctime_x),
        }

    def _inode_bytes(self, inum: int) -> bytes:
        group, index = divmod(inum - 1, self.inodes_per_group)
        offset = self._table_offset(group) + index * self.inode_size
        base = offset - offset % _PIECE
        piece = self._pieces.get(base)
        if piece is None:
            fh = self.extfs.fh
            fh.seek(base)
            piece = fh.read(_PIECE)
            self._pieces[base] = piece
            if len(self._pieces) > _PIECES_CACHED:
                self._pieces.popitem(last=False)
        within = offset - base
        raw = piece[within : within + _INODE.size]
        if len(raw) < _INODE.size:  # the inode straddles two pieces, or the inode is 128 bytes
            fh = self.extfs.fh
            fh.seek(offset)
            raw = fh.read(min(self.inode_size, _INODE.size))
        return raw.ljust(_INODE.size, b"\0")

    def _table_offset(self, group: int) -> int:
        table = self._tables.get(group)
        if table is None:
            desc = self.extfs._read_group_desc(group)
            table = desc.bg_inode_table_lo
            if self.wide_descriptors:
                table |= desc.bg_inode_table_hi << 32
            table *= self.block_size
            self._tables[group] = table
        return table


def _time_ns(seconds: int, extra: int) -> int:
    """32-bit seconds, then 2 epoch bits and 30 nanosecond bits in the extra field."""
    return ((seconds | (extra & 3) << 32) * 1_000_000_000) + (extra >> 2)
