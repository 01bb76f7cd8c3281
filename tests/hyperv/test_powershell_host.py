"""PowerShellHost over a replaying transport: which scripts run, with what, and what comes back."""

from __future__ import annotations

import json

import pytest

from hvbackup.hyperv.enums import ConsistencyLevel, SnapshotType
from hvbackup.hyperv.errors import ChangeTrackingUnavailable, OperationTimeout, VmNotFound, WmiJobError
from hvbackup.hyperv.model import VmConfig
from hvbackup.hyperv.powershell import PowerShellHost, clip_ranges
from hvbackup.hyperv.wire import vm_from_json

from .hyperv_fixtures import fixture

WEB01 = "6a1f3c2e-8b4d-4e5f-9a0b-1c2d3e4f5a6b"


@pytest.fixture
def web01():
    return vm_from_json(fixture("inventory.json")["VMs"][0])


def test_inventory_runs_one_script(ps_host, replay):
    replay.queue("inventory", "inventory.json")
    assert [vm.name for vm in ps_host.inventory()] == ["web01", "legacy01", "db01"]
    assert replay.calls == [("inventory", {})]


def test_get_vm_by_id_asks_the_host_for_that_vm(ps_host, replay):
    replay.queue("inventory", "inventory.json")
    assert ps_host.get_vm(WEB01.upper()).name == "web01"
    assert replay.calls == [("inventory", {"VmId": WEB01.upper()})]


def test_get_vm_by_name_and_unknown_name(ps_host, replay):
    replay.queue("inventory", "inventory.json")
    assert ps_host.get_vm("db01").id == "9b8a7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
    replay.queue("inventory", "inventory.json")
    replay.queue("get_host", "get_host.json")
    with pytest.raises(VmNotFound, match="no VM 'nope' on HV01"):
        ps_host.get_vm("nope")


def test_get_vm_unknown_id_is_vm_not_found(ps_host, replay):
    replay.queue("inventory", "error_vm_not_found.json")
    with pytest.raises(VmNotFound):
        ps_host.get_vm("11111111-2222-3333-4444-555555555555")


def test_recovery_checkpoint_requests_consistency_and_names_it(ps_host, replay, web01):
    replay.queue("set_guest_item", "set_guest_item.json")  # the guest's request token (docs/HYPERV.md §13)
    replay.queue("create_checkpoint", "create_checkpoint_done.json")
    replay.queue("name_checkpoint", "name_checkpoint.json")
    checkpoint = ps_host.create_recovery_checkpoint(
        web01, ConsistencyLevel.ApplicationConsistent, "hvbackup-20261125T030000Z"
    )
    assert checkpoint.type is SnapshotType.Recovery and checkpoint.is_ours
    _announce, (op, params), (op2, params2) = replay.calls
    assert op == "create_checkpoint"
    assert params["VmId"] == WEB01 and params["ConsistencyLevel"] == 1
    assert params["IgnoreNonSnapshottableDisks"] is False
    assert op2 == "name_checkpoint" and params2 == {
        "VmId": WEB01,
        "CheckpointId": checkpoint.id,
        "Name": "hvbackup-20261125T030000Z",
    }


def test_long_checkpoint_job_is_polled_in_short_calls(ps_host, replay, web01):
    replay.queue("create_checkpoint", "create_checkpoint_pending.json")
    replay.queue("poll_job", "poll_job_running.json")
    replay.queue("poll_job", "create_checkpoint_done.json")
    replay.queue("name_checkpoint", "name_checkpoint.json")
    checkpoint = ps_host.create_recovery_checkpoint(
        web01, ConsistencyLevel.CrashConsistent, "hvbackup-20261125T030000Z"
    )
    assert checkpoint.name == "hvbackup-20261125T030000Z"
    assert replay.operations() == ["create_checkpoint", "poll_job", "poll_job", "name_checkpoint"]
    assert replay.calls[0][1]["ConsistencyLevel"] == 2
    poll = replay.calls[1][1]
    assert poll["JobId"] == "5C1E9B7A-3D2F-4A6B-8E0C-1F2A3B4C5D6E" and poll["ResultKind"] == "checkpoint"
    assert 0 < poll["WaitSeconds"] < ps_host.call_timeout


