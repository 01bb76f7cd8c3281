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

from hvbackup.engine.disk_restore import RestoreResult, restore_disk
from hvbackup.engine.manifest import DiskEntry, VmManifest, manifest_of
from hvbackup.errors import UsageError
from hvbackup.hyperv.host import HyperVHost
from hvbackup.hyperv.model import VM, VmConfig, vm_name_problem
from hvbackup.progress import Progress
from hvbackup.repo import Repository, Snapshot


@dataclass
class VmRestoreResult:
    vm_id: str
    name: str
    started: bool
    disks: list[RestoreResult]
    duration_s: float

    def to_json(self) -> dict:
        return {
            "vm_id": self.vm_id,
            "name": self.name,
            "started": self.started,
            "disks": [d.to_json() for d in self.disks],
            "duration_s": round(self.duration_s, 3),
        }


def staging_folder(host: HyperVHost) -> Path:
    """Where restored disks are written before the host takes them: local hosts only."""
    if host.directory is None:
        raise UsageError(
            "restoring a whole VM is supported on the lab host and on the Hyper-V host itself for now; "
            "restore the disks with --disk N --to FILE and attach them with New-VM / Add-VMHardDiskDrive"
        )
    return Path(host.directory) / ".restore-staging" / uuid.uuid4().hex[:12]


def restored_config(snapshot: Snapshot, name: str, keep_macs: bool) -> VmConfig:
    manifest = manifest_of(snapshot)
    if not isinstance(manifest, VmManifest):
        raise UsageError(
            f"snapshot {snapshot.info.short_id} is an image backup, not a VM: use `hvbackup image restore`"
        )
    config = manifest.vm.vm_config()
    if keep_macs:
        nics = tuple(dataclasses.replace(n, dynamic_mac=False) if n.mac_address else n for n in config.network_adapters)
    else:
        nics = tuple(dataclasses.replace(n, mac_address="", dynamic_mac=True) for n in config.network_adapters)
    return dataclasses.replace(config, name=name, network_adapters=nics)


def new_vm_name(snapshot: Snapshot, requested: str | None, existing: list[VM]) -> str:
    """The name the restored VM gets: `requested`, refused if a VM has it, or the first free
    `<name>-restored-<short id>`, `…-2`, `…-3`."""
    taken = {vm.name.lower() for vm in existing}  # Hyper-V compares VM names without case
    if requested is not None:
        problem = vm_name_problem(requested)
        if problem is not None:
            raise UsageError(problem)
        if requested.lower() in taken:
            raise UsageError(f"a VM named {requested!r} already exists on this host: choose another --name")
        return requested
    manifest = manifest_of(snapshot)
    original = manifest.vm.name if isinstance(manifest, VmManifest) else "vm"
    base = f"{original}-restored-{snapshot.info.short_id}"
    name, n = base, 1
    while name.lower() in taken:
        n += 1
        name = f"{base}-{n}"
    problem = vm_name_problem(name)
    if problem is not None:
        raise UsageError(f"{problem}: choose a name with --name")
    return name


def check_macs_free(config: VmConfig, existing: list[VM]) -> None:
    """--keep-macs only when no VM on the host uses one of the addresses (two NICs with one MAC on
    one network break both)."""
    for nic in config.network_adapters:
        if not nic.mac_address:
            continue
        for vm in existing:
            if any(_same_mac(nic.mac_address, other.mac_address) for other in vm.network_adapters):
                raise UsageError(
                    f"--keep-macs: MAC {nic.mac_address} is in use by VM {vm.name} ({vm.state.name}); "
                    f"remove that VM first or restore without --keep-macs"
                )


def _same_mac(a: str, b: str) -> bool:
    def plain(mac: str) -> str:
        return mac.replace("-", "").replace(":", "").upper()

    return bool(a and b) and plain(a) == plain(b)


def restore_vm(
    host: HyperVHost,
    repo: Repository,
    snapshot: Snapshot,
    *,
    name: str | None = None,
    keep_macs: bool = False,
    start: bool = True,
    allow_damaged: bool = False,
    progress: Progress | None = None,
) -> VmRestoreResult:
    """Restore `snapshot` as a new VM; every clash (name, MAC, an image snapshot) is refused
    before any disk is written."""
    started = time.monotonic()
    existing = host.inventory()
    name = new_vm_name(snapshot, name, existing)
    config = restored_config(snapshot, name, keep_macs)
    if keep_macs:
        check_macs_free(config, existing)
    disks = _disk_entries(snapshot, config)
    staging = staging_folder(host)
    staging.mkdir(parents=True)
    results: list[RestoreResult] = []
    try:
        paths = []
        for entry in disks:
            target = staging / f"{entry.name}.vhdx"
            results.append(
                restore_disk(
                    repo,
                    snapshot,
                    target,
                    disk_name=entry.name,
                    fmt="vhdx",
                    allow_damaged=allow_damaged,
                    progress=progress,
                )
            )
            paths.append(str(target))
        vm = host.create_vm(config, name, paths)
        if start:
            host.start_vm(vm)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return VmRestoreResult(vm.id, vm.name, start, results, time.monotonic() - started)


def _disk_entries(snapshot: Snapshot, config: VmConfig) -> list[DiskEntry]:
    """The manifest's disk entry for each disk of the configuration, in its order."""
    by_address = {d.controller: d for d in manifest_of(snapshot).disks}
    missing = [disk.address for disk in config.disks if disk.address not in by_address]
    if missing:
        raise UsageError(f"snapshot {snapshot.info.short_id} has no data for disk {', '.join(missing)}")
    return [by_address[disk.address] for disk in config.disks]
