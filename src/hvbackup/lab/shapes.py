"""The model as the PowerShell scripts print it: the inverse of hyperv/wire.py.

Each function returns the JSON object one hashtable of a .ps1 builds (the function of
_prelude.ps1 or the script named on it), with exactly its keys, so the lab behind
`LabTransport` answers as a real host does (tests/hyperv/test_host_contract.py checks the keys
against the scripts' parse tree). Conventions of the scripts: enums as {"name","value"}
(ConvertTo-HvEnum), absent strings as "" ("$($x.Prop)"), GUIDs of cmdlet objects in lower case
(a .NET Guid printed as a string), WMI instance ids and identifiers as WMI keeps them (upper case).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from hvbackup.hyperv.enums import HeartbeatStatus, IntegrationServiceStatus, VMState
from hvbackup.hyperv.model import (
    VM,
    Checkpoint,
    Firmware,
    Host,
    IntegrationService,
    NetworkAdapter,
    Orphan,
    ReferencePoint,
    VirtualDisk,
)


def enum_document(member: IntEnum | None) -> dict[str, Any] | None:
    """ConvertTo-HvEnum: {"name", "value"}, or None for an absent value."""
    if member is None:
        return None
    return {"name": member.name, "value": int(member)}


def cmdlet_guid(value: str) -> str:
    """A GUID as "$($x.Id)" prints a .NET Guid: lower case, no braces."""
    return value.strip("{}").lower()


def host_document(host: Host) -> dict[str, Any]:
    """get_host.ps1: Get-VMHost, Win32_OperatingSystem and Get-VMHostSupportedVersion."""
    return {
        "Name": host.name,
        "FullyQualifiedDomainName": host.fqdn,
        "OsCaption": host.os_caption,
        "OsVersion": host.os_version,
        "OsBuild": host.os_build,
        "VirtualMachinePath": host.vm_path,
        "VirtualHardDiskPath": host.vhd_path,
        "LogicalProcessorCount": host.logical_processors,
        "MemoryCapacity": host.memory_bytes,
        "SupportedVersions": [{"Version": v, "IsDefault": v == host.default_version} for v in host.supported_versions],
    }


def vhd_document(disk: VirtualDisk) -> dict[str, Any]:
    """ConvertTo-HvVhd: what Get-VHD says of the disk's file."""
    return {
        "VhdFormat": enum_document(disk.format),
        "VhdType": enum_document(disk.type),
        "Size": disk.size,
        "FileSize": disk.file_size,
        "BlockSize": disk.block_size,
        "LogicalSectorSize": disk.logical_sector_size,
        "PhysicalSectorSize": disk.physical_sector_size,
        "ParentPath": disk.parent_path or "",
        "DiskIdentifier": (disk.disk_identifier or "").upper(),
    }


def hard_drive_document(disk: VirtualDisk, vhd_error: str | None = None) -> dict[str, Any]:
    """ConvertTo-HvHardDrive: a drive of Get-VMHardDiskDrive (or of a snapshot's HardDrives).

    A pass-through disk has a DiskNumber and no Vhd; a file whose Get-VHD failed has `Vhd: null`
    and the failure's message in VhdError (the shape agreed for issue 13)."""
    vhd = None if disk.is_passthrough or vhd_error else vhd_document(disk)
    return {
        "ControllerType": enum_document(disk.controller_type),
        "ControllerNumber": disk.controller_number,
        "ControllerLocation": disk.controller_location,
        "Path": disk.path,
        "DiskNumber": disk.passthrough_disk_number,
        "SupportPersistentReservations": disk.is_shared,
        "Id": disk.instance_id or "",
        "Vhd": vhd,
        "VhdError": vhd_error,
    }


def network_adapter_document(adapter: NetworkAdapter) -> dict[str, Any]:
    """ConvertTo-HvNetworkAdapter; the MAC as Get-VMNetworkAdapter prints it (12 hex digits)."""
    return {
        "Name": adapter.name,
        "MacAddress": adapter.mac_address.replace(":", "").replace("-", "").upper(),
        "DynamicMacAddressEnabled": adapter.dynamic_mac,
        "IsLegacy": adapter.is_legacy,
        "SwitchName": adapter.switch_name or "",
        "VlanId": adapter.vlan_id,
    }


def integration_service_document(service: IntegrationService) -> dict[str, Any]:
    """ConvertTo-HvIntegrationService; a disabled service has no operational status."""
    known = service.enabled and service.status != IntegrationServiceStatus.Unknown
    return {
        "Name": service.name,
        "Enabled": service.enabled,
        "PrimaryOperationalStatus": enum_document(service.status) if known else None,
        "PrimaryStatusDescription": service.status_text if service.enabled else "",
        "SecondaryStatusDescription": service.secondary_status_text,
    }


def firmware_document(firmware: Firmware) -> dict[str, Any]:
    """Get-VMFirmware as ConvertTo-HvVm prints it; SecureBoot is an OnOffState (On 0, Off 1)."""
    return {
        "SecureBoot": {"name": "On", "value": 0} if firmware.secure_boot else {"name": "Off", "value": 1},
        "SecureBootTemplate": firmware.secure_boot_template or "",
        "SecureBootTemplateId": (firmware.secure_boot_template_id or "").lower(),
    }


