"""The repository: deduplicated, compressed, encrypted chunks and snapshots (docs/FORMAT.md)."""

from hvbackup.repo.index import ZERO_CHUNK_ID, DiskIndex
from hvbackup.repo.repository import Repository
from hvbackup.repo.snapshots import Snapshot, SnapshotInfo

__all__ = ["ZERO_CHUNK_ID", "DiskIndex", "Repository", "Snapshot", "SnapshotInfo"]
