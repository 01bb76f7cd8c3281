"""Lab disk chains as the model sees them, and the checkpoint files on them.

A drive's chain is its base VHDX followed by the AVHDX files of the checkpoints taken since, each
next to its parent and named `<disk>_<GUID>.avhdx` as Hyper-V names them (docs/HYPERV.md §3).
The VM writes to the last file of the chain.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

from hvbackup.disk import create_differencing, finish_merge, merge_differencing, open_disk
from hvbackup.hyperv.enums import VhdFormat, VhdType
from hvbackup.hyperv.model import VirtualDisk

DRIVE_SUFFIX = "D"  # Msvm_StorageAllocationSettingData/drive instance ids end in \D (drive) or \L (disk)
DISK_SUFFIX = "L"


def controller_guid(vm_id: str, controller_type: int, number: int) -> str:
    return str(uuid.uuid5(uuid.UUID(vm_id), f"controller:{controller_type}:{number}")).upper()


def drive_instance_id(
    owner_id: str, vm_id: str, controller_type: int, number: int, location: int, suffix: str = DRIVE_SUFFIX
) -> str:
    """'Microsoft:<owner>\\<controller>\\<number>\\<location>\\D', owner = the VM or a snapshot (docs/HYPERV.md §9)."""
    controller = controller_guid(vm_id, controller_type, number)
    return f"Microsoft:{owner_id.upper()}\\{controller}\\{number}\\{location}\\{suffix}"


def with_owner(instance_id: str, owner_id: str, suffix: str | None = None) -> str:
    """The same device's instance id under another owner (a snapshot) or with another suffix."""
    _head, _, rest = instance_id.partition("\\")
    parts = rest.split("\\")
    if suffix is not None:
        parts[-1] = suffix
    return f"Microsoft:{owner_id.upper()}\\" + "\\".join(parts)


def describe(template: VirtualDisk, path: Path) -> VirtualDisk:
    """`template` (controller address, instance id) filled with the facts Get-VHD gives for `path`."""
    with open_disk(path) as image:
        differencing = bool(getattr(image, "is_differencing", False))
        return replace(
            template,
            path=str(path),
            format=VhdFormat.VHDX,
            type=VhdType.Differencing if differencing else VhdType.Dynamic,
            size=image.size,
            file_size=path.stat().st_size,
            block_size=getattr(image, "block_size", 0),
            logical_sector_size=getattr(image, "logical_sector_size", 512),
            physical_sector_size=getattr(image, "physical_sector_size", 4096),
            parent_path=str(Path(image.parent_path).resolve()) if differencing and image.parent_path else None,
            disk_identifier=str(getattr(image, "virtual_disk_id", "") or "").upper() or None,
        )


def new_checkpoint_file(top: Path) -> Path:
    """Create `<disk>_<GUID>.avhdx` on `top` (beside it) and return its path."""
    stem = top.stem.split("_")[0]
    child = top.with_name(f"{stem}_{str(uuid.uuid4()).upper()}.avhdx")
    create_differencing(child, top).close()
    return child


def merge_into_parent(child: Path) -> Path:
    """What deleting a checkpoint does to its files, first half: the AVHDX's data goes into its
    parent, and the AVHDX still opens. Returns the parent; `finish_merges` ends it once the VM's
    record no longer names the AVHDX (a proxy killed in between must not leave a record naming a
    file that is gone: on Hyper-V the host, not the proxy, runs the merge)."""
    return Path(merge_differencing(child, finish=False))


def finish_merges(merged: list[tuple[Path, Path]]) -> None:
    for child, parent in merged:
        finish_merge(child, parent)
