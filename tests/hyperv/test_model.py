"""The model: enums with Hyper-V's numbers, JSON round trips, and the helpers a backup relies on."""

from __future__ import annotations

import json

import pytest

from hvbackup.hyperv.enums import (
    CheckpointType,
    ConsistencyLevel,
    ControllerType,
    IntegrationServiceStatus,
    SnapshotType,
    VhdFormat,
    VMState,
    parse_enum,
)
from hvbackup.hyperv.model import (
    VM,
    ChangeTrackingId,
    Checkpoint,
    IntegrationService,
    ReferencePoint,
    VirtualDisk,
    VmConfig,
)
from hvbackup.hyperv.wire import vm_from_json

from .hyperv_fixtures import fixture


def test_enum_numbers_are_hyperv_numbers():
    assert int(VMState.Running) == 2 and int(VMState.Off) == 3 and int(VMState.Saved) == 6
    assert int(CheckpointType.ProductionOnly) == 4
    assert int(SnapshotType.Recovery) == 1
    assert int(ControllerType.SCSI) == 1
    assert int(VhdFormat.VHDX) == 3
    assert int(ConsistencyLevel.CrashConsistent) == 2
    assert int(IntegrationServiceStatus.NoContact) == 12 and int(IntegrationServiceStatus.LostCommunication) == 13


def test_parse_enum_trusts_the_name_over_the_number():
    # Windows builds number the critical states differently; the name is stable.
    assert parse_enum(VMState, {"name": "RunningCritical", "value": 32783}) is VMState.RunningCritical
    assert parse_enum(VMState, {"name": "", "value": 6}) is VMState.Saved
    assert parse_enum(IntegrationServiceStatus, "No Contact") is IntegrationServiceStatus.NoContact
    assert parse_enum(VMState, "3") is VMState.Off


def test_parse_enum_unknown_value_uses_default_or_names_the_enum():
    assert parse_enum(VMState, {"name": "Hovering", "value": 40000}, default=VMState.Other) is VMState.Other
    with pytest.raises(ValueError, match="VhdFormat"):
        parse_enum(VhdFormat, {"name": "Floppy", "value": 99})


def test_vm_round_trips_through_json_with_enums_as_name_and_value():
    vm = vm_from_json(fixture("inventory.json")["VMs"][0])
    data = json.loads(json.dumps(vm.to_json()))
    assert data["state"] == {"name": "Running", "value": 2}
    assert data["disks"][0]["controller_type"] == {"name": "SCSI", "value": 1}
    assert VM.from_json(data) == vm


def test_vm_config_keeps_what_a_restore_needs_and_round_trips():
    vms = [vm_from_json(v) for v in fixture("inventory.json")["VMs"]]
    web, legacy = vms[0], vms[1]
    config = web.config()
    assert (config.generation, config.version, config.processor_count) == (2, "10.0", 2)
    assert config.firmware is not None and config.firmware.secure_boot_template == "MicrosoftUEFICertificateAuthority"
    assert config.network_adapters[0].mac_address == "00:15:5d:0a:1b:2c"
    assert [(c.type, c.number) for c in config.controllers] == [(ControllerType.SCSI, 0)]
    assert VmConfig.from_json(json.loads(json.dumps(config.to_json()))) == config
    # A pass-through disk cannot be backed up, so a restore does not recreate it.
    legacy_config = legacy.config()
    assert [d.path for d in legacy_config.disks] == ["C:\\ClusterStorage\\Volume1\\legacy01\\legacy01.vhd"]
    assert [(c.type, c.number) for c in legacy_config.controllers] == [
        (ControllerType.IDE, 0),
        (ControllerType.SCSI, 0),
    ]


def test_checkpoint_is_ours_by_prefix():
    ours = Checkpoint("a", "hvbackup-20260101T000000Z", "vm", SnapshotType.Recovery)
    theirs = Checkpoint("b", "web01 - Backup - (1/1/2026)", "vm", SnapshotType.Recovery)
    assert ours.is_ours and not theirs.is_ours
    assert ours.is_recovery


def test_integration_service_unreachable_statuses():
    no_contact = IntegrationService("VSS", True, IntegrationServiceStatus.NoContact, "No Contact")
    lost = IntegrationService("Heartbeat", True, IntegrationServiceStatus.LostCommunication, "Lost Communication")
    ok = IntegrationService("VSS", True, IntegrationServiceStatus.Ok, "OK")
    degraded = IntegrationService("VSS", True, IntegrationServiceStatus.ProtocolMismatch, "Protocol Mismatch")
    assert no_contact.guest_unreachable and lost.guest_unreachable
    assert not ok.guest_unreachable and not degraded.guest_unreachable
    assert no_contact.is_vss and IntegrationService("Backup (volume snapshot)", True, ok.status).is_vss


def _disk(instance_id: str | None) -> VirtualDisk:
    return VirtualDisk(ControllerType.SCSI, 0, 0, "D:\\a.vhdx", instance_id=instance_id)


def test_reference_point_maps_rct_ids_to_disks_by_device_not_by_position():
    point = ReferencePoint(
        "rp",
        "vm",
        2,  # type: ignore[arg-type]
        ConsistencyLevel.ApplicationConsistent,
        (
            ChangeTrackingId("Microsoft:VM1\\CTRL\\0\\1\\L", "rct-data"),
            ChangeTrackingId("Microsoft:VM1\\CTRL\\0\\0\\L", "rct-boot"),
        ),
    )
    # A checkpoint's drive carries the snapshot's id as owner and ends in \D, not \L.
    assert point.rct_id_for(_disk("Microsoft:SNAP9\\CTRL\\0\\0\\D")) == "rct-boot"
    assert point.rct_id_for(_disk("Microsoft:SNAP9\\ctrl\\0\\1\\D")) == "rct-data"
    assert point.rct_id_for(_disk("Microsoft:VM1\\CTRL\\0\\0\\L")) == "rct-boot"
    assert point.rct_id_for(_disk("Microsoft:SNAP9\\CTRL\\0\\2\\D")) is None
    assert point.rct_id_for(_disk(None)) is None
