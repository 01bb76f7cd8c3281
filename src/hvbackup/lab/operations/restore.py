"""Lab operations: restore (see lab/operations/__init__.py): create_vm, list_switches, checkpoint_files."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hvbackup.hyperv.errors import InvalidVmState, ObjectNotFound
from hvbackup.hyperv.model import VmConfig
from hvbackup.lab import configfiles
from hvbackup.lab.newvm import build_vm_record
from hvbackup.lab.operations import operation
from hvbackup.lab.shapes import vm_document

if TYPE_CHECKING:
    from hvbackup.lab.host import LabHost

DEFAULT_SWITCH = "Default Switch"  # what a Windows Server/Client Hyper-V host has out of the box


def _vm_document(lab: LabHost, vm_id: str) -> dict[str, Any]:
    """ConvertTo-HvVm of the new VM (Off: no guest items, no checkpoints)."""
    return vm_document(lab.get_vm(vm_id))


@operation("create_vm")
def create_vm(lab: LabHost, params: dict[str, Any]) -> dict[str, Any]:
    config = VmConfig.from_json(params["Config"])
    paths = [Path(p) for p in params.get("DiskPaths") or []]
    for path in paths:
        if not path.is_file():
            raise ObjectNotFound(f"Add-VMHardDiskDrive: the file {path} does not exist")
    folder = build_vm_record(lab.directory, config, str(params["Name"]), paths)
    return {"VM": _vm_document(lab, folder.load().id)}


@operation("list_switches")
def list_switches(lab: LabHost, params: dict[str, Any]) -> dict[str, Any]:
    """The lab's switches: a lab setting `switches`, else the Default Switch and every switch its VMs use."""
    names = lab.settings.get("switches")
    if names is None:
        used = {n.switch_name for vm in lab.inventory() for n in vm.network_adapters if n.switch_name}
        names = sorted(used | {DEFAULT_SWITCH})
    return {
        "Switches": [
            {"Name": name, "Id": f"00000000-0000-4000-8000-{n:012x}", "SwitchType": {"name": "Internal", "value": 1}}
            for n, name in enumerate(names, 1)
        ]
    }


@operation("checkpoint_files")
def checkpoint_files(lab: LabHost, params: dict[str, Any]) -> dict[str, Any]:
    vm = lab.get_vm(str(params["VmId"]))
    checkpoint_id = str(params["CheckpointId"])
    failure = lab.take_failure("checkpoint_files", vm.id)
    if failure is not None:  # a lab behaviour: the settings' files cannot be found (lab.fail_operation)
        raise ObjectNotFound(f"the configuration files of checkpoint {checkpoint_id} (error {failure['code']})")
    if not any(c.id.lower() == checkpoint_id.lower() for c in vm.checkpoints):
        raise ObjectNotFound(f"VM {vm.id} has no checkpoint {checkpoint_id}")
    files = configfiles.checkpoint_files(lab.folder(vm.id).path, vm, checkpoint_id)
    return {"Files": [{"Kind": kind, "Path": str(path), "Size": path.stat().st_size} for kind, path in files]}


@operation("import_vm")
def import_vm(lab: LabHost, params: dict[str, Any]) -> dict[str, Any]:
    """Compare-VM + Import-VM -Copy -GenerateNewId: the settings come from the .vmcx; the drives at the
    given addresses get the given disks, the adapters the given switches and MAC choice."""
    captured = configfiles.read_vmcx(Path(str(params["Path"])))
    asked = VmConfig.from_json(params["Config"])
    paths = [Path(p) for p in params.get("DiskPaths") or []]
    for path in paths:
        if not path.is_file():
            raise ObjectNotFound(f"Import-VM: the file {path} does not exist")
    settings = captured.config()
    addresses = {d.address for d in settings.disks}
    missing = [d.address for d in asked.disks if d.address not in addresses]
    if missing:
        raise InvalidVmState(f"the configuration has no drive at {', '.join(missing)}")
    config = dataclasses.replace(settings, disks=asked.disks, network_adapters=asked.network_adapters)
    folder = build_vm_record(lab.directory, config, str(params["Name"]), paths)
    return {"VM": _vm_document(lab, folder.load().id)}
