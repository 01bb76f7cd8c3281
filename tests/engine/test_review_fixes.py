"""The review's fixes 2, 3, 4, 5 and 7 of issue 13, through PowerShellHost: the engine runs the code a
real host runs, and a stand-in for the Windows host answers under the transport (hyperv_stand_in.py),
each failure in the documented error shape. Each test fails without its fix."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hvbackup.assess.policy import Policy
from hvbackup.engine import journal
from hvbackup.engine.vm_backup import RESULT_BELOW_POLICY, RESULT_FAILED, RESULT_OK, RESULT_PARTIAL, backup_vms
from hvbackup.repo import Repository

from .conftest import PASSWORD
from .hyperv_stand_in import DEFAULT_NAME, StandInHost, error, wmi_error


@pytest.fixture(autouse=True)
def journal_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def windows(tmp_path: Path) -> StandInHost:
    folder = tmp_path / "host"
    folder.mkdir()
    return StandInHost(folder)


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repository]:
    with Repository.init(tmp_path / "repo", PASSWORD) as repository:
        yield repository


def backup(windows: StandInHost, repo: Repository, policy: Policy | None = None):
    host = windows.powershell_host()
    (result,) = backup_vms(host, repo, host.inventory(), policy or Policy("crash")).vms
    return result


# -- fix 2: checkpoint naming never leaks a checkpoint --------------------------------------------


def test_a_failed_rename_is_a_warning_and_no_second_checkpoint_is_taken(windows, repo):
    windows.fail("name_checkpoint", wmi_error("name_checkpoint", 32775, "Invalid state for this operation", None))
    result = backup(windows, repo, Policy("filesystem"))
    assert result.result == RESULT_OK, result.message
    assert windows.operations().count("create_checkpoint") == 1
    assert any("could not be named" in w for w in result.warnings)
    assert any(f"keeps the name {DEFAULT_NAME!r}" in w for w in result.warnings)
    assert windows.checkpoints == []  # converted to the reference point: nothing left behind
    assert journal.our_checkpoints(windows.powershell_host().identity(), result.vm_id) == set()


def test_the_id_is_journalled_before_the_rename_and_cleaned_as_ours_next_time(windows, repo):
    windows.fail("name_checkpoint", wmi_error("name_checkpoint", 32775, "Invalid state for this operation", None))
    windows.fail("checkpoint_disks", error("ObjectNotFound", "VM has no checkpoint", "checkpoint_disks"))
    windows.fail("destroy_checkpoint", wmi_error("destroy_checkpoint", 32774, "System is in use"))
    first = backup(windows, repo)
    assert first.result == RESULT_FAILED
    (left,) = windows.checkpoints  # Hyper-V's default name: not ours by its name
    assert left["Name"] == DEFAULT_NAME
    assert journal.our_checkpoints(windows.powershell_host().identity(), first.vm_id) == {left["Id"].lower()}

    second = backup(windows, repo)
    assert second.result == RESULT_OK, second.message
    assert any(f"removed checkpoint {DEFAULT_NAME}" in w for w in second.warnings)
    assert (
        windows.checkpoints == []
        and journal.our_checkpoints(windows.powershell_host().identity(), first.vm_id) == set()
    )


def test_a_failed_create_snapshot_job_is_retried_crash_consistent(windows, repo):
    windows.fail("create_checkpoint", wmi_error("create_checkpoint", 32768, "the guest could not freeze"))
    result = backup(windows, repo, Policy("crash"))
    assert result.result == RESULT_OK and result.consistency == "crash"
    levels = [p["ConsistencyLevel"] for op, p in windows.calls if op == "create_checkpoint"]
    assert levels == [1, 2]


def test_a_foreign_checkpoint_that_has_children_is_left_alone_and_ours_too(windows, repo):
    """fix 5: orphan cleanup never destroys a checkpoint other checkpoints are taken on top of."""
    ours = windows.add_checkpoint("hvbackup-20261124T030000000000Z")
    windows.add_checkpoint("before upgrade", recovery=False, parent=ours)
    result = backup(windows, repo)
    assert any("has child checkpoints" in w for w in result.warnings)
    assert ours in [c["Id"] for c in windows.checkpoints]
    assert not [op for op, p in windows.calls if op == "destroy_checkpoint" and p["CheckpointId"] == ours]


# -- fix 3: every change-tracking failure is a full read with the reason ---------------------------


@pytest.mark.parametrize(
    "failure",
    [
        wmi_error("changed_ranges", 32768, "GetVirtualDiskChanges job failed"),
        error("ObjectNotFound", "GetVirtualDiskChanges: file not found", "changed_ranges"),
        error("Unexpected", "The CIM method raised an exception", "changed_ranges"),
    ],
)
def test_a_change_tracking_failure_reads_the_disk_fully_with_the_reason(windows, repo, failure):
    assert backup(windows, repo).result == RESULT_OK
    windows.fail("changed_ranges", failure)
    second = backup(windows, repo)
    assert second.result == RESULT_OK, second.message
    (disk,) = second.disks
    assert disk["mode"] == "full" and disk["reason"].startswith("change tracking unavailable")
    assert (failure["error"].get("description") or failure["error"]["message"]) in disk["reason"]


def test_another_disk_at_the_same_address_is_read_fully(windows, repo):
    assert backup(windows, repo).result == RESULT_OK
    vhd = windows._drive(windows.base_path)["Vhd"]
    windows.drive_extra = {"Vhd": {**vhd, "DiskIdentifier": "AAAAAAAA-0000-0000-0000-000000000001"}}
    queried = windows.operations().count("changed_ranges")
    (disk,) = backup(windows, repo).disks
    assert disk["mode"] == "full" and "another disk (identifier aaaaaaaa-" in disk["reason"]
    assert windows.operations().count("changed_ranges") == queried  # its RCT id is not asked about


# -- fix 4: a saved VM's disks are crash-consistent -------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "verdict"), [(Policy("crash"), RESULT_OK), (Policy("application"), RESULT_BELOW_POLICY)]
)
def test_a_saved_vm_is_backed_up_but_meets_only_a_crash_policy(windows, repo, policy, verdict):
    windows.vm_extra = {"State": {"name": "Saved", "value": 6}}
    result = backup(windows, repo, policy)
    assert (result.mode, result.consistency, result.result) == ("saved", "saved-state", verdict)
    assert result.predicted["meets_policy"] == (verdict == RESULT_OK)
    assert "start_vm" not in windows.operations() and "save_vm" not in windows.operations()


# -- fix 5: unreadable disks, job warnings, unfrozen disks, Fibre Channel ---------------------------


def test_a_disk_get_vhd_cannot_read_fails_that_vm_with_the_message(windows, repo):
    windows.drive_extra = {"VhdError": "Get-VHD : The system cannot find the file specified."}
    result = backup(windows, repo)
    assert result.result == RESULT_FAILED
    assert "cannot read disk SCSI:0:0" in result.message and "cannot find the file" in result.message
    assert "create_checkpoint" not in windows.operations()


def test_a_job_that_completed_with_warnings_is_in_the_run_and_the_manifest(windows, repo):
    warned = "Checkpoint completed, but the Backup integration service reported: one volume was not frozen."

    def with_warning(params):
        document = StandInHost._create_checkpoint(windows, params)
        return {**document, "Warnings": [warned]}

    windows.answers["create_checkpoint"] = with_warning
    result = backup(windows, repo)
    assert result.result == RESULT_OK
    assert any(warned in w for w in result.warnings)
    assert any(warned in w for w in repo.load_snapshot(result.snapshot).manifest["warnings"])


def test_a_disk_the_checkpoint_did_not_freeze_is_an_error_not_a_silent_copy(windows, repo):
    windows.frozen_path = windows.live_path  # the checkpoint hands out the file the VM writes to
    result = backup(windows, repo)
    assert result.result == RESULT_FAILED and "was not frozen by checkpoint" in result.message
    assert result.bytes_read == 0 and windows.checkpoints == []  # released


def test_fibre_channel_luns_are_reported_like_pass_through_disks(windows, repo):
    windows.vm_extra = {"FibreChannelAdapters": [{"Name": "Fibre Channel Adapter", "SanName": "SAN-A"}]}
    result = backup(windows, repo)
    assert result.result == RESULT_PARTIAL and result.snapshot
    assert (
        result.message
        == "not backed up (never in a checkpoint): Fibre Channel adapter Fibre Channel Adapter (SAN SAN-A)"
    )


# -- fix 7: hosts before Windows Server 2016 ------------------------------------------------------


def test_a_2012_r2_host_is_named_as_unable_and_no_wmi_call_is_made(windows, repo):
    windows.host_document = {
        **windows.host_document,
        "OsCaption": "Microsoft Windows Server 2012 R2",
        "OsBuild": "9600",
        "SupportedVersions": [],
    }
    result = backup(windows, repo)
    assert result.result == RESULT_FAILED
    assert "build 9600, older than Windows Server 2016" in result.message
    assert "no recovery checkpoints, reference points or resilient change tracking" in result.message
    # Only reads (the guest's Data Exchange items are read for the verdict): no checkpoint, no orphan cleanup.
    assert set(windows.operations()) == {"get_host", "inventory", "guest_items"}
