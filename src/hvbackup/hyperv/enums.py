"""Hyper-V's enumerations with Hyper-V's own numbers (sources: docs/HYPERV.md §1, §2).

Serialised as {"name": ..., "value": ...}. Where Windows builds number the same state
differently (VM states >= 32781) the name wins when parsing, see `parse_enum`.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, TypeVar

E = TypeVar("E", bound=IntEnum)


class VMState(IntEnum):
    """Get-VM .State (Microsoft.HyperV.PowerShell.VMState)."""

    Other = 1
    Running = 2
    Off = 3
    Stopping = 4
    Saved = 6
    Paused = 9
    Starting = 10
    Reset = 11
    Saving = 32773
    Pausing = 32776
    Resuming = 32777
    FastSaved = 32779
    FastSaving = 32780
    ForceShutdown = 32781
    ForceReboot = 32782
    Hibernated = 32783
    ComponentServicing = 32784
    RunningCritical = 32785
    OffCritical = 32786
    StoppingCritical = 32787
    SavedCritical = 32788
    PausedCritical = 32789
    StartingCritical = 32790
    ResetCritical = 32791
    SavingCritical = 32792
    PausingCritical = 32793
    ResumingCritical = 32794
    FastSavedCritical = 32795
    FastSavingCritical = 32796


class CheckpointType(IntEnum):
    """Get-VM .CheckpointType; Msvm_VirtualSystemSettingData.UserSnapshotType."""

    Disabled = 2
    Production = 3
    ProductionOnly = 4
    Standard = 5


class SnapshotType(IntEnum):
    """Get-VMSnapshot .SnapshotType."""

    Standard = 0
    Recovery = 1
    Planned = 2
    Missing = 5
    Replica = 6
    AppConsistentReplica = 7
    SyncedReplica = 8


class ControllerType(IntEnum):
    """Get-VMHardDiskDrive .ControllerType."""

    IDE = 0
    SCSI = 1
    PMEM = 2


class VhdFormat(IntEnum):
    """Get-VHD .VhdFormat; Msvm_VirtualHardDiskSettingData.Format."""

    Unknown = 0
    VHD = 2
    VHDX = 3
    VHDSet = 4


class VhdType(IntEnum):
    """Get-VHD .VhdType; Msvm_VirtualHardDiskSettingData.Type."""

    Unknown = 0
    Fixed = 2
    Dynamic = 3
    Differencing = 4


class ConsistencyLevel(IntEnum):
    """Msvm_VirtualSystemSnapshotSettingData / Msvm_VirtualSystemReferencePoint .ConsistencyLevel."""

    Unknown = 0
    ApplicationConsistent = 1
    CrashConsistent = 2


class ReferencePointType(IntEnum):
    """Msvm_VirtualSystemReferencePoint.ReferencePointType (the class property's numbering)."""

    LogBased = 1
    RctBased = 2


class IntegrationServiceStatus(IntEnum):
    """Get-VMIntegrationService .PrimaryOperationalStatus (VMIntegrationComponentOperationalStatus)."""

    Unknown = 0
    Ok = 2
    Degraded = 3
    Error = 6
    NonRecoverableError = 7
    NoContact = 12
    LostCommunication = 13
    ProtocolMismatch = 32775
    ApplicationCritical = 32782
    CommunicationTimedOut = 32783
    CommunicationFailed = 32784
    Disabled = 32896


class HeartbeatStatus(IntEnum):
    """Get-VM .Heartbeat (VMHeartbeatStatus)."""

    Unknown = 0
    Disabled = 1
    NoContact = 2
    Error = 3
    LostCommunication = 4
    OkApplicationsUnknown = 5
    OkApplicationsHealthy = 6
    OkApplicationsCritical = 7
    Paused = 8


class OperationalStatus(IntEnum):
    """Get-VM .PrimaryOperationalStatus / .SecondaryOperationalStatus (VMOperationalStatus), the ones we act on."""

    Unknown = 0
    Ok = 2
    Degraded = 3
    PredictiveFailure = 5
    InService = 11
    Dormant = 15
    SupportingEntityInError = 16
    CreatingSnapshot = 32768
    ApplyingSnapshot = 32769
    DeletingSnapshot = 32770
    WaitingToStart = 32771
    MergingDisks = 32772
    ExportingVirtualMachine = 32773
    MigratingVirtualMachine = 32774
    BackingUpVirtualMachine = 32776
    ModifyingUpVirtualMachine = 32777
    StorageMigrationPhaseOne = 32778
    StorageMigrationPhaseTwo = 32779
    MigratingPlannedVm = 32780


def enum_to_json(member: IntEnum) -> dict[str, Any]:
    return {"name": member.name, "value": int(member)}


def parse_enum(cls: type[E], raw: Any, default: E | None = None) -> E:
    """An enum member from {"name","value"}, a name, or a number; the name is trusted first.

    Unknown values give `default` when one is given (a newer host must not break inventory),
    else ValueError naming the enum.
    """
    name, value = _name_and_value(raw)
    if name is not None:
        compact = name.replace(" ", "").replace("-", "").replace("_", "").lower()
        for member in cls:
            if member.name.lower() == compact:
                return member
    if value is not None:
        try:
            return cls(value)
        except ValueError:
            pass
    if default is not None:
        return default
    raise ValueError(f"unknown {cls.__name__}: {raw!r}")


def _name_and_value(raw: Any) -> tuple[str | None, int | None]:
    if isinstance(raw, dict):
        name = raw.get("name")
        value = raw.get("value")
        return (str(name) if name not in (None, "") else None, int(value) if value is not None else None)
    if isinstance(raw, bool) or raw is None:
        return None, None
    if isinstance(raw, int):
        return None, raw
    text = str(raw).strip()
    if text.lstrip("-").isdigit():
        return None, int(text)
    return text or None, None
