"""The files of a lab folder and of each VM folder in it.

DIR/lab.json                         format, host facts, options ("record_digests")
DIR/vms/<name>/vm.json               the VM (record.py)
DIR/vms/<name>/Virtual Hard Disks/   <disk>.vhdx and checkpoint files <disk>_<GUID>.avhdx
DIR/vms/<name>/rct/                  change tracking per disk (rct.py)
DIR/vms/<name>/<VM id>.vmrs          memory state while Saved
DIR/vms/<name>/guest/                the guest agent's hooks.d, guest.toml, run/, kvp/ (its KVP pools)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hvbackup.atomic import atomic_write
from hvbackup.hyperv.errors import HyperVError
from hvbackup.lab.locks import IO_LOCK, OPERATION_LOCK, held
from hvbackup.lab.rct import ChangeLog
from hvbackup.lab.record import VM_FILE, VmRecord

LAB_FILE = "lab.json"
LAB_FORMAT = 1
DISKS_DIR = "Virtual Hard Disks"


class NotALab(HyperVError):
    """The directory is not a lab host folder."""


def read_lab_file(directory: Path) -> dict[str, Any]:
    path = directory / LAB_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise NotALab(
            f"{directory} is not a lab host (no {LAB_FILE}): create one with `hvbackup lab create {directory}`"
        ) from None
    except (OSError, ValueError) as exc:
        raise NotALab(f"{path}: unreadable ({exc})") from None
    if data.get("format") != LAB_FORMAT:
        raise NotALab(f"{path}: lab format {data.get('format')!r}, this version reads {LAB_FORMAT}")
    return data


def write_lab_file(directory: Path, data: dict[str, Any]) -> None:
    atomic_write(directory / LAB_FILE, json.dumps(data, indent=2) + "\n")


@dataclass(frozen=True)
class VmFolder:
    """One VM folder: its record, locks, disks and change tracking."""

    path: Path

    @property
    def disks_dir(self) -> Path:
        return self.path / DISKS_DIR

    @property
    def guest_dir(self) -> Path:
        return self.path / "guest"

    @property
    def rct_dir(self) -> Path:
        return self.path / "rct"

    def exists(self) -> bool:
        return (self.path / VM_FILE).exists()

    def load(self) -> VmRecord:
        return VmRecord.load(self.path)

    @contextmanager
    def operation(self) -> Iterator[None]:
        """Held for a whole lab operation on this VM (never by the workload)."""
        with held(self.path / OPERATION_LOCK):
            yield

    @contextmanager
    def io(self) -> Iterator[VmRecord]:
        """Held while disks or vm.json change; yields the record as it is now (save it to keep changes)."""
        with held(self.path / IO_LOCK):
            yield self.load()

    def change_log(self, drive: str, record: VmRecord) -> ChangeLog:
        """The change tracking of a drive, kept under the name of its base disk file."""
        base = Path(record.chains[drive][0]).stem
        return ChangeLog(self.rct_dir, base)

    def vmrs_path(self, vm_id: str) -> Path:
        return self.path / f"{vm_id.upper()}.vmrs"

    def relative(self, path: Path) -> str:
        return os.path.relpath(path, self.path)


def vm_folders(directory: Path) -> list[VmFolder]:
    root = directory / "vms"
    if not root.is_dir():
        return []
    return [VmFolder(p) for p in sorted(root.iterdir()) if (p / VM_FILE).exists()]
