"""Disks: pass-through, Fibre Channel, unreadable, iSCSI, SMB, shared VHDX, VHD, VHDX block size
(docs/ASSESS.md §5, §6; docs/HYPERV.md §17)."""

from __future__ import annotations

import ntpath

from hvbackup.assess.finding import ADVICE, BLOCKER, ON_GUEST, WARNING, Finding
from hvbackup.assess.remedies import ps, with_vm_off
from hvbackup.assess.rules.registry import Facts, rule
from hvbackup.hyperv.enums import VhdFormat, VhdType
from hvbackup.hyperv.model import VM, VirtualDisk

MIB = 1024 * 1024
RECOMMENDED_BLOCK_SIZE = MIB


def _with_extension(path: str, extension: str) -> str:
    stem, dot, _ = path.rpartition(".")
    return f"{stem if dot else path}.{extension}"


def _swap_disk(vm: str, disk: VirtualDisk, new_path: str, convert: str) -> str:
    """Convert a disk file offline and attach the result at the same controller address."""
    attach = (
        f"Set-VMHardDiskDrive -VMName {ps(vm)} -ControllerType {disk.controller_type.name} "
        f"-ControllerNumber {disk.controller_number} -ControllerLocation {disk.controller_location} -Path {ps(new_path)}"
    )
    return with_vm_off(vm, convert, attach)


def _passthrough_remedy(vm: VM, disk: VirtualDisk) -> str:
    file_name = f"{vm.name}-{disk.address.replace(':', '-')}.vhdx"
    new_path = ntpath.join(vm.path, file_name) if vm.path else file_name
    size = str(disk.size) if disk.size else "<size of disk " + str(disk.passthrough_disk_number) + ">"
    return (
        f"New-VHD -Path {ps(new_path)} -SizeBytes {size} -Dynamic -BlockSizeBytes 1MB; "
        f"Add-VMHardDiskDrive -VMName {ps(vm.name)} -Path {ps(new_path)}"
        "  # then copy the data across in the guest and remove the pass-through disk"
    )


@rule("passthrough-disk", "Pass-through disk", BLOCKER, "docs/ASSESS.md §5")
def passthrough_disk(facts: Facts) -> list[Finding]:
    return [
        Finding(
            "passthrough-disk",
            f"Pass-through disk at {disk.address} is never in a checkpoint: the backup leaves it out",
            BLOCKER,
            f"{disk.address}: physical disk {disk.passthrough_disk_number} ({disk.path})",
            _passthrough_remedy(facts.vm, disk),
        )
        for disk in facts.vm.disks
        if disk.is_passthrough
    ]


@rule("fibre-channel", "Virtual Fibre Channel adapter", BLOCKER, "docs/ASSESS.md §5; docs/HYPERV.md §17")
def fibre_channel(facts: Facts) -> list[Finding]:
    vm = facts.vm
    return [
        Finding(
            "fibre-channel",
            f"{adapter.label}: its LUNs are never in a checkpoint: the backup leaves them out",
            BLOCKER,
            f"Get-VMFibreChannelHba: Name={adapter.name}, SanName={adapter.san_name}",
            f"New-VHD -Path <folder>\\{vm.name}-data.vhdx -SizeBytes <LUN size> -Dynamic -BlockSizeBytes 1MB; "
            f"Add-VMHardDiskDrive -VMName {ps(vm.name)} -Path <folder>\\{vm.name}-data.vhdx"
            "  # then copy the data across in the guest, or back the LUNs up on the SAN",
        )
        for adapter in vm.fibre_channel_adapters
    ]


@rule("unreadable-disk", "Disk file the host cannot read", BLOCKER, "docs/HYPERV.md §17")
def unreadable_disk(facts: Facts) -> list[Finding]:
    vm = facts.vm
    return [
        Finding(
            "unreadable-disk",
            f"Disk {disk.address} could not be read by the host (Get-VHD failed): the VM is not backed up until it can",
            BLOCKER,
            f"{disk.path}: {disk.vhd_error}",
            (
                "give the host's session access to the share (constrained delegation for CIFS to the file server, "
                f"docs/HYPERV.md §11), then: Get-VHD -Path {ps(disk.path)}"
                if disk.on_smb
                else f"Test-Path -LiteralPath {ps(disk.path)}  # restore the file, or detach the disk: "
                f"Remove-VMHardDiskDrive -VMName {ps(vm.name)} -ControllerType {disk.controller_type.name} "
                f"-ControllerNumber {disk.controller_number} -ControllerLocation {disk.controller_location}"
            ),
        )
        for disk in vm.disks
        if disk.vhd_error
    ]