def test_job_that_never_ends_times_out(replay, web01):
    host = PowerShellHost(replay, lambda p: None, poll_interval=0.0, job_timeout=0.0)
    replay.queue("create_checkpoint", "create_checkpoint_pending.json")
    with pytest.raises(OperationTimeout, match="still running"):
        host.create_recovery_checkpoint(web01, ConsistencyLevel.CrashConsistent, "hvbackup-x")


def test_failed_checkpoint_job_raises_wmi_job_error(ps_host, replay, web01):
    replay.queue("create_checkpoint", "create_checkpoint_pending.json")
    replay.queue("poll_job", "error_wmi_job.json")
    with pytest.raises(WmiJobError) as caught:
        ps_host.create_recovery_checkpoint(web01, ConsistencyLevel.ApplicationConsistent, "hvbackup-x")
    assert caught.value.code == 32768 and "freeze" in caught.value.description


def test_changed_ranges_loop_until_the_disk_is_covered(ps_host, replay):
    replay.queue("changed_ranges", "changed_ranges_1.json")
    replay.queue("changed_ranges", "changed_ranges_2.json")
    ranges = list(ps_host.changed_ranges("D:\\Hyper-V\\web01\\Virtual Hard Disks\\web01.vhdx", "rctX:1"))
    assert ranges == [(0, 1048576), (1048576, 2097152), (2147483648, 4194304), (68718428160, 1048576)]
    offsets = [params["ByteOffset"] for _, params in replay.calls]
    assert offsets == [0, 32 * 2**30]  # the second query starts where the first one stopped
    assert all(params["LimitId"] == "rctX:1" for _, params in replay.calls)


def test_changed_ranges_without_progress_means_full_read(ps_host, replay, tmp_path):
    (tmp_path / "stuck.json").write_text(
        '{"VirtualSize":1048576,"ByteOffset":0,"ProcessedByteLength":0,"ChangedByteOffsets":[],"ChangedByteLengths":[]}'
    )
    replay.answers["changed_ranges"].append((tmp_path / "stuck.json").read_text())
    with pytest.raises(ChangeTrackingUnavailable, match="no progress"):
        list(ps_host.changed_ranges("D:\\a.vhdx", "rctX:1"))


def test_changed_ranges_error_means_full_read(ps_host, replay):
    replay.queue("changed_ranges", "error_change_tracking.json")
    with pytest.raises(ChangeTrackingUnavailable):
        list(ps_host.changed_ranges("D:\\a.vhdx", "rctX:gone"))


def test_clip_ranges_to_the_virtual_disk():
    assert list(clip_ranges([(0, 10), (95, 10), (100, 5), (50, 0)], 100)) == [(0, 10), (95, 5)]


def test_convert_then_destroy_reference_point(ps_host, replay, web01):
    replay.queue("create_checkpoint", "create_checkpoint_done.json")
    replay.queue("name_checkpoint", "name_checkpoint.json")
    replay.queue("checkpoint_disks", "checkpoint_disks.json")
    replay.queue("convert_to_reference_point", "convert_to_reference_point.json")
    replay.queue("destroy_reference_point", "done.json")
    checkpoint = ps_host.create_recovery_checkpoint(
        web01, ConsistencyLevel.ApplicationConsistent, "hvbackup-20261125T030000Z"
    )
    disks = ps_host.checkpoint_disks(checkpoint)
    assert [d.path.rsplit("\\", 1)[1] for d in disks] == ["web01.vhdx", "web01-data.vhdx"]
    point = ps_host.convert_to_reference_point(checkpoint)
    # Consistency is read back from Hyper-V: application was asked, crash was had.
    assert point.consistency_level is ConsistencyLevel.CrashConsistent
    assert point.rct_id_for(disks[1]) == "rctX:4c9d2e3f:0001:0000000000000042"
    ps_host.destroy_reference_point(point)
    assert replay.calls[-1] == (
        "destroy_reference_point",
        {"VmId": WEB01, "ReferencePointId": point.id, "WaitSeconds": ps_host.job_wait},
    )
    assert replay.calls[3][1] == {"VmId": WEB01, "CheckpointId": checkpoint.id}  # after set_guest_item


