"""vm.json: one lab VM as the model sees it, plus what only the lab knows.

    {"format": 1,
     "vm": VM.to_json() of the VM's static facts (disks without paths: those come from the chains),
     "lab": {"guest": "agent" | "stock" | "none",
             "chains": {drive instance id: ["Virtual Hard Disks/os.vhdx", ".../os_<GUID>.avhdx", ...]},
             "writable": [{"path": guest path, "drive": instance id, "size": n, "extents": [[file off, disk off, n]]}],
             "workload_pid": pid | null, "shutdown_requested": bool, "generation": n,
             "checkpoints": [...], "reference_points": [...], "guest_reports": {...}, "digests": {...}}}

Paths inside vm.json are relative to the VM folder, so a lab folder can be moved as a whole.
Writes are atomic (temporary file, fsync, rename) so the workload always reads a whole document.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hvbackup.atomic import atomic_write
from hvbackup.hyperv.errors import HyperVError
from hvbackup.hyperv.model import VM

RECORD_FORMAT = 1
VM_FILE = "vm.json"
GUEST_KINDS = ("agent", "stock", "none")
KEEP_HISTORY = 32  # guest reports and digests kept per VM (by checkpoint id)


@dataclass
class WritableFile:
    """A file inside the guest filesystem whose blocks the guest (the workload) overwrites in place."""

    path: str
    drive: str
    size: int
    extents: list[tuple[int, int, int]]  # (offset in file, offset on the virtual disk, length)

    def disk_pieces(self, offset: int, length: int) -> list[tuple[int, int, int]]:
        """(disk offset, offset in the data, length) pieces of the file range [offset, offset+length)."""
        pieces = []
        for file_off, disk_off, extent_len in self.extents:
            start, end = max(offset, file_off), min(offset + length, file_off + extent_len)
            if start < end:
                pieces.append((disk_off + start - file_off, start - offset, end - start))
        return pieces

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "drive": self.drive, "size": self.size, "extents": [list(e) for e in self.extents]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WritableFile:
        return cls(data["path"], data["drive"], data["size"], [tuple(e) for e in data["extents"]])


@dataclass
class CheckpointRecord:
    id: str
    name: str
    created: str
    consistency: int  # ConsistencyLevel value Hyper-V records for it
    frozen: dict[str, str]  # drive instance id -> frozen file (relative)
    rct: dict[str, str]  # drive instance id -> RCT id at the checkpoint moment
    positions: dict[str, int]  # drive instance id -> change-log position at the checkpoint moment
    type: int = 1  # SnapshotType: 1 Recovery (a backup's), 0 Standard (a user's)
    parent: str | None = None  # ParentSnapshotId: the checkpoint the VM stood on when this one was taken

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckpointRecord:
        return cls(**data)


@dataclass
class VmRecord:
    """The parsed vm.json of one VM folder."""

    folder: Path
    vm: dict[str, Any]
    guest: str = "none"
    chains: dict[str, list[str]] = field(default_factory=dict)
    writable: list[WritableFile] = field(default_factory=list)
    workload_pid: int | None = None
    shutdown_requested: bool = False
    generation: int = 0
    checkpoints: list[CheckpointRecord] = field(default_factory=list)
    reference_points: list[dict[str, Any]] = field(default_factory=list)
    guest_reports: dict[str, Any] = field(default_factory=dict)
    digests: dict[str, dict[str, str]] = field(default_factory=dict)

    # -- identity and state ------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.vm["id"]

    @property
    def name(self) -> str:
        return self.vm["name"]

    @property
    def model(self) -> VM:
        return VM.from_json(self.vm)

    def set(self, **fields: Any) -> None:
        """Change fields of the VM model (validated by building the model)."""
        updated = {**self.vm, **{k: _plain(v) for k, v in fields.items()}}
        VM.from_json(updated)
        self.vm = updated

    def top(self, drive: str) -> Path:
        return self.folder / self.chains[drive][-1]

    def writable_file(self, guest_path: str) -> WritableFile | None:
        return next((w for w in self.writable if w.path == guest_path), None)

    def checkpoint(self, checkpoint_id: str) -> CheckpointRecord | None:
        return next((c for c in self.checkpoints if c.id.lower() == checkpoint_id.lower()), None)

    def remember(self, table: dict[str, Any], key: str, value: Any) -> None:
        table[key] = value
        while len(table) > KEEP_HISTORY:
            table.pop(next(iter(table)))

    # -- file --------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "format": RECORD_FORMAT,
            "vm": self.vm,
            "lab": {
                "guest": self.guest,
                "chains": self.chains,
                "writable": [w.to_json() for w in self.writable],
                "workload_pid": self.workload_pid,
                "shutdown_requested": self.shutdown_requested,
                "generation": self.generation,
                "checkpoints": [c.to_json() for c in self.checkpoints],
                "reference_points": self.reference_points,
                "guest_reports": self.guest_reports,
                "digests": self.digests,
            },
        }

    def save(self) -> None:
        atomic_write(self.folder / VM_FILE, json.dumps(self.to_json(), indent=1))

    @classmethod
    def load(cls, folder: Path) -> VmRecord:
        path = folder / VM_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise HyperVError(f"{folder} is not a lab VM folder (no {VM_FILE})") from None
        except (OSError, ValueError) as exc:
            raise HyperVError(f"{path}: unreadable ({exc})") from None
        if data.get("format") != RECORD_FORMAT:
            raise HyperVError(f"{path}: format {data.get('format')!r}, this version reads {RECORD_FORMAT}")
        lab = data["lab"]
        return cls(
            folder=folder,
            vm=data["vm"],
            guest=lab["guest"],
            chains={k: list(v) for k, v in lab["chains"].items()},
            writable=[WritableFile.from_json(w) for w in lab["writable"]],
            workload_pid=lab.get("workload_pid"),
            shutdown_requested=lab.get("shutdown_requested", False),
            generation=lab.get("generation", 0),
            checkpoints=[CheckpointRecord.from_json(c) for c in lab.get("checkpoints", [])],
            reference_points=list(lab.get("reference_points", [])),
            guest_reports=dict(lab.get("guest_reports", {})),
            digests=dict(lab.get("digests", {})),
        )


def _plain(value: Any) -> Any:
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    from enum import IntEnum

    if isinstance(value, IntEnum):
        return {"name": value.name, "value": int(value)}
    return value
