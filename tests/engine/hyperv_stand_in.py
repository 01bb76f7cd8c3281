"""A stand-in for one Windows Hyper-V host, under the transport, for the engine's review-fix tests.

It receives the real assembled scripts (so every line of Python above the transport is the line a
real host runs) and answers each operation with a document in the shape its .ps1 prints (the
fixtures of tests/hyperv, checked against the scripts by tests/hyperv/test_shapes.py), or with
the error document Write-HvFailure prints. One VM with one raw disk file on this machine stands
for the host's VM; `fail` answers an operation with an error document once, `answer` replaces an
answer, so a test can make any step fail the way Hyper-V documents it.

When the lab answers the scripts itself (`--host lab:`, issue 13), these tests can run on it with
the same failure injection wrapped around the lab's transport.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hvbackup.hyperv.filesource import LocalFileSource
from hvbackup.hyperv.powershell import PowerShellHost
from hvbackup.hyperv.transport.base import Transport
from tests.hyperv.hyperv_fixtures import fixture, operation_of

VM_ID = "6A1F3C2E-8B4D-4E5F-9A0B-1C2D3E4F5A6B"
DISK_ID = "Microsoft:6A1F3C2E-8B4D-4E5F-9A0B-1C2D3E4F5A6B\\83F8638B-8DCA-4152-9EDA-2CA8B33039B4\\0\\0\\D"
DEFAULT_NAME = "web01 - Backup - (11/25/2026 - 03:00:01)"  # what Hyper-V calls a recovery checkpoint
MIB = 1024 * 1024


def error(kind: str, message: str, operation: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"kind": kind, "message": message, "operation": operation, **extra}}


def wmi_error(operation: str, code: int, description: str, job_state: int | None = 10) -> dict[str, Any]:
    extra: dict[str, Any] = {"code": code, "description": description}
    if job_state is not None:
        extra["job_state"] = job_state
    return error("WmiJobError", f"job ended in state {job_state}", operation, **extra)


class StandInHost(Transport):
    def __init__(self, folder: Path, *, disk_size: int = 8 * MIB) -> None:
        self.host_name = "hv01.test"
        self.folder = folder
        self.disk = folder / "web01.img"  # the frozen file a checkpoint hands out
        with open(self.disk, "wb") as f:
            f.truncate(disk_size)
            f.write(b"boot sector".ljust(4096, b"\0"))
            f.seek(3 * MIB)
            f.write(bytes(range(256)) * 4096)
        self.live_path = str(folder / "web01_ABC.avhdx")  # what the VM writes to while a checkpoint exists
        self.base_path = str(self.disk)
        self.checkpoints: list[dict[str, Any]] = []  # Get-VMSnapshot's shape (ConvertTo-HvCheckpoint)
        self.reference_points: list[dict[str, Any]] = []
        self.host_document = fixture("get_host.json")
        self.vm_extra: dict[str, Any] = {}
        self.drive_extra: dict[str, Any] = {}
        self.frozen_path: str | None = None  # the checkpoint's disk path; None: the frozen base file
        self.failures: dict[str, list[dict[str, Any]]] = {}
        self.answers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    # -- test controls ------------------------------------------------------------------------

    def fail(self, operation: str, document: dict[str, Any]) -> None:
        """Answer the next call of `operation` with this error document."""
        self.failures.setdefault(operation, []).append(document)

    def operations(self) -> list[str]:
        return [op for op, _ in self.calls]

    def add_checkpoint(self, name: str, *, recovery: bool = True, parent: str | None = None) -> str:
        checkpoint_id = str(uuid.uuid4()).upper()
        kind = {"name": "Recovery", "value": 1} if recovery else {"name": "Standard", "value": 0}
        self.checkpoints.append(
            {
                "Id": checkpoint_id,
                "Name": name,
                "VMId": VM_ID,
                "SnapshotType": kind,
                "CreationTime": "2026-11-25T03:00:01.0000000Z",
                "ParentSnapshotId": parent or "",
            }
        )
        return checkpoint_id

    def powershell_host(self) -> PowerShellHost:
        return PowerShellHost(self, LocalFileSource, poll_interval=0.0)

    # -- Transport ----------------------------------------------------------------------------

    def run(self, script: str, timeout: float) -> str:
        operation, params = operation_of(script)
        self.calls.append((operation, params))
        if self.failures.get(operation):
            return json.dumps(self.failures[operation].pop(0))
        handler = self.answers.get(operation) or getattr(self, f"_{operation}")
        return json.dumps(handler(params))

    def close(self) -> None:
        pass

    # -- the operations, in the documented shapes ---------------------------------------------------

    def _get_host(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.host_document

    def _vm_document(self) -> dict[str, Any]:
        vm = copy.deepcopy(fixture("inventory.json")["VMs"][0])
        drive = self._drive(self.live_path if self._held() else self.base_path)
        vm.update(HardDrives=[drive], Checkpoints=copy.deepcopy(self.checkpoints), **self.vm_extra)
        return vm

    def _drive(self, path: str) -> dict[str, Any]:
        drive = copy.deepcopy(fixture("inventory.json")["VMs"][0]["HardDrives"][0])
        drive.update(Path=path, Id=DISK_ID)
        drive["Vhd"].update(Size=self.disk.stat().st_size, DiskIdentifier="0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0")
        drive.update(self.drive_extra)
        if drive.get("VhdError"):
            drive["Vhd"] = None
        return drive

    def _held(self) -> bool:
        return bool(self.checkpoints)  # any checkpoint: the VM writes to a differencing disk

    def _inventory(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"VMs": [self._vm_document()]}

    def _list_orphans(self, params: dict[str, Any]) -> dict[str, Any]:
        orphans = []
        for c in self.checkpoints:
            recovery = c["SnapshotType"]["name"] == "Recovery"
            if recovery or c["Name"].startswith(params["Prefix"]):
                orphans.append(
                    {
                        "Kind": "recovery-checkpoint" if recovery else "checkpoint",
                        "VMId": VM_ID,
                        "VMName": "web01",
                        "Id": c["Id"],
                        "Name": c["Name"],
                        "CreationTime": c["CreationTime"],
                        "Detail": f"{c['SnapshotType']['name']} checkpoint",
                    }
                )
        return {"Orphans": orphans}

    def _create_checkpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        checkpoint_id = self.add_checkpoint(DEFAULT_NAME)
        self.level = int(params["ConsistencyLevel"])
        return {"Checkpoint": self._from_wmi(checkpoint_id)}

    def _from_wmi(self, checkpoint_id: str) -> dict[str, Any]:
        """ConvertTo-HvCheckpointFromWmi's shape."""
        c = next(c for c in self.checkpoints if c["Id"] == checkpoint_id)
        return {k: c[k] for k in ("Id", "Name", "VMId", "SnapshotType", "CreationTime")}

    def _find(self, checkpoint_id: str) -> dict[str, Any]:
        return next(c for c in self.checkpoints if c["Id"].lower() == checkpoint_id.lower())

    def _name_checkpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        checkpoint = self._find(params["CheckpointId"])
        checkpoint["Name"] = params["Name"]
        return {"Checkpoint": self._from_wmi(checkpoint["Id"])}

    def _checkpoint_disks(self, params: dict[str, Any]) -> dict[str, Any]:
        self._find(params["CheckpointId"])
        drive = self._drive(self.frozen_path or self.base_path)
        drive["Id"] = DISK_ID.replace(VM_ID, params["CheckpointId"].upper())
        return {"HardDrives": [drive]}

    def _convert_to_reference_point(self, params: dict[str, Any]) -> dict[str, Any]:
        checkpoint = self._find(params["CheckpointId"])
        self.checkpoints.remove(checkpoint)
        point = copy.deepcopy(fixture("convert_to_reference_point.json")["ReferencePoint"])
        level = getattr(self, "level", 2)
        point.update(
            InstanceID=f"Microsoft:{uuid.uuid4()}".upper(),
            VirtualSystemIdentifier=VM_ID,
            ConsistencyLevel={"name": {1: "ApplicationConsistent", 2: "CrashConsistent"}[level], "value": level},
            VirtualDiskIdentifiers=[DISK_ID],
            ResilientChangeTrackingIdentifiers=[f"rct:{len(self.reference_points)}"],
        )
        self.reference_points.append(point)
        return {"ReferencePoint": point}

    def _destroy_checkpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        self.checkpoints.remove(self._find(params["CheckpointId"]))
        return {"Done": True}

    def _list_reference_points(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ReferencePoints": self.reference_points}

    def _destroy_reference_point(self, params: dict[str, Any]) -> dict[str, Any]:
        self.reference_points = [p for p in self.reference_points if p["InstanceID"] != params["ReferencePointId"]]
        return {"Done": True}

    def _guest_items(self, params: dict[str, Any]) -> dict[str, Any]:
        return fixture("guest_items_none.json")  # a guest that publishes nothing over KVP

    def _set_guest_item(self, params: dict[str, Any]) -> dict[str, Any]:
        return fixture("set_guest_item.json")

    def _checkpoint_files(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"Files": []}  # the stand-in keeps no configuration files

    def _changed_ranges(self, params: dict[str, Any]) -> dict[str, Any]:
        size = self.disk.stat().st_size
        return {
            "VirtualSize": size,
            "ByteOffset": params["ByteOffset"],
            "ProcessedByteLength": size - params["ByteOffset"],
            "ChangedByteOffsets": [0],
            "ChangedByteLengths": [MIB],
        }
