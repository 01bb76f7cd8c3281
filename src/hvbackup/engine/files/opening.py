"""From a snapshot reference, a disk name and a volume name to a readable filesystem."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from hvbackup.engine.disk_restore import find_disk
from hvbackup.engine.files.view import SnapshotDiskView, as_binary_file
from hvbackup.engine.manifest import DiskEntry
from hvbackup.fs.filesystem import FileSystem
from hvbackup.fs.volumes import Volume, choose_volume, find_volumes
from hvbackup.repo import Repository, Snapshot


@dataclass
class SnapshotDisk:
    snapshot: Snapshot
    disk: DiskEntry
    view: SnapshotDiskView
    volumes: list[Volume]


@contextmanager
def open_snapshot_disk(repo: Repository, snapshot: Snapshot, disk_name: str | None = None) -> Iterator[SnapshotDisk]:
    """A disk of the snapshot with its volumes found."""
    disk = find_disk(snapshot, disk_name)
    lease = repo.read_lease(f"file restore from {snapshot.info.id[:12]}")
    with lease, SnapshotDiskView(repo, snapshot.index(disk.name)) as view:
        sector_size = int(disk.logical_sector_size or 512)
        yield SnapshotDisk(snapshot, disk, view, find_volumes(as_binary_file(view), sector_size))


@contextmanager
def open_filesystem(
    repo: Repository, snapshot: Snapshot, *, disk_name: str | None = None, volume_name: str | None = None
) -> Iterator[FileSystem]:
    """The filesystem on the named (or only) volume of the named (or only) disk."""
    with open_snapshot_disk(repo, snapshot, disk_name) as opened:
        yield FileSystem(choose_volume(opened.volumes, volume_name))
