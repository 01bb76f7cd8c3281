"""Turn what the PowerShell scripts print into the model, and their error documents into exceptions.

Each script prints one JSON document whose keys are the documented property names of the
cmdlet or WMI class it read (Get-VM, Get-VHD, Msvm_VirtualSystemReferencePoint, ...); the
sources of every shape are listed in tests/hyperv/fixtures/README.md. Windows PowerShell 5.1
quirks are tolerated here: a one-element list may arrive as a scalar, an array may arrive
wrapped as {"value": [...], "Count": n}, and dates may be "/Date(ms)/".
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from hvbackup.hyperv.enums import (
    CheckpointType,
    ConsistencyLevel,
    ControllerType,
    HeartbeatStatus,
    IntegrationServiceStatus,
    OperationalStatus,
    ReferencePointType,
    SnapshotType,
    VhdFormat,
    VhdType,
    VMState,
    parse_enum,
)
from hvbackup.hyperv.errors import (
    ChangeTrackingUnavailable,
    HyperVError,
    InvalidVmState,
    ObjectNotFound,
    ScriptOutputError,
    VmNotFound,
    WmiJobError,
)
from hvbackup.hyperv.model import (
    CHECKPOINT_PREFIX,
    VM,
    ChangeTrackingId,
    Checkpoint,
    Firmware,
    Host,
    IntegrationService,
    Memory,
    NetworkAdapter,
    Orphan,
    ReferencePoint,
    VirtualDisk,
)

_ERROR_KINDS: dict[str, type[HyperVError]] = {
    "VmNotFound": VmNotFound,
    "ObjectNotFound": ObjectNotFound,
    "InvalidVmState": InvalidVmState,
    "ChangeTrackingUnavailable": ChangeTrackingUnavailable,
}


def parse_document(text: str, operation: str) -> dict[str, Any]:
    """The one JSON object a script printed; its {"error": ...} document raised as a typed exception."""
    stripped = text.strip().lstrip("\ufeff")
    if not stripped:
        raise ScriptOutputError(f"{operation}: the script printed nothing")
    try:
        document = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise ScriptOutputError(f"{operation}: output is not one JSON document ({exc.msg} at {exc.pos})") from None
    if not isinstance(document, dict):
        raise ScriptOutputError(f"{operation}: expected a JSON object, got {type(document).__name__}")
    if "error" in document:
        raise error_from_json(document["error"], operation)
    return document


def error_from_json(error: Any, operation: str) -> HyperVError:
    if not isinstance(error, dict):
        return HyperVError(f"{operation}: {error}")
    kind = str(error.get("kind") or "")
    message = str(error.get("message") or "failed")
    op = str(error.get("operation") or operation)
    if kind == "WmiJobError":
        code = error.get("code")
        description = str(error.get("description") or message)
        return WmiJobError(
            op, int(code) if code is not None else None, description, _int_or_none(error.get("job_state"))
        )
    cls = _ERROR_KINDS.get(kind, HyperVError)
    return cls(f"{op}: {message}")


def as_list(value: Any) -> list[Any]:
    """A JSON array however PowerShell 5.1 delivered it (null, scalar, list, or {"value","Count"})."""
    if value is None:
        return []
    if isinstance(value, dict) and "value" in value and "Count" in value:
        return as_list(value["value"])
    if isinstance(value, list):
        return value
    return [value]


_MS_DATE = re.compile(r"^/Date\((-?\d+)(?:[+-]\d{4})?\)/$")


def parse_time(value: Any) -> str:
    """An ISO 8601 string from ISO text or Windows PowerShell's "/Date(ms)/"; "" when absent."""
    if value in (None, ""):
        return ""
    text = str(value)
    match = _MS_DATE.match(text)
    if match:
        return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=UTC).isoformat()
    return text


def host_from_json(d: dict[str, Any]) -> Host:
    versions = as_list(d.get("SupportedVersions"))
    default = next((str(v.get("Version")) for v in versions if v.get("IsDefault")), "")
    return Host(
        name=str(d["Name"]),
        os_caption=str(d.get("OsCaption") or ""),
        os_version=str(d.get("OsVersion") or ""),
        os_build=str(d.get("OsBuild") or ""),
        vm_path=str(d.get("VirtualMachinePath") or ""),
        vhd_path=str(d.get("VirtualHardDiskPath") or ""),
        logical_processors=int(d.get("LogicalProcessorCount") or 0),
        memory_bytes=int(d.get("MemoryCapacity") or 0),
        supported_versions=tuple(str(v.get("Version")) for v in versions),
        default_version=default,
        fqdn=str(d.get("FullyQualifiedDomainName") or ""),
    )


