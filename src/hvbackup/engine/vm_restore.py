"""`hvbackup restore`: a whole VM as a new VM on a host, or one disk to a file.

A whole-VM restore writes each disk as a dynamic VHDX of the original geometry into a staging
folder beside the host's VMs, then asks the host to build a new VM (new id) from the recorded
configuration with those disks at their recorded controller addresses. MAC addresses are
regenerated unless kept on purpose (a clone with the same MAC on the same network breaks both).
"""

from __future__ import annotations

import dataclasses
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from hvbackup.engine.disk_backup import Progress
from hvbackup.engine.disk_restore import RestoreResult, restore_disk
from hvbackup.errors import UsageError
from hvbackup.hyperv.host import HyperVHost
from hvbackup.hyperv.model import VmConfig
from hvbackup.repo import Repository, Snapshot


@dataclass
class VmRestoreResult:
    vm_id: str
    name: str
    started: bool
    disks: list[RestoreResult]
    duration_s: float

    def to_json(self) -> dict:
        return {"vm_id": self.vm_id, "name": self.name, "started": self.started,
                "disks": [d.to_json() for d in self.disks], "duration_s": round(self.duration_s, 3)}


def staging_folder(host: HyperVHost) -> Path:
    """Where restored disks are written before the host takes them: local hosts only."""
    directory = getattr(host, "directory", None)
    if directory is None:
        raise UsageError(
            "restoring a whole VM is supported on the lab host and on the Hyper-V host itself for now; "
            "restore the disks with --disk N --to FILE and attach them with New-VM / Add-VMHardDiskDrive"
        )
    return Path(directory) / ".restore-staging" / uuid.uuid4().hex[:12]


def restored_config(snapshot: Snapshot, name: str, keep_macs: bool) -> VmConfig:
    vm = snapshot.manifest.get("vm")
    if not vm:
        raise UsageError(f"snapshot {snapshot.info.id[:12]} is an image backup, not a VM: use `hvbackup image restore`")
    config = VmConfig.from_json(vm["config"])
    nics = config.network_adapters
    if not keep_macs:
        nics = tuple(dataclasses.replace(n, mac_address="", dynamic_mac=True) for n in nics)
    return dataclasses.replace(config, name=name, network_adapters=nics)


def restore_vm(host: HyperVHost, repo: Repository, snapshot: Snapshot, *, name: str | None = None,
               keep_macs: bool = False, start: bool = True, progress: Progress | None = None) -> VmRestoreResult:
    started = time.monotonic()
    original = snapshot.manifest.get("vm", {}).get("name", "vm")
    name = name or f"{original}-restored-{snapshot.info.id[:8]}"
    config = restored_config(snapshot, name, keep_macs)
    staging = staging_folder(host)
    staging.mkdir(parents=True)
    results: list[RestoreResult] = []
    try:
        by_address = {d["controller"]: d for d in snapshot.manifest["disks"]}
        paths = []
        for disk in config.disks:
            entry = by_address.get(disk.address)
            if entry is None:
                raise UsageError(f"snapshot {snapshot.info.id[:12]} has no data for disk {disk.address}")
            target = staging / f"{entry['name']}.vhdx"
            results.append(restore_disk(repo, snapshot, target, disk_name=entry["name"], fmt="vhdx", progress=progress))
            paths.append(str(target))
        vm = host.create_vm(config, name, paths)
        if start:
            host.start_vm(vm)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return VmRestoreResult(vm.id, vm.name, start, results, time.monotonic() - started)