def test_destroy_reference_point_refused_by_wmi(ps_host, replay):
    replay.queue("list_reference_points", "list_reference_points.json")
    replay.queue("destroy_reference_point", "error_method_return.json")
    web = vm_from_json(fixture("inventory.json")["VMs"][0])
    (point,) = ps_host.list_reference_points(web)
    with pytest.raises(WmiJobError) as caught:
        ps_host.destroy_reference_point(point)
    assert caught.value.code == 32775


def test_state_changes_and_orphans(ps_host, replay, web01):
    for operation in ("save_vm", "start_vm", "stop_vm", "request_shutdown"):
        replay.queue(operation, "done.json")
    ps_host.save_vm(web01)
    ps_host.start_vm(web01)
    ps_host.stop_vm(web01)
    ps_host.request_shutdown(web01, "hvbackup: offline backup")
    assert replay.operations() == ["save_vm", "start_vm", "stop_vm", "request_shutdown"]
    assert replay.calls[-1][1] == {"VmId": WEB01, "Reason": "hvbackup: offline backup"}
    replay.queue("list_orphans", "list_orphans.json")
    orphans = ps_host.list_orphans(web01)
    assert len(orphans) == 3 and replay.calls[-1][1]["Prefix"] == "hvbackup-"


def test_shutdown_waits_until_off(ps_host, replay, web01):
    replay.queue("request_shutdown", "done.json")
    replay.queue("inventory", "inventory.json")  # still running
    off = fixture("inventory.json")
    off["VMs"][0]["State"] = {"name": "Off", "value": 3}
    replay.answers["inventory"].append(json.dumps(off))
    ps_host.shutdown_vm(web01, timeout=60, interval=0.0)
    assert replay.operations() == ["request_shutdown", "inventory", "inventory"]


def test_shutdown_that_never_finishes_times_out(ps_host, replay, web01):
    replay.queue("request_shutdown", "done.json")
    replay.queue("inventory", "inventory.json")
    with pytest.raises(OperationTimeout, match="web01 is Running, not Off"):
        ps_host.shutdown_vm(web01, timeout=0.0, interval=0.0)


def test_create_vm_sends_the_config_and_disk_paths(ps_host, replay, web01):
    replay.queue("create_vm", "create_vm.json")
    config = web01.config()
    vm = ps_host.create_vm(config, "web01-restored", ["D:\\Restore\\web01.vhdx"])
    assert vm.name == "web01-restored" and vm.id != web01.id
    ((op, params),) = replay.calls
    assert op == "create_vm" and params["DiskPaths"] == ["D:\\Restore\\web01.vhdx"]
    assert VmConfig.from_json(params["Config"]) == config
    with pytest.raises(ValueError):
        ps_host.create_vm(config, "x", [])


def test_close_closes_the_transport(ps_host, replay):
    ps_host.close()
    assert replay.closed


def test_parameters_with_quotes_survive_the_trip(ps_host, replay, web01):
    replay.queue("request_shutdown", "done.json")
    reason = "it's O'Brien’s ‘backup’ — «ok» \\ $env:x `n"
    ps_host.request_shutdown(web01, reason)
    assert replay.calls[0][1]["Reason"] == reason


# -- review fixes (issue 13) ---------------------------------------------------------------------


def test_the_checkpoint_is_handed_over_before_it_is_named(ps_host, replay, web01):
    """Review fix 2: the caller can journal the id before the rename is even tried."""
    replay.queue("create_checkpoint", "create_checkpoint_done.json")
    replay.queue("name_checkpoint", "name_checkpoint.json")
    seen = []
    ps_host.create_recovery_checkpoint(
        web01,
        ConsistencyLevel.CrashConsistent,
        "hvbackup-20261125T030000Z",
        on_created=lambda c: seen.append((c.id, replay.operations())),
    )
    assert seen == [("2d4c6e8a-1b3d-4f5a-8c7e-9a0b1c2d3e4f", ["create_checkpoint"])]


