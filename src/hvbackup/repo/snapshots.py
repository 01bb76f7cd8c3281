"""Snapshots as the repository hands them out: a summary (SnapshotInfo) and a loaded Snapshot."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hvbackup.repo.index import DiskIndex


def printable(value: Any) -> Any:
    """`value` with every string made printable as UTF-8, in lists and dicts too.

    A source named after a file name that is not valid UTF-8 carries its undecodable bytes as
    lone surrogates (Python's surrogateescape); they are shown as `\\xNN` (backslashreplace), so
    that output and JSON documents are valid UTF-8. See docs/FORMAT.md §7.1."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            errors = "surrogateescape" if _only_escapes(value) else "surrogatepass"
            return value.encode("utf-8", errors).decode("utf-8", "backslashreplace")
    if isinstance(value, list):
        return [printable(v) for v in value]
    if isinstance(value, dict):
        return {printable(k): printable(v) for k, v in value.items()}
    return value


def _only_escapes(text: str) -> bool:
    """Whether every surrogate in `text` is one surrogateescape makes (U+DC80..U+DCFF)."""
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in text)


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
            "source": printable(self.source),
            "hostname": printable(self.hostname),
            "protected": self.protected,
            "disks": printable(self.disk_names),
            "manifest": printable(self.manifest),
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
