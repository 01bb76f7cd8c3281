"""The Hyper-V model: what a backup needs to know about a host, its VMs, checkpoints and reference points.

Every class is a frozen dataclass with `to_json()` / `from_json()` over plain dicts; enums are
written as {"name", "value"} with Hyper-V's numbers. A PowerShell host and the lab host both
produce these objects, and `VmConfig` is stored in backup manifests.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, TypeVar

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
    enum_to_json,
    parse_enum,
)

CHECKPOINT_PREFIX = "hvbackup-"
"""Checkpoints this tool creates are named with this prefix, so orphans can be told apart."""

VSS_SERVICE_NAMES = ("VSS", "Backup (volume snapshot)")  # 2016+ name, 2012 R2 name (docs/HYPERV.md §4)
HEARTBEAT_SERVICE_NAME = "Heartbeat"
UNREACHABLE_STATUSES = (IntegrationServiceStatus.NoContact, IntegrationServiceStatus.LostCommunication)

VM_NAME_MAX = 100  # Hyper-V Manager and New-VM refuse longer names
VM_NAME_FORBIDDEN = '\\/:*?"<>|'  # the characters a Windows folder name cannot hold (the VM folder is named after it)

T = TypeVar("T", bound="JsonModel")


def vm_name_problem(name: str) -> str | None:
    """Why `name` cannot name a new VM, or None: a VM name is never a path."""
    if not name.strip():
        return "a VM name cannot be empty"
    if len(name) > VM_NAME_MAX:
        return f"a VM name has at most {VM_NAME_MAX} characters, {name[:20]!r}... has {len(name)}"
    bad = sorted({c for c in name if c in VM_NAME_FORBIDDEN or ord(c) < 32})
    if bad:
        shown = " ".join(repr(c) for c in bad)
        return f"VM name {name!r} holds {shown}: a VM name cannot hold any of {VM_NAME_FORBIDDEN} or control characters"
    if name in (".", "..") or name != name.strip() or name.endswith("."):
        return f"VM name {name!r} cannot be '.' or '..', or start or end with a space, or end with a dot"
    return None


class JsonModel:
    """to_json / from_json for the dataclasses below, driven by their type hints."""

    def to_json(self) -> dict[str, Any]:
        return {f.name: _encode(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_json(cls: type[T], data: dict[str, Any]) -> T:
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.name in data:
                kwargs[f.name] = _decode(hints[f.name], data[f.name])
        return cls(**kwargs)


def _encode(value: Any) -> Any:
    if isinstance(value, IntEnum):
        return enum_to_json(value)
    if isinstance(value, JsonModel):
        return value.to_json()
    if isinstance(value, (tuple, list)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def _decode(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _decode(inner[0], value)
    if origin is tuple:
        return tuple(_decode(typing.get_args(tp)[0], v) for v in (value or ()))
    if origin is dict:
        return dict(value or {})
    if isinstance(tp, type) and issubclass(tp, IntEnum):
        return parse_enum(tp, value)
    if isinstance(tp, type) and issubclass(tp, JsonModel):
        return tp.from_json(value)
    return value


@dataclass(frozen=True)
class Host(JsonModel):
    name: str
    os_caption: str = ""
    os_version: str = ""
    os_build: str = ""
    vm_path: str = ""
    vhd_path: str = ""
    logical_processors: int = 0
    memory_bytes: int = 0
    supported_versions: tuple[str, ...] = ()
    default_version: str = ""
    fqdn: str = ""  # Get-VMHost .FullyQualifiedDomainName: what tells hosts of one name apart


@dataclass(frozen=True)
class IntegrationService(JsonModel):
    name: str
    enabled: bool
    status: IntegrationServiceStatus
    status_text: str = ""
    secondary_status_text: str = ""

    @property
    def is_vss(self) -> bool:
        return self.name in VSS_SERVICE_NAMES

    @property
    def is_heartbeat(self) -> bool:
        return self.name == HEARTBEAT_SERVICE_NAME

    @property
    def guest_unreachable(self) -> bool:
        """The guest side never answered ("No Contact") or stopped answering ("Lost Communication")."""
        return self.status in UNREACHABLE_STATUSES


@dataclass(frozen=True)
class NetworkAdapter(JsonModel):
    name: str
    mac_address: str
    dynamic_mac: bool
    is_legacy: bool
    switch_name: str | None = None
    vlan_id: int | None = None


@dataclass(frozen=True)
class VirtualDisk(JsonModel):
    """A hard-disk drive of a VM or checkpoint and, when it is a file, the virtual disk behind it."""

    controller_type: ControllerType
    controller_number: int
    controller_location: int
    path: str
    passthrough_disk_number: int | None = None
    format: VhdFormat | None = None
    type: VhdType | None = None
    size: int = 0
    file_size: int = 0
    block_size: int = 0
    logical_sector_size: int = 0
    physical_sector_size: int = 0
    parent_path: str | None = None
    disk_identifier: str | None = None
    is_shared: bool = False
    instance_id: str | None = None

    @property
    def is_passthrough(self) -> bool:
        return self.passthrough_disk_number is not None

    @property
    def on_smb(self) -> bool:
        return self.path.startswith("\\\\")

    @property
    def address(self) -> str:
        return f"{self.controller_type.name}:{self.controller_number}:{self.controller_location}"


@dataclass(frozen=True)
class Firmware(JsonModel):
    """Gen 2 firmware (Get-VMFirmware); Gen 1 VMs have none."""

    secure_boot: bool
    secure_boot_template: str | None = None
    secure_boot_template_id: str | None = None


@dataclass(frozen=True)
class Memory(JsonModel):
    startup_bytes: int
    dynamic: bool = False
    minimum_bytes: int = 0
    maximum_bytes: int = 0


@dataclass(frozen=True)
class Checkpoint(JsonModel):
    id: str
    name: str
    vm_id: str
    type: SnapshotType
    created: str = ""
    parent_id: str | None = None

    @property
    def is_ours(self) -> bool:
        return self.name.startswith(CHECKPOINT_PREFIX)

    @property
    def is_recovery(self) -> bool:
        return self.type == SnapshotType.Recovery


@dataclass(frozen=True)
class ChangeTrackingId(JsonModel):
    """One disk of a reference point: the disk's WMI instance id and its RCT id at that point."""

    virtual_disk_id: str
    rct_id: str