def vm_from_json(d: dict[str, Any]) -> VM:
    vm_id = str(d["VMId"]).lower()
    firmware = d.get("Firmware")
    heartbeat = d.get("Heartbeat")
    return VM(
        id=vm_id,
        name=str(d["Name"]),
        state=parse_enum(VMState, d["State"], default=VMState.Other),
        generation=int(d.get("Generation") or 1),
        version=str(d.get("Version") or ""),
        is_clustered=bool(d.get("IsClustered")),
        checkpoint_type=parse_enum(CheckpointType, d.get("CheckpointType"), default=CheckpointType.Production),
        automatic_checkpoints=bool(d.get("AutomaticCheckpointsEnabled")),
        heartbeat=parse_enum(HeartbeatStatus, heartbeat, default=HeartbeatStatus.Unknown),
        operational_status=tuple(
            parse_enum(OperationalStatus, s, default=OperationalStatus.Unknown)
            for s in as_list(d.get("OperationalStatus"))
        ),
        processor_count=int(d.get("ProcessorCount") or 1),
        memory=Memory(
            startup_bytes=int(d.get("MemoryStartup") or 0),
            dynamic=bool(d.get("DynamicMemoryEnabled")),
            minimum_bytes=int(d.get("MemoryMinimum") or 0),
            maximum_bytes=int(d.get("MemoryMaximum") or 0),
        ),
        firmware=firmware_from_json(firmware) if firmware else None,
        integration_services=tuple(service_from_json(s) for s in as_list(d.get("IntegrationServices"))),
        network_adapters=tuple(adapter_from_json(a) for a in as_list(d.get("NetworkAdapters"))),
        disks=tuple(disk_from_json(h) for h in as_list(d.get("HardDrives"))),
        checkpoints=tuple(checkpoint_from_json(c, vm_id) for c in as_list(d.get("Checkpoints"))),
        path=str(d.get("Path") or ""),
        configuration_location=str(d.get("ConfigurationLocation") or ""),
        snapshot_location=str(d.get("SnapshotFileLocation") or ""),
        guest={str(k): str(v) for k, v in (d.get("Guest") or {}).items()},
    )


def firmware_from_json(d: dict[str, Any]) -> Firmware:
    # Get-VMFirmware .SecureBoot is an OnOffState: On 0, Off 1.
    secure_boot = d.get("SecureBoot")
    name = secure_boot.get("name") if isinstance(secure_boot, dict) else secure_boot
    value = secure_boot.get("value") if isinstance(secure_boot, dict) else None
    enabled = str(name).lower() == "on" if name is not None else value == 0
    return Firmware(
        secure_boot=enabled,
        secure_boot_template=d.get("SecureBootTemplate") or None,
        secure_boot_template_id=_lower_or_none(d.get("SecureBootTemplateId")),
    )


def service_from_json(d: dict[str, Any]) -> IntegrationService:
    return IntegrationService(
        name=str(d["Name"]),
        enabled=bool(d.get("Enabled")),
        status=parse_enum(
            IntegrationServiceStatus,
            d.get("PrimaryOperationalStatus") or d.get("PrimaryStatusDescription"),
            default=IntegrationServiceStatus.Unknown,
        ),
        status_text=str(d.get("PrimaryStatusDescription") or ""),
        secondary_status_text=str(d.get("SecondaryStatusDescription") or ""),
    )


def adapter_from_json(d: dict[str, Any]) -> NetworkAdapter:
    vlan = d.get("VlanId")
    return NetworkAdapter(
        name=str(d.get("Name") or ""),
        mac_address=normalise_mac(str(d.get("MacAddress") or "")),
        dynamic_mac=bool(d.get("DynamicMacAddressEnabled")),
        is_legacy=bool(d.get("IsLegacy")),
        switch_name=d.get("SwitchName") or None,
        vlan_id=int(vlan) if vlan not in (None, 0, "") else None,
    )


