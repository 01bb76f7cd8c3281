"""A lab VM as `inventory()` returns it: the stored facts plus what the files and state say now."""

from __future__ import annotations

from dataclasses import replace

from hvbackup.hyperv.enums import HeartbeatStatus, IntegrationServiceStatus, OperationalStatus, SnapshotType, VMState
from hvbackup.hyperv.model import VM, Checkpoint
from hvbackup.lab.disks import describe
from hvbackup.lab.folder import VmFolder
from hvbackup.lab.record import CheckpointRecord, VmRecord


def checkpoint_model(record: VmRecord, checkpoint: CheckpointRecord) -> Checkpoint:
    return Checkpoint(
        checkpoint.id, checkpoint.name, record.id, SnapshotType(checkpoint.type), checkpoint.created, checkpoint.parent
    )


def heartbeat(vm: VM) -> HeartbeatStatus:
    """Get-VM .Heartbeat: only a running guest with the Heartbeat service answers."""
    if vm.state != VMState.Running:
        return HeartbeatStatus.Unknown
    service = vm.integration_service("Heartbeat")
    if service is None or not service.enabled:
        return HeartbeatStatus.Disabled
    if service.status == IntegrationServiceStatus.Ok:
        return HeartbeatStatus.OkApplicationsHealthy
    return HeartbeatStatus.NoContact


def vm_model(folder: VmFolder, record: VmRecord) -> VM:
    stored = record.model
    disks = tuple(d if d.is_passthrough else describe(d, record.top(d.instance_id or "")) for d in stored.disks)
    vm = replace(
        stored,
        disks=disks,
        checkpoints=tuple(checkpoint_model(record, c) for c in record.checkpoints),
        path=str(folder.path),
        configuration_location=str(folder.path),
        snapshot_location=str(folder.path),
    )
    return replace(vm, heartbeat=heartbeat(vm), operational_status=(OperationalStatus.Ok,))
