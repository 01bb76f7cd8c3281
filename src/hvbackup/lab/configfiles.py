"""The configuration files of a lab checkpoint: what checkpoint_files.ps1 names on a real host.

A real host keeps a checkpoint's settings in `Snapshots\\<id>.vmcx` (Microsoft's binary format,
undocumented), its guest state (UEFI NVRAM, vTPM) in `<id>.vmgs` for Generation 2, and a saved VM's
memory in `<id>.vmrs` (docs/HYPERV.md §14). The lab writes files of its own content under those
names: the .vmcx holds the VM's JSON model, the .vmgs and .vmrs a small labelled block. They exist
so that a backup captures, stores and restores configuration files through the same code a real
host runs; nothing reads them as Microsoft's formats.
"""

from __future__ import annotations

import json
from pathlib import Path

from hvbackup.atomic import atomic_write
from hvbackup.hyperv.enums import VMState
from hvbackup.hyperv.model import VM

SNAPSHOTS_DIR = "Snapshots"
GUEST_STATE_SIZE = 1024 * 1024  # a labelled 1 MiB block, so it is read like a small disk


def checkpoint_files(vm_folder: Path, vm: VM, checkpoint_id: str) -> list[tuple[str, Path]]:
    """(kind, path) of each configuration file of the checkpoint, written on first use."""
    folder = vm_folder / SNAPSHOTS_DIR
    folder.mkdir(exist_ok=True)
    stem = checkpoint_id.upper()
    files = [("vmcx", folder / f"{stem}.vmcx")]
    if vm.generation == 2:
        files.append(("vmgs", folder / f"{stem}.vmgs"))
    if vm.state == VMState.Saved:
        files.append(("vmrs", folder / f"{stem}.vmrs"))
    for kind, path in files:
        if not path.exists():
            atomic_write(path, _content(kind, vm, checkpoint_id))
    return files


def _content(kind: str, vm: VM, checkpoint_id: str) -> bytes:
    if kind == "vmcx":
        document = {"lab_vmcx": 1, "checkpoint": checkpoint_id, "vm": vm.to_json()}
        return json.dumps(document, indent=1).encode()
    label = f"hvbackup lab {kind} of VM {vm.id} at checkpoint {checkpoint_id}\n".encode()
    return label + bytes(GUEST_STATE_SIZE - len(label))


def read_vmcx(path: Path) -> VM:
    """The VM a lab .vmcx describes (ObjectNotFound / InvalidVmState as Compare-VM would fail)."""
    from hvbackup.hyperv.errors import InvalidVmState, ObjectNotFound

    try:
        document = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise ObjectNotFound(f"Compare-VM: the file {path} does not exist") from None
    except ValueError:
        raise InvalidVmState(f"Compare-VM: {path} is not a virtual machine configuration file") from None
    if not isinstance(document, dict) or document.get("lab_vmcx") != 1:
        raise InvalidVmState(f"Compare-VM: {path} is not a virtual machine configuration file")
    return VM.from_json(document["vm"])
