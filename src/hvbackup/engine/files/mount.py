"""A read-only FUSE filesystem with one raw image file per snapshot disk, named after the disk
(`disk0.raw` for an image backup, `scsi0-0.raw` ... for a VM).

The kernel then does what the in-process readers cannot: journal replay into a copy-on-write
overlay, LUKS, LVM RAID, any filesystem it knows. Reads go to a SnapshotDiskView each.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from hvbackup.engine.files.errors import MountpointUnusable, MountRefused, NoFuse
from hvbackup.engine.files.view import SnapshotDiskView
from hvbackup.engine.manifest import manifest_of
from hvbackup.repo import Repository, Snapshot

FUSE_DEVICE = Path("/dev/fuse")


def check_mountpoint(mountpoint: Path) -> None:
    """Refuse, in plain words, a mount point FUSE would refuse with an obscure error."""
    if not os.path.lexists(mountpoint):
        raise MountpointUnusable(f"{mountpoint} does not exist: create an empty folder to mount on")
    if not mountpoint.is_dir():
        raise MountpointUnusable(f"{mountpoint} is not a folder: give an empty folder to mount on")
    if os.path.ismount(mountpoint):
        raise MountpointUnusable(f"{mountpoint} is already a mount point")
    if any(os.scandir(mountpoint)):
        raise MountpointUnusable(f"{mountpoint} is not empty: give an empty folder to mount on")


def check_fuse(device: Path = FUSE_DEVICE) -> None:
    """FUSE must be there: its device, the fusermount helper, and the mfusepy module."""
    if not device.exists():
        raise NoFuse(f"FUSE is not available: {device} is missing (load it with `modprobe fuse`)")
    if shutil.which("fusermount3") is None and shutil.which("fusermount") is None:
        raise NoFuse("FUSE is not available: fusermount is not installed (the fuse3 package provides it)")
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as exc:
        raise NoFuse(f"FUSE is not available: {exc}") from None


def image_names(snapshot: Snapshot) -> dict[str, str]:
    """File name in the mount → disk name in the snapshot."""
    return {f"{d.name}.raw": d.name for d in manifest_of(snapshot).disks}


class SnapshotImages:
    """FUSE operations (mfusepy) serving each disk of a snapshot as a read-only raw file."""

    use_ns = True

    def __init__(self, repo: Repository, snapshot: Snapshot, stack: ExitStack) -> None:
        self.views: dict[str, SnapshotDiskView] = {}
        stack.enter_context(repo.read_lease(f"mount of {snapshot.info.id[:12]}"))
        for file_name, disk_name in image_names(snapshot).items():
            view = SnapshotDiskView(repo, snapshot.index(disk_name), cache_chunks=32, prefetch_workers=4)
            self.views[file_name] = stack.enter_context(view)
        self.mtime_ns = int(snapshot.info.time.timestamp() * 1e9)

    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        if path == "/":
            return self._attr(stat.S_IFDIR | 0o555, 0, nlink=2)
        view = self.views.get(path.lstrip("/"))
        if view is None:
            raise _fuse_error(errno.ENOENT)
        return self._attr(stat.S_IFREG | 0o444, view.size)

    def _attr(self, mode: int, size: int, nlink: int = 1) -> dict[str, Any]:
        t = self.mtime_ns
        return {
            "st_mode": mode,
            "st_size": size,
            "st_nlink": nlink,
            "st_mtime": t,
            "st_atime": t,
            "st_ctime": t,
            "st_uid": 0,
            "st_gid": 0,
        }

    def readdir(self, path: str, fh: int) -> list[str]:
        if path != "/":
            raise _fuse_error(errno.ENOTDIR)
        return [".", "..", *self.views]

    def open(self, path: str, flags: int) -> int:
        if path.lstrip("/") not in self.views:
            raise _fuse_error(errno.ENOENT)
        if flags & 3 != 0:  # O_WRONLY or O_RDWR
            raise _fuse_error(errno.EROFS)
        return 0

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        view = self.views.get(path.lstrip("/"))
        if view is None:
            raise _fuse_error(errno.ENOENT)
        try:
            return bytes(view.read(offset, size))
        except Exception:
            raise _fuse_error(errno.EIO) from None

    def statfs(self, path: str) -> dict[str, int]:
        return {"f_bsize": 4096, "f_frsize": 4096, "f_blocks": 0, "f_bfree": 0, "f_bavail": 0, "f_namemax": 255}


def _fuse_error(code: int) -> Exception:
    from mfusepy import FuseOSError

    return FuseOSError(code)


def serve(repo: Repository, snapshot: Snapshot, mountpoint: Path) -> None:
    """Mount and serve until unmounted (`fusermount -u`); blocks."""
    from mfusepy import FUSE, Operations

    operations = type("SnapshotImagesFuse", (SnapshotImages, Operations), {})
    with ExitStack() as stack:
        ops = operations(repo, snapshot, stack)
        try:
            FUSE(ops, str(mountpoint), foreground=True, ro=True, nothreads=False, fsname="hvbackup",
                 default_permissions=True)  # fmt: skip
        except RuntimeError as exc:  # libfuse's own reason went to stderr; mfusepy raises its status code
            raise MountRefused(f"FUSE refused to mount on {mountpoint} (status {exc})") from None
