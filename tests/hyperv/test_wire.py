"""Parsing what the scripts print (fixtures in the documented shapes) into the model."""

from __future__ import annotations

import pytest

from hvbackup.errors import HvBackupError
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
)
from hvbackup.hyperv.errors import (
    ChangeTrackingUnavailable,
    HyperVError,
    ScriptOutputError,
    VmNotFound,
    WmiJobError,
)
from hvbackup.hyperv.wire import (
    as_list,
    changes_from_json,
    checkpoint_from_json,
    disk_from_json,
    host_from_json,
    orphan_from_json,
    parse_document,
    parse_time,
    reference_point_from_json,
    vm_from_json,
)

from .hyperv_fixtures import fixture, fixture_text


@pytest.fixture(scope="module")
def vms():
    return {vm.name: vm for vm in (vm_from_json(v) for v in fixture("inventory.json")["VMs"])}


def test_host_facts_and_supported_versions():
    host = host_from_json(fixture("get_host.json"))
    assert host.name == "HV01" and host.os_build == "20348"
    assert host.supported_versions == ("8.0", "9.0", "10.0") and host.default_version == "10.0"


def test_vm_identity_state_and_settings(vms):
    web = vms["web01"]
    assert web.id == "6a1f3c2e-8b4d-4e5f-9a0b-1c2d3e4f5a6b"  # GUIDs normalised to lower case
    assert web.state is VMState.Running and web.generation == 2 and web.version == "10.0"
    assert web.checkpoint_type is CheckpointType.Production
    assert web.heartbeat is HeartbeatStatus.OkApplicationsUnknown
    assert web.memory.startup_bytes == 4 * 2**30 and not web.memory.dynamic
    assert web.guest["OSName"] == "Ubuntu"
    legacy = vms["legacy01"]
    assert legacy.state is VMState.Off and legacy.is_clustered and legacy.generation == 1
    assert legacy.checkpoint_type is CheckpointType.Standard and legacy.firmware is None
    assert legacy.heartbeat is HeartbeatStatus.Unknown  # Get-VM gives null when the VM is off


def test_critical_state_parsed_by_name_across_windows_numberings(vms):
    assert vms["db01"].state is VMState.RunningCritical


def test_firmware_secure_boot_and_template(vms):
    assert vms["web01"].firmware.secure_boot
    assert vms["web01"].firmware.secure_boot_template == "MicrosoftUEFICertificateAuthority"
    assert not vms["db01"].firmware.secure_boot


def test_legacy_nic_and_dynamic_mac_detection(vms):
    legacy_nics = vms["legacy01"].network_adapters
    assert [n.is_legacy for n in legacy_nics] == [True, False]
    assert all(n.dynamic_mac for n in legacy_nics)
    assert legacy_nics[1].switch_name is None  # not connected
    web_nic = vms["web01"].network_adapters[0]
    assert not web_nic.is_legacy and not web_nic.dynamic_mac
    assert web_nic.mac_address == "00:15:5d:0a:1b:2c" and web_nic.vlan_id == 20


def test_integration_services_no_contact_and_lost_communication(vms):
    legacy_vss = vms["legacy01"].vss_service
    assert legacy_vss.name == "Backup (volume snapshot)"
    assert legacy_vss.status is IntegrationServiceStatus.NoContact and legacy_vss.guest_unreachable
    db_vss = vms["db01"].vss_service  # one service, printed as a bare object by PowerShell 5.1
    assert db_vss.status is IntegrationServiceStatus.LostCommunication and db_vss.status_text == "Lost Communication"
    web_vss = vms["web01"].vss_service
    assert web_vss.enabled and web_vss.status is IntegrationServiceStatus.Ok and not web_vss.guest_unreachable
    gsi = vms["web01"].integration_service("Guest Service Interface")
    assert not gsi.enabled and gsi.status is IntegrationServiceStatus.Unknown


def test_disks_passthrough_format_sizes_and_parents(vms):
    web_disk = vms["web01"].disks[0]
    assert (web_disk.controller_type, web_disk.controller_number, web_disk.controller_location) == (
        ControllerType.SCSI,
        0,
        0,
    )
    assert web_disk.format is VhdFormat.VHDX and web_disk.type is VhdType.Dynamic
    assert web_disk.block_size == 1024 * 1024
    assert (web_disk.logical_sector_size, web_disk.physical_sector_size) == (512, 4096)
    assert web_disk.size == 64 * 2**30 and not web_disk.is_passthrough and web_disk.parent_path is None
    ide, passthrough = vms["legacy01"].disks
    assert ide.controller_type is ControllerType.IDE and ide.format is VhdFormat.VHD and ide.type is VhdType.Fixed
    assert passthrough.is_passthrough and passthrough.passthrough_disk_number == 3 and passthrough.format is None
    db_disk = vms["db01"].disks[0]
    assert db_disk.type is VhdType.Differencing and db_disk.parent_path == "\\\\fs01\\vms\\db01\\db01.vhdx"
    assert db_disk.is_shared and db_disk.on_smb


def test_checkpoints_types_and_dates(vms):
    (recovery,) = vms["web01"].checkpoints
    assert recovery.type is SnapshotType.Recovery and recovery.is_ours
    assert recovery.created.startswith("2026-11-24T22:00:03")
    (user,) = vms["db01"].checkpoints  # one checkpoint, printed as a bare object
    assert user.type is SnapshotType.Standard and not user.is_ours
    assert user.created == "2025-11-24T16:00:00+00:00"  # from "/Date(1764000000000)/"


