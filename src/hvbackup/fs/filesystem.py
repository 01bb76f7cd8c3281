"""One small interface over dissect's ext4, xfs and btrfs readers.

Names are bytes everywhere (Linux names need not be UTF-8); dissect decodes them with
surrogateescape, so `os.fsencode` gives back the bytes on disk. Btrfs subvolumes appear as the
directories they are mounted at in the default subvolume. ext4 directories and ext4/xfs inodes
are read by ext4.py and xfs.py, which are several times faster than dissect on big directories.
"""

from __future__ import annotations

import os
import stat as st
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from hvbackup.fs.errors import IsADirectory, NotADirectory, PathNotFound, UnsupportedFilesystem
from hvbackup.fs.ext4 import Ext4Reader
from hvbackup.fs.volumes import Volume
from hvbackup.fs.xfs import XfsReader

_SKIP = {b".", b".."}
_MAX_LINK_HOPS = 40


@dataclass(frozen=True)
class Stat:
    mode: int
    uid: int
    gid: int
    size: int
    nlink: int
    inode: tuple[int, int]  # (subvolume, inode number): unique within the filesystem
    atime_ns: int
    mtime_ns: int
    ctime_ns: int

    @property
    def kind(self) -> str:
        return file_kind(self.mode)

    def to_json(self) -> dict:
        return {
            "type": self.kind,
            "size": self.size,
            "mode": st.S_IMODE(self.mode),
            "uid": self.uid,
            "gid": self.gid,
            "nlink": self.nlink,
            "inode": self.inode[1],
            "mtime_ns": self.mtime_ns,
        }