def checkpoint_document(checkpoint: Checkpoint) -> dict[str, Any]:
    """ConvertTo-HvCheckpoint: a Get-VMSnapshot object (with its ParentSnapshotId)."""
    return {
        "Id": cmdlet_guid(checkpoint.id),
        "Name": checkpoint.name,
        "VMId": cmdlet_guid(checkpoint.vm_id),
        "SnapshotType": enum_document(checkpoint.type),
        "CreationTime": checkpoint.created,
        "ParentSnapshotId": cmdlet_guid(checkpoint.parent_id or ""),
    }


def wmi_checkpoint_document(checkpoint: Checkpoint) -> dict[str, Any]:
    """ConvertTo-HvCheckpointFromWmi: an Msvm_VirtualSystemSettingData snapshot (no parent)."""
    return {
        "Id": checkpoint.id.upper(),
        "Name": checkpoint.name,
        "VMId": checkpoint.vm_id.upper(),
        "SnapshotType": enum_document(checkpoint.type),
        "CreationTime": checkpoint.created,
    }


def reference_point_document(point: ReferencePoint) -> dict[str, Any]:
    """ConvertTo-HvReferencePoint: an Msvm_VirtualSystemReferencePoint (it prints no creation time)."""
    return {
        "InstanceID": point.id,
        "VirtualSystemIdentifier": point.vm_id.upper(),
        "ReferencePointType": enum_document(point.type),
        "ConsistencyLevel": enum_document(point.consistency_level),
        "VirtualDiskIdentifiers": [d.virtual_disk_id for d in point.disks],
        "ResilientChangeTrackingIdentifiers": [d.rct_id for d in point.disks],
    }


def orphan_document(orphan: Orphan) -> dict[str, Any]:
    """One entry of list_orphans.ps1: a checkpoint (Id, Name) or a stray AVHDX file (Path)."""
    common = {"Kind": orphan.kind, "VMId": cmdlet_guid(orphan.vm_id), "VMName": orphan.vm_name}
    if orphan.path is not None:
        return {**common, "Path": orphan.path, "CreationTime": orphan.created, "Detail": orphan.detail}
    return {
        **common,
        "Id": cmdlet_guid(orphan.id or ""),
        "Name": orphan.name or "",
        "CreationTime": orphan.created,
        "Detail": orphan.detail,
    }


def vm_document(
    vm: VM,
    *,
    vhd_errors: dict[str, str] | None = None,
    fibre_channel: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """ConvertTo-HvVm: one Get-VM object with its firmware, services, adapters, drives, checkpoints
    and (while Running) the guest's intrinsic KVP items. `vhd_errors` maps a drive's instance id to
    the message its Get-VHD fails with; `fibre_channel` lists the VM's virtual Fibre Channel
    adapters as {"Name", "SanName"}."""
    errors = vhd_errors or {}
    running = vm.state == VMState.Running
    return {
        "VMId": cmdlet_guid(vm.id),
        "Name": vm.name,
        "State": enum_document(vm.state),
        "Generation": vm.generation,
        "Version": vm.version,
        "IsClustered": vm.is_clustered,
        "CheckpointType": enum_document(vm.checkpoint_type),
        "AutomaticCheckpointsEnabled": vm.automatic_checkpoints,
        "Heartbeat": enum_document(vm.heartbeat) if vm.heartbeat != HeartbeatStatus.Unknown else None,
        "OperationalStatus": [enum_document(s) for s in vm.operational_status],
        "ProcessorCount": vm.processor_count,
        "MemoryStartup": vm.memory.startup_bytes,
        "DynamicMemoryEnabled": vm.memory.dynamic,
        "MemoryMinimum": vm.memory.minimum_bytes,
        "MemoryMaximum": vm.memory.maximum_bytes,
        "Path": vm.path,
        "ConfigurationLocation": vm.configuration_location,
        "SnapshotFileLocation": vm.snapshot_location,
        "Firmware": firmware_document(vm.firmware) if vm.firmware is not None and vm.generation == 2 else None,
        "IntegrationServices": [integration_service_document(s) for s in vm.integration_services],
        "NetworkAdapters": [network_adapter_document(a) for a in vm.network_adapters],
        "FibreChannelAdapters": list(fibre_channel or []),
        "HardDrives": [hard_drive_document(d, errors.get(d.instance_id or "")) for d in vm.disks],
        "Checkpoints": [checkpoint_document(c) for c in vm.checkpoints],
        "Guest": dict(vm.guest) if running else {},
    }


def pending_document(job_id: str, result_kind: str, job_state: int, percent: int) -> dict[str, Any]:
    """ConvertTo-HvPending: a WMI job still running when the script stopped waiting."""
    return {"Pending": {"JobId": job_id, "ResultKind": result_kind, "JobState": job_state, "PercentComplete": percent}}


def done_document() -> dict[str, Any]:
    """What destroy_checkpoint, destroy_reference_point and request_shutdown print when done."""
    return {"Done": True}
