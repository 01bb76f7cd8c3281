"""Making a lab VM folder: from a VM model and its disk files (the sample), or from a saved
configuration (create_vm, what a restore calls; the steps of New-VM -NoVHD + Add-VMHardDiskDrive,
docs/HYPERV.md §7)."""

from __future__ import annotations

import dataclasses
import random
import shutil
import uuid
from pathlib import Path

from hvbackup.errors import UsageError
from hvbackup.hyperv.enums import IntegrationServiceStatus, VMState
from hvbackup.hyperv.model import VM, IntegrationService, NetworkAdapter, VirtualDisk, VmConfig, vm_name_problem
from hvbackup.lab.disks import drive_instance_id
from hvbackup.lab.folder import DISKS_DIR, VmFolder
from hvbackup.lab.rct import ChangeLog
from hvbackup.lab.record import GUEST_KINDS, VM_FILE, VmRecord, WritableFile

SERVICE_NAMES = (
    "Guest Service Interface",
    "Heartbeat",
    "Key-Value Pair Exchange",
    "Shutdown",
    "Time Synchronization",
    "VSS",
)
DEFAULT_ENABLED = ("Heartbeat", "Key-Value Pair Exchange", "Shutdown", "Time Synchronization", "VSS")


def hyperv_mac(rng: random.Random) -> str:
    """A MAC in Hyper-V's default dynamic range (00-15-5D, Microsoft's OUI), as Get-VMNetworkAdapter prints it."""
    return "00155D" + "".join(f"{rng.randrange(256):02X}" for _ in range(3))


def services(enabled: tuple[str, ...], status: IntegrationServiceStatus) -> tuple[IntegrationService, ...]:
    text = {IntegrationServiceStatus.Ok: "OK", IntegrationServiceStatus.NoContact: "No Contact"}.get(
        status, status.name
    )
    return tuple(
        IntegrationService(
            n, n in enabled, status if n in enabled else IntegrationServiceStatus.Unknown, text if n in enabled else ""
        )
        for n in SERVICE_NAMES
    )


def folder_for(directory: Path, name: str, vm_id: str, incoming: tuple[Path, ...] = ()) -> Path:
    """The new VM's folder under DIR/vms: never built from a name that could be a path. A folder that
    holds nothing but the disks being moved in (a restore's destination) becomes the VM's folder."""
    check_vm_name(name)
    base = directory / "vms"
    parents = {f.resolve().parent for f in incoming}
    if len(parents) == 1:
        (given,) = parents
        if given.parent == base.resolve() and _only_holds(given, incoming):
            return given  # a restore's destination folder under DIR/vms
    candidate = base / name
    if not candidate.exists() or _only_holds(candidate, incoming):
        return candidate
    return base / f"{name}-{vm_id[:8].lower()}"


def _only_holds(folder: Path, files: tuple[Path, ...]) -> bool:
    if not folder.is_dir() or (folder / VM_FILE).exists():
        return False
    return {p.resolve() for p in folder.iterdir()} <= {f.resolve() for f in files}


def check_vm_name(name: str) -> None:
    problem = vm_name_problem(name)
    if problem is not None:
        raise UsageError(problem)


def make_vm_folder(
    directory: Path,
    vm: VM,
    disk_files: dict[str, Path],
    *,
    guest: str,
    writable: list[WritableFile] | None = None,
    move: bool = True,
) -> VmFolder:
    """A VM folder for `vm`; `disk_files` maps each file disk's instance id to its VHDX, moved (or copied) in."""
    if guest not in GUEST_KINDS:
        raise UsageError(f"guest kind {guest!r}: use one of {', '.join(GUEST_KINDS)}")
    folder = VmFolder(folder_for(directory, vm.name, vm.id, tuple(disk_files.values())))
    folder.disks_dir.mkdir(parents=True)
    for sub in ("hooks.d", "run", "app"):
        (folder.guest_dir / sub).mkdir(parents=True, exist_ok=True)
    chains: dict[str, list[str]] = {}
    stored_disks = []
    for disk in vm.disks:
        if disk.is_passthrough:
            stored_disks.append(disk)
            continue
        source = disk_files[disk.instance_id or ""]
        target = _free_name(folder.disks_dir, source.name)
        (shutil.move if move else shutil.copyfile)(str(source), str(target))
        relative = f"{DISKS_DIR}/{target.name}"
        chains[disk.instance_id or ""] = [relative]
        stored_disks.append(dataclasses.replace(disk, path=relative))
        ChangeLog(folder.rct_dir, target.stem).create()
    stored = dataclasses.replace(
        vm, disks=tuple(stored_disks), checkpoints=(), path="", configuration_location="", snapshot_location=""
    )
    record = VmRecord(folder.path, stored.to_json(), guest=guest, chains=chains, writable=writable or [])
    record.save()
    return folder


def _free_name(directory: Path, name: str) -> Path:
    target = directory / name
    stem, suffix, n = target.stem, target.suffix, 1
    while target.exists():
        n += 1
        target = directory / f"{stem}-{n}{suffix}"
    return target


def build_vm_record(directory: Path, config: VmConfig, name: str, disk_paths: list[Path]) -> VmFolder:
    """create_vm: a new VM (new id, Off) from a saved configuration and disk files."""
    check_vm_name(name)
    for path in disk_paths:
        if not path.is_file():
            raise UsageError(f"create_vm: disk file {path} does not exist")
    vm_id = str(uuid.uuid4()).upper()
    rng = random.Random(vm_id)
    files: dict[str, Path] = {}
    disks = []
    for template, path in zip(config.disks, disk_paths, strict=True):
        drive = drive_instance_id(
            vm_id, vm_id, int(template.controller_type), template.controller_number, template.controller_location
        )
        disks.append(
            VirtualDisk(
                template.controller_type,
                template.controller_number,
                template.controller_location,
                "",
                instance_id=drive,
            )
        )
        files[drive] = path
    nics = tuple(
        dataclasses.replace(n, mac_address=hyperv_mac(rng)) if n.dynamic_mac or not n.mac_address else n
        for n in config.network_adapters
    ) or (NetworkAdapter("Network Adapter", hyperv_mac(rng), True, False),)
    enabled = config.enabled_services or DEFAULT_ENABLED
    vm = VM(
        id=vm_id,
        name=name,
        state=VMState.Off,
        generation=config.generation,
        version=config.version,
        checkpoint_type=config.checkpoint_type,
        processor_count=config.processor_count,
        memory=config.memory,
        firmware=config.firmware,
        integration_services=services(tuple(enabled), IntegrationServiceStatus.Ok),
        network_adapters=nics,
        disks=tuple(disks),
    )
    guest = "stock" if "VSS" in enabled or "Backup (volume snapshot)" in enabled else "none"
    return make_vm_folder(directory, vm, files, guest=guest)