def file_kind(mode: int) -> str:
    for test, name in (
        (st.S_ISREG, "file"),
        (st.S_ISDIR, "dir"),
        (st.S_ISLNK, "symlink"),
        (st.S_ISCHR, "char"),
        (st.S_ISBLK, "block"),
        (st.S_ISFIFO, "fifo"),
        (st.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "unknown"


class Entry:
    """A file, directory or link in a filesystem, by its path."""

    def __init__(self, fs: FileSystem, path: bytes, node: Any) -> None:
        self.fs = fs
        self.path = path
        self.node = node
        self._stat: Stat | None = None

    @property
    def name(self) -> bytes:
        return self.path.rsplit(b"/", 1)[-1] or b"/"

    def stat(self) -> Stat:
        if self._stat is None:
            self._stat = self.fs.stat_node(self.node)
        return self._stat

    @property
    def is_dir(self) -> bool:
        return st.S_ISDIR(self.stat().mode)

    def child_path(self, name: bytes) -> bytes:
        return (self.path.rstrip(b"/") + b"/" + name) if self.path != b"/" else b"/" + name


class FileSystem:
    """Read-only access to one filesystem: lookup, listing, stat, links and file data."""

    def __init__(self, volume: Volume) -> None:
        self.volume = volume
        self.kind = volume.kind
        self._fs = _open(volume)
        self._ext4 = Ext4Reader(self._fs) if self.kind == "ext4" else None
        self._xfs = XfsReader(self._fs) if self.kind == "xfs" else None

    @property
    def root(self) -> Entry:
        return Entry(self, b"/", self._fs.root)

    def get(self, path: bytes | str) -> Entry:
        """The entry at an absolute path; symlinks inside the path are not followed."""
        if isinstance(path, str):
            path = os.fsencode(path)
        entry = self.root
        for part in [p for p in path.split(b"/") if p and p != b"."]:
            if not entry.is_dir:
                raise NotADirectory(f"not a directory in the snapshot: {_show(entry.path)}")
            entry = self._child(entry, part, path)
        return entry

    def _child(self, parent: Entry, name: bytes, wanted: bytes) -> Entry:
        if name == b"..":
            return self.get(parent.path.rsplit(b"/", 1)[0] or b"/")
        for child_name, child in self.iterdir(parent):
            if child_name == name:
                return child
        raise PathNotFound(f"no such file or directory in the snapshot: {_show(wanted)}")

    def iterdir(self, entry: Entry) -> Iterator[tuple[bytes, Entry]]:
        """(name, entry) for each child, without '.' and '..'."""
        if not entry.is_dir:
            raise NotADirectory(f"not a directory in the snapshot: {_show(entry.path)}")
        for name, node in self._raw_children(entry.node):
            if name in _SKIP:
                continue
            yield name, Entry(self, entry.child_path(name), node)

    def _raw_children(self, node: Any) -> Iterator[tuple[bytes, Any]]:
        if self._ext4 is not None:  # kind ext4
            yield from self._ext4.children(node)
        elif self.kind == "btrfs":
            for name, child in node.iterdir():
                yield os.fsencode(name), child
        else:
            for child in node.iterdir():
                yield os.fsencode(child.filename), child

    def resolve(self, entry: Entry) -> Entry:
        """The entry a symlink finally points to (absolute targets inside this filesystem)."""
        for _ in range(_MAX_LINK_HOPS):
            if entry.stat().kind != "symlink":
                return entry
            target = self.readlink(entry)
            entry = self.get(target if target.startswith(b"/") else entry.path.rsplit(b"/", 1)[0] + b"/" + target)
        raise PathNotFound(f"too many levels of symbolic links in the snapshot: {_show(entry.path)}")

    def readlink(self, entry: Entry) -> bytes:
        return os.fsencode(entry.node.link)

    def open(self, entry: Entry) -> BinaryIO:
        s = entry.stat()
        if st.S_ISDIR(s.mode):
            raise IsADirectory(f"is a directory in the snapshot: {_show(entry.path)}")
        return entry.node.open()

    def walk(self, top: Entry) -> Iterator[Entry]:
        """`top` and everything below it, parents before children, depth first."""
        yield top
        if not top.is_dir:
            return
        stack = [top]
        while stack:
            directory = stack.pop()
            children = list(self.iterdir(directory))
            for _, child in children:
                yield child
            stack.extend(child for _, child in reversed(children) if child.is_dir)

    def stat_node(self, node: Any) -> Stat:
        try:
            if self._ext4 is not None:
                return Stat(**self._ext4.stat_fields(node.inum), inode=(0, node.inum))
            if self._xfs is not None:
                return Stat(**self._xfs.stat_fields(node), inode=(0, node.inum))
            return _STATS[self.kind](node)
        except NotImplementedError as exc:
            raise UnsupportedFilesystem(f"{self.kind} on {self.volume.name}: {exc}") from None


def _open(volume: Volume) -> Any:
    fh = volume.open()
    try:
        if volume.kind == "ext4":
            from dissect.extfs import ExtFS

            return ExtFS(fh)
        if volume.kind == "xfs":
            from dissect.xfs import XFS

            return XFS(fh)
        from dissect.btrfs import Btrfs

        return Btrfs(fh)
    except NotImplementedError as exc:
        raise UnsupportedFilesystem(
            f"{volume.kind} on {volume.name} uses a feature hvbackup cannot read in-process ({exc}); "
            "use `hvbackup mount` and the kernel"
        ) from None
    except Exception as exc:  # any parse failure of a damaged or odd filesystem
        raise UnsupportedFilesystem(f"{volume.kind} on {volume.name} cannot be read: {exc}") from None


def _btrfs_stat(node: Any) -> Stat:
    return Stat(
        mode=node.mode,
        uid=node.uid,
        gid=node.gid,
        size=node.size,
        nlink=node.inode.nlink,
        inode=(node.subvolume.objectid, node.inum),
        atime_ns=node.atime_ns,
        mtime_ns=node.mtime_ns,
        ctime_ns=node.ctime_ns,
    )


_STATS = {"btrfs": _btrfs_stat}


def _show(path: bytes) -> str:
    """A path for a message: non-UTF-8 bytes as \\x escapes."""
    return path.decode("utf-8", "backslashreplace")