@dataclass(frozen=True)
class ReferencePoint(JsonModel):
    id: str
    vm_id: str
    type: ReferencePointType
    consistency_level: ConsistencyLevel
    disks: tuple[ChangeTrackingId, ...] = ()
    created: str = ""

    def rct_id_for(self, disk: VirtualDisk) -> str | None:
        """The RCT id recorded for this disk, matched on the device part of the instance id.

        A VM's and a snapshot's drive instance ids share the part after the first backslash
        ("Microsoft:<owner>\\<device>...") [INFERRED, to verify on a host: docs/HYPERV.md §9].
        """
        if disk.instance_id is None:
            return None
        for entry in self.disks:
            if entry.virtual_disk_id == disk.instance_id:
                return entry.rct_id
        wanted = _device_part(disk.instance_id)
        matches = [e.rct_id for e in self.disks if _device_part(e.virtual_disk_id) == wanted]
        return matches[0] if len(matches) == 1 else None


def _device_part(instance_id: str) -> str:
    """'Microsoft:<owner>\\<controller>\\<n>\\<m>\\D' -> '<controller>\\<n>\\<m>' (drive 'D' and disk 'L' alike)."""
    parts = instance_id.lower().split("\\")
    if len(parts) > 2 and len(parts[-1]) == 1:
        parts = parts[:-1]
    return "\\".join(parts[1:]) if len(parts) > 1 else parts[0]


@dataclass(frozen=True)
class Orphan(JsonModel):
    """Something an earlier backup (ours or another tool's) may have left on the host."""

    kind: str  # "recovery-checkpoint" | "checkpoint" | "avhdx"
    vm_id: str
    vm_name: str
    id: str | None = None
    name: str | None = None
    path: str | None = None
    created: str = ""
    is_ours: bool = False
    detail: str = ""


ORPHAN_RECOVERY_CHECKPOINT = "recovery-checkpoint"
ORPHAN_CHECKPOINT = "checkpoint"
ORPHAN_AVHDX = "avhdx"


@dataclass(frozen=True)
class VM(JsonModel):
    id: str
    name: str
    state: VMState
    generation: int
    version: str
    is_clustered: bool = False
    checkpoint_type: CheckpointType = CheckpointType.Production
    automatic_checkpoints: bool = False
    heartbeat: HeartbeatStatus = HeartbeatStatus.Unknown
    operational_status: tuple[OperationalStatus, ...] = ()
    processor_count: int = 1
    memory: Memory = field(default_factory=lambda: Memory(startup_bytes=0))
    firmware: Firmware | None = None
    integration_services: tuple[IntegrationService, ...] = ()
    network_adapters: tuple[NetworkAdapter, ...] = ()
    disks: tuple[VirtualDisk, ...] = ()
    checkpoints: tuple[Checkpoint, ...] = ()
    path: str = ""
    configuration_location: str = ""
    snapshot_location: str = ""
    guest: dict[str, str] = field(default_factory=dict)  # KVP intrinsic items (OSName, OSVersion, ...)

    def integration_service(self, name: str) -> IntegrationService | None:
        return next((s for s in self.integration_services if s.name == name), None)

    @property
    def vss_service(self) -> IntegrationService | None:
        return next((s for s in self.integration_services if s.is_vss), None)

    @property
    def is_busy(self) -> bool:
        """Merging, backing up, snapshotting or migrating: no new backup checkpoint now."""
        return any(s >= OperationalStatus.CreatingSnapshot for s in self.operational_status)

    def config(self) -> VmConfig:
        return VmConfig(
            name=self.name,
            generation=self.generation,
            version=self.version,
            processor_count=self.processor_count,
            memory=self.memory,
            firmware=self.firmware,
            checkpoint_type=self.checkpoint_type,
            controllers=_controllers(self.disks),
            disks=tuple(d for d in self.disks if not d.is_passthrough),
            network_adapters=self.network_adapters,
            enabled_services=tuple(s.name for s in self.integration_services if s.enabled),
        )


@dataclass(frozen=True)
class Controller(JsonModel):
    type: ControllerType
    number: int


def _controllers(disks: tuple[VirtualDisk, ...]) -> tuple[Controller, ...]:
    seen = sorted({(int(d.controller_type), d.controller_number) for d in disks})
    return tuple(Controller(ControllerType(t), n) for t, n in seen)


@dataclass(frozen=True)
class VmConfig(JsonModel):
    """What a restore needs to build the VM again; stored in the backup manifest."""

    name: str
    generation: int
    version: str
    processor_count: int
    memory: Memory
    firmware: Firmware | None = None
    checkpoint_type: CheckpointType = CheckpointType.Production
    controllers: tuple[Controller, ...] = ()
    disks: tuple[VirtualDisk, ...] = ()
    network_adapters: tuple[NetworkAdapter, ...] = ()
    enabled_services: tuple[str, ...] = ()
