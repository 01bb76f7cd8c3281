"""Writing restored files onto a host (HyperVHost.disk_writer): local files, and the choice of writer.

A host reached over PSRP is written over SMB (hyperv/smb_writer.py); the host this process runs on
(`local`) and the lab are written with local files. Either way a file appears under its final name
only when it is complete (docs/HYPERV.md §14).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from hvbackup.atomic import fsync_dir
from hvbackup.hyperv.filesource import LocalFileSource
from hvbackup.hyperv.host import ByteSource, DiskWriter

COPY_BLOCK = 8 * 1024 * 1024


class LocalDiskWriter:
    """Host paths are paths of this machine."""

    def exists(self, path: str) -> bool:
        return os.path.lexists(path)

    def make_folder(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def local_folder(self, path: str) -> Path | None:
        return Path(path)

    def upload(self, local: Path, path: str) -> None:
        target = Path(path)
        if target.exists():
            raise FileExistsError(f"{target} exists")
        partial = target.with_name(f".{target.name}.hvbackup-partial")
        try:
            if local.resolve() != partial.resolve():
                shutil.copyfile(local, partial)
            os.link(partial, target)  # fails if target appeared meanwhile: never replaces a file
            partial.unlink()
            fsync_dir(target.parent)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    def remove(self, path: str) -> None:
        Path(path).unlink(missing_ok=True)

    def remove_folder(self, path: str) -> None:
        try:
            os.rmdir(path)
        except OSError:  # gone, or holds files that are not ours
            pass


def writer_for(disk_opener: Callable[[str], ByteSource]) -> DiskWriter | None:
    """The writer that matches how a host's disks are read: SMB for SMB, local files for local files."""
    from hvbackup.hyperv.smb import SmbDiskOpener

    if isinstance(disk_opener, SmbDiskOpener):
        from hvbackup.hyperv.smb_writer import SmbDiskWriter

        return SmbDiskWriter(disk_opener.host, disk_opener.credentials)
    if disk_opener is LocalFileSource:
        return LocalDiskWriter()
    return None
