"""Snapshots as the repository hands them out: a summary (SnapshotInfo) and a loaded Snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from hvbackup.repo.index import DiskIndex


@dataclass(frozen=True)
class SnapshotInfo:
    id: str
    time: datetime
    source: str
    protected: bool
    manifest: dict

    @property
    def short_id(self) -> str:
        return self.id[:8]

    @property
    def hostname(self) -> str:
        return str(self.manifest.get("hostname", ""))

    @property
    def disk_names(self) -> list[str]:
        return [str(d["name"]) for d in self.manifest.get("disks", [])]

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "short_id": self.short_id,
            "time": self.time.isoformat(),
            "source": self.source,
            "hostname": self.hostname,
            "protected": self.protected,
            "disks": self.disk_names,
            "manifest": self.manifest,
        }


class Snapshot:
    """One snapshot: its manifest and, loaded on first use, one DiskIndex per disk."""

    def __init__(self, info: SnapshotInfo, load_index: Callable[[SnapshotInfo, str], DiskIndex]) -> None:
        self.info = info
        self._load_index = load_index
        self._indexes: dict[str, DiskIndex] = {}

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def manifest(self) -> dict:
        return self.info.manifest

    def index(self, disk_name: str) -> DiskIndex:
        if disk_name not in self._indexes:
            self._indexes[disk_name] = self._load_index(self.info, disk_name)
        return self._indexes[disk_name]