def normalise_mac(mac: str) -> str:
    """'00155D010203' (as Get-VMNetworkAdapter prints it) -> '00:15:5d:01:02:03'."""
    digits = re.sub(r"[^0-9A-Fa-f]", "", mac).lower()
    if len(digits) != 12:
        return mac
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def disk_from_json(d: dict[str, Any]) -> VirtualDisk:
    vhd = d.get("Vhd") or {}
    disk_number = d.get("DiskNumber")
    return VirtualDisk(
        controller_type=parse_enum(ControllerType, d["ControllerType"]),
        controller_number=int(d.get("ControllerNumber") or 0),
        controller_location=int(d.get("ControllerLocation") or 0),
        path=str(d.get("Path") or ""),
        passthrough_disk_number=int(disk_number) if disk_number is not None else None,
        format=parse_enum(VhdFormat, vhd["VhdFormat"], default=VhdFormat.Unknown)
        if vhd.get("VhdFormat") is not None
        else None,
        type=parse_enum(VhdType, vhd["VhdType"], default=VhdType.Unknown) if vhd.get("VhdType") is not None else None,
        size=int(vhd.get("Size") or 0),
        file_size=int(vhd.get("FileSize") or 0),
        block_size=int(vhd.get("BlockSize") or 0),
        logical_sector_size=int(vhd.get("LogicalSectorSize") or 0),
        physical_sector_size=int(vhd.get("PhysicalSectorSize") or 0),
        parent_path=vhd.get("ParentPath") or None,
        disk_identifier=_lower_or_none(vhd.get("DiskIdentifier")),
        is_shared=bool(d.get("SupportPersistentReservations")),
        instance_id=d.get("Id") or None,
    )


def checkpoint_from_json(d: dict[str, Any], vm_id: str | None = None) -> Checkpoint:
    return Checkpoint(
        id=str(d["Id"]).lower(),
        name=str(d.get("Name") or ""),
        vm_id=str(d.get("VMId") or vm_id or "").lower(),
        type=parse_enum(SnapshotType, d["SnapshotType"]),
        created=parse_time(d.get("CreationTime")),
        parent_id=_lower_or_none(d.get("ParentSnapshotId")),
    )


def reference_point_from_json(d: dict[str, Any]) -> ReferencePoint:
    disk_ids = [str(x) for x in as_list(d.get("VirtualDiskIdentifiers"))]
    rct_ids = [str(x) for x in as_list(d.get("ResilientChangeTrackingIdentifiers"))]
    if rct_ids and len(rct_ids) != len(disk_ids):
        raise ScriptOutputError(
            f"reference point {d.get('InstanceID')}: {len(disk_ids)} disk ids but {len(rct_ids)} RCT ids"
        )
    return ReferencePoint(
        id=str(d["InstanceID"]),
        vm_id=str(d.get("VirtualSystemIdentifier") or "").lower(),
        type=parse_enum(ReferencePointType, d["ReferencePointType"]),
        consistency_level=parse_enum(ConsistencyLevel, d.get("ConsistencyLevel"), default=ConsistencyLevel.Unknown),
        disks=tuple(ChangeTrackingId(a, b) for a, b in zip(disk_ids, rct_ids, strict=False)),
        created=parse_time(d.get("CreationTime")),
    )


def orphan_from_json(d: dict[str, Any]) -> Orphan:
    name = d.get("Name") or None
    return Orphan(
        kind=str(d["Kind"]),
        vm_id=str(d.get("VMId") or "").lower(),
        vm_name=str(d.get("VMName") or ""),
        id=_lower_or_none(d.get("Id")),
        name=name,
        path=d.get("Path") or None,
        created=parse_time(d.get("CreationTime")),
        is_ours=bool(name and name.startswith(CHECKPOINT_PREFIX)),
        detail=str(d.get("Detail") or ""),
    )


def changes_from_json(d: dict[str, Any]) -> tuple[int, list[tuple[int, int]]]:
    """(processed length, changed (offset, length) ranges) of one GetVirtualDiskChanges answer."""
    offsets = [int(x) for x in as_list(d.get("ChangedByteOffsets"))]
    lengths = [int(x) for x in as_list(d.get("ChangedByteLengths"))]
    if len(offsets) != len(lengths):
        raise ScriptOutputError(f"GetVirtualDiskChanges: {len(offsets)} offsets but {len(lengths)} lengths")
    processed = int(d["ProcessedByteLength"])
    if processed < 0 or any(start < 0 or length < 0 for start, length in zip(offsets, lengths, strict=False)):
        raise ScriptOutputError("GetVirtualDiskChanges: negative offset or length")
    return processed, list(zip(offsets, lengths, strict=False))


def _lower_or_none(value: Any) -> str | None:
    return str(value).lower() if value not in (None, "") else None


def _int_or_none(value: Any) -> int | None:
    return int(value) if value is not None else None