def test_operational_status_wrapped_array_and_busy_vm(vms):
    assert vms["db01"].operational_status == (OperationalStatus.Ok, OperationalStatus.MergingDisks)
    assert vms["db01"].is_busy and not vms["web01"].is_busy


def test_reference_point_rct_ids_per_disk():
    point = reference_point_from_json(fixture("convert_to_reference_point.json")["ReferencePoint"])
    assert point.type is ReferencePointType.RctBased
    assert point.consistency_level is ConsistencyLevel.CrashConsistent
    assert point.vm_id == "6a1f3c2e-8b4d-4e5f-9a0b-1c2d3e4f5a6b"
    assert [d.rct_id for d in point.disks] == [
        "rctX:3b8c1d2e:0001:00000000000000a7",
        "rctX:4c9d2e3f:0001:0000000000000042",
    ]
    disks = [disk_from_json(d) for d in fixture("checkpoint_disks.json")["HardDrives"]]
    assert [point.rct_id_for(d) for d in disks] == [d.rct_id for d in point.disks]


def test_reference_point_with_one_disk_printed_as_scalars():
    (point_json,) = fixture("list_reference_points.json")["ReferencePoints"]
    point = reference_point_from_json(point_json)
    assert point.consistency_level is ConsistencyLevel.ApplicationConsistent
    assert len(point.disks) == 1 and point.disks[0].rct_id.endswith("a6")


def test_reference_point_with_mismatched_id_lists_is_refused():
    data = dict(fixture("convert_to_reference_point.json")["ReferencePoint"])
    data["ResilientChangeTrackingIdentifiers"] = data["ResilientChangeTrackingIdentifiers"][:1]
    with pytest.raises(ScriptOutputError, match="2 disk ids but 1 RCT ids"):
        reference_point_from_json(data)


def test_changed_ranges_answers_with_arrays_and_scalars():
    processed, ranges = changes_from_json(fixture("changed_ranges_1.json"))
    assert processed == 32 * 2**30
    assert ranges == [(0, 1048576), (1048576, 2097152), (2147483648, 4194304)]
    processed, ranges = changes_from_json(fixture("changed_ranges_2.json"))
    assert ranges == [(68718428160, 2097152)]


def test_changed_ranges_with_unequal_arrays_is_refused():
    data = fixture("changed_ranges_1.json") | {"ChangedByteLengths": [1]}
    with pytest.raises(ScriptOutputError):
        changes_from_json(data)


def test_orphans_ours_and_others():
    orphans = [orphan_from_json(o) for o in fixture("list_orphans.json")["Orphans"]]
    assert [o.kind for o in orphans] == ["recovery-checkpoint", "recovery-checkpoint", "avhdx"]
    assert [o.is_ours for o in orphans] == [True, False, False]
    assert orphans[2].path.endswith(".avhdx") and orphans[1].created.startswith("2025-11-20")


def test_checkpoint_from_wmi_projection():
    checkpoint = checkpoint_from_json(fixture("create_checkpoint_done.json")["Checkpoint"])
    assert checkpoint.type is SnapshotType.Recovery and checkpoint.id == "2d4c6e8a-1b3d-4f5a-8c7e-9a0b1c2d3e4f"
    assert checkpoint.vm_id == "6a1f3c2e-8b4d-4e5f-9a0b-1c2d3e4f5a6b"


def test_wmi_job_error_carries_code_and_description():
    with pytest.raises(WmiJobError) as caught:
        parse_document(fixture_text("error_wmi_job.json"), "create_checkpoint")
    error = caught.value
    assert (error.code, error.job_state, error.operation) == (32768, 10, "create_checkpoint")
    assert "could not freeze" in error.description
    assert isinstance(error, HvBackupError) and "\n" not in str(error) and "32768" in str(error)


def test_method_return_code_error():
    with pytest.raises(WmiJobError) as caught:
        parse_document(fixture_text("error_method_return.json"), "destroy_reference_point")
    assert caught.value.code == 32775 and caught.value.description == "Invalid state for this operation"


@pytest.mark.parametrize(
    ("name", "error_type"),
    [("error_vm_not_found.json", VmNotFound), ("error_change_tracking.json", ChangeTrackingUnavailable)],
)
def test_typed_errors(name, error_type):
    with pytest.raises(error_type):
        parse_document(fixture_text(name), "op")


def test_unexpected_powershell_error_is_a_one_line_hyperv_error():
    with pytest.raises(HyperVError, match="inventory: The term 'Get-VM' is not recognized") as caught:
        parse_document(fixture_text("error_unexpected.json"), "inventory")
    assert type(caught.value) is HyperVError


@pytest.mark.parametrize("text", ["", "   \r\n", "WARNING: x\n{}", "{} {}", "[1, 2]", '{"a": '])
def test_anything_but_one_json_object_is_refused(text):
    with pytest.raises(ScriptOutputError):
        parse_document(text, "inventory")


def test_byte_order_mark_and_crlf_tolerated():
    assert parse_document('\ufeff{"Done": true}\r\n', "x") == {"Done": True}


def test_as_list_and_parse_time_quirks():
    assert as_list(None) == [] and as_list(5) == [5] and as_list({"value": [1, 2], "Count": 2}) == [1, 2]
    assert as_list({"Name": "x"}) == [{"Name": "x"}]
    assert parse_time("/Date(0)/") == "1970-01-01T00:00:00+00:00"
    assert parse_time("/Date(1000+0100)/") == "1970-01-01T00:00:01+00:00"
    assert parse_time(None) == "" and parse_time("2026-01-01T00:00:00Z") == "2026-01-01T00:00:00Z"