def test_a_failed_rename_is_a_warning_and_the_checkpoint_is_kept(ps_host, replay, web01):
    """Review fix 2: ModifySystemSettings refused; the checkpoint exists and is returned as it is."""
    replay.queue("create_checkpoint", "create_checkpoint_done.json")
    replay.queue("name_checkpoint", "error_name_checkpoint.json")
    checkpoint = ps_host.create_recovery_checkpoint(
        web01, ConsistencyLevel.CrashConsistent, "hvbackup-20261125T030000Z"
    )
    assert checkpoint.id == "2d4c6e8a-1b3d-4f5a-8c7e-9a0b1c2d3e4f" and not checkpoint.is_ours
    (warning,) = ps_host.take_warnings()
    assert "could not be named hvbackup-20261125T030000Z" in warning and "32775" in warning
    assert ps_host.take_warnings() == []  # said once


def test_a_job_completed_with_warnings_keeps_its_description(ps_host, replay, web01):
    """Review fix 5: job state 32768 is success with a warning, not silence."""
    replay.queue("create_checkpoint", "create_checkpoint_pending.json")
    replay.queue("poll_job", "poll_job_warning.json")
    replay.queue("name_checkpoint", "name_checkpoint.json")
    ps_host.create_recovery_checkpoint(web01, ConsistencyLevel.ApplicationConsistent, "hvbackup-20261125T030000Z")
    (warning,) = ps_host.take_warnings()
    assert warning.startswith("poll_job: ") and "one volume was not frozen" in warning


def test_warnings_belong_to_the_thread_that_made_the_call(ps_host, replay, web01):
    import threading

    replay.queue("poll_job", "poll_job_warning.json")
    worker = threading.Thread(target=lambda: ps_host.call("poll_job", JobId="x", ResultKind="checkpoint"))
    worker.start()
    worker.join()
    assert ps_host.take_warnings() == []  # another VM's run does not get them


@pytest.mark.parametrize(
    "answer",
    ["error_method_return.json", "error_wmi_job.json", "error_change_tracking_cim.json", "error_vm_not_found.json"],
)
def test_every_change_tracking_failure_means_a_full_read(ps_host, replay, answer):
    """Review fix 3: a WMI error, a failed job, a CIM exception or any other failure of the query."""
    replay.queue("changed_ranges", answer)
    with pytest.raises(ChangeTrackingUnavailable):
        list(ps_host.changed_ranges("D:\\a.vhdx", "rctX:1"))


def test_a_change_tracking_answer_of_the_wrong_shape_means_a_full_read(ps_host, replay):
    replay.answers["changed_ranges"].append('{"VirtualSize":1048576,"ByteOffset":0}')
    with pytest.raises(ChangeTrackingUnavailable, match="unexpected answer"):
        list(ps_host.changed_ranges("D:\\a.vhdx", "rctX:1"))


def test_inventory_survives_a_disk_get_vhd_cannot_read(ps_host, replay):
    """Review fix 5: the disk carries the reason; the VM and its other disks are there."""
    replay.queue("inventory", "inventory_degraded.json")
    (vm,) = ps_host.inventory()
    readable, unreadable = vm.disks
    assert readable.vhd_error is None and readable.size > 0
    assert unreadable.vhd_error is not None and "file was not found" in unreadable.vhd_error
    assert (unreadable.size, unreadable.format, unreadable.path) == (0, None, "\\\\fs01\\vms\\web01-data.vhdx")
    assert [(a.name, a.san_name) for a in vm.fibre_channel_adapters] == [("Fibre Channel Adapter", "SAN-A")]


def test_a_2012_r2_host_says_it_has_no_backup_checkpoints(ps_host, replay):
    """Review fix 7."""
    replay.queue("get_host", "get_host_2012r2.json")
    host = ps_host.host_info()
    assert host.build == 9600 and host.supported_versions == ()
    assert "older than Windows Server 2016" in (host.backup_checkpoints_problem() or "")
    replay.queue("get_host", "get_host.json")
    assert ps_host.host_info().backup_checkpoints_problem() is None