@rule(
    "iscsi-disk", "iSCSI disk in the guest", WARNING, "docs/ASSESS.md §5 (live backup fails silently); docs/GUEST.md §9"
)
def iscsi_disk(facts: Facts) -> list[Finding]:
    if facts.guest is None:
        return []
    return [
        Finding(
            "iscsi-disk",
            f"The guest uses iSCSI target {session.get('target', '?')}: it is not in the VM's checkpoint, "
            "and live backups can fail silently",
            WARNING,
            f"guest iSCSI session {session.get('target', '?')} via {session.get('portal', '?')}",
            "back the iSCSI LUN up on the storage side, or move its data to a VHDX disk of the VM",
            ON_GUEST,
        )
        for session in facts.guest.iscsi_sessions
    ]


@rule("smb-disk", "Virtual disk on an SMB share", WARNING, "docs/ASSESS.md §5")
def smb_disk(facts: Facts) -> list[Finding]:
    return [
        Finding(
            "smb-disk",
            f"Disk {disk.address} lives on an SMB share: live backup of Linux VMs is documented to fail for disks on remote storage",
            WARNING,
            disk.path,
            f"Move-VMStorage -VMName {ps(facts.vm.name)} -DestinationStoragePath <local or CSV folder>",
        )
        for disk in facts.vm.disks
        if not disk.is_passthrough and disk.on_smb
    ]


@rule("shared-vhdx", "Shared VHDX", BLOCKER, "docs/ASSESS.md §5")
def shared_vhdx(facts: Facts) -> list[Finding]:
    vm = facts.vm
    return [
        Finding(
            "shared-vhdx",
            f"Disk {disk.address} is a shared VHDX: it cannot be in a checkpoint; a VHD Set (.vhds) can",
            BLOCKER,
            f"{disk.path}: SupportPersistentReservations=True, format {disk.format.name if disk.format else '?'}",
            _swap_disk(
                vm.name,
                disk,
                _with_extension(disk.path, "vhds"),
                f"Convert-VHD -Path {ps(disk.path)} -DestinationPath {ps(_with_extension(disk.path, 'vhds'))}",
            )
            + "  # on every VM that shares it",
        )
        for disk in vm.disks
        if disk.is_shared and disk.format != VhdFormat.VHDSet
    ]


@rule("vhd-format", "VHD instead of VHDX", WARNING, "docs/ASSESS.md §5 (no RCT on VHD)")
def vhd_format(facts: Facts) -> list[Finding]:
    vm = facts.vm
    return [
        Finding(
            "vhd-format",
            f"Disk {disk.address} is a VHD: no change tracking, so every backup reads the whole disk",
            WARNING,
            f"{disk.path}: VhdFormat=VHD",
            _swap_disk(
                vm.name,
                disk,
                _with_extension(disk.path, "vhdx"),
                f"Convert-VHD -Path {ps(disk.path)} -DestinationPath {ps(_with_extension(disk.path, 'vhdx'))}"
                + (" -BlockSizeBytes 1MB" if disk.type == VhdType.Dynamic else ""),
            ),
        )
        for disk in vm.disks
        if disk.format == VhdFormat.VHD
    ]


@rule("vhdx-block-size", "Dynamic VHDX block size not 1 MiB", ADVICE, "docs/ASSESS.md §6")
def vhdx_block_size(facts: Facts) -> list[Finding]:
    vm = facts.vm
    findings = []
    for disk in vm.disks:
        if disk.format != VhdFormat.VHDX or disk.type != VhdType.Dynamic:
            continue
        if disk.block_size in (0, RECOMMENDED_BLOCK_SIZE):
            continue
        new_path = _with_extension(disk.path, "1mb.vhdx")
        findings.append(
            Finding(
                "vhdx-block-size",
                f"Disk {disk.address} is a dynamic VHDX with {disk.block_size // MIB} MiB blocks: Linux filesystems "
                "allocate far more of it than they use, and incrementals read more",
                ADVICE,
                f"{disk.path}: BlockSize={disk.block_size}",
                _swap_disk(
                    vm.name,
                    disk,
                    new_path,
                    f"Convert-VHD -Path {ps(disk.path)} -DestinationPath {ps(new_path)} -VHDType Dynamic -BlockSizeBytes 1MB",
                ),
            )
        )
    return findings
