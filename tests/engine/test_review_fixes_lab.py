"""The review's fixes 2, 3, 5 and 7 of issue 13 on the lab, through PowerShellHost over the lab's
transport (`--host lab:`): the lab's own failure behaviours (docs/LAB.md) stand for the host's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hvbackup.assess.policy import Policy
from hvbackup.engine import journal
from hvbackup.engine.vm_backup import RESULT_FAILED, RESULT_OK, RESULT_PARTIAL, backup_vms
from hvbackup.lab import LabHost, powershell_host
from hvbackup.repo import Repository

from .conftest import PASSWORD
from .test_vm_backup import make_lab


@pytest.fixture(autouse=True)
def journal_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[LabHost]:
    host = make_lab(tmp_path / "lab", "web-01")
    yield host
    host.destroy()


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repository]:
    with Repository.init(tmp_path / "repo", PASSWORD) as repository:
        yield repository


def backup(lab: LabHost, repo: Repository, policy: Policy | None = None):
    host = powershell_host(lab)
    (result,) = backup_vms(host, repo, [host.get_vm("web-01")], policy or Policy("crash")).vms
    return result


def test_a_refused_rename_is_a_warning_and_leaves_nothing_behind(lab, repo):
    lab.fail_operation("name_checkpoint", 32775)
    result = backup(lab, repo, Policy("filesystem"))
    assert result.result == RESULT_OK, result.message
    assert any("could not be named" in w for w in result.warnings)
    vm = lab.get_vm("web-01")
    assert not [c for c in vm.checkpoints if c.is_recovery]
    assert journal.our_checkpoints(powershell_host(lab).identity(), vm.id) == set()


def test_a_failed_change_tracking_query_is_a_full_read_with_the_reason(lab, repo):
    assert backup(lab, repo).result == RESULT_OK
    lab.fail_operation("changed_ranges", 32779)
    second = backup(lab, repo)
    assert second.result == RESULT_OK, second.message
    assert all(d["mode"] == "full" and "change tracking unavailable" in d["reason"] for d in second.disks)


def test_a_disk_get_vhd_cannot_read_fails_the_vm_with_the_message(lab, repo):
    lab.set_vhd_error("web-01", 0, "Get-VHD : Access is denied (SMB double hop)")
    result = backup(lab, repo)
    assert result.result == RESULT_FAILED and "Access is denied (SMB double hop)" in result.message


def test_fibre_channel_luns_make_the_result_partial(lab, repo):
    lab.set_fibre_channel("web-01", [{"Name": "Fibre Channel Adapter", "SanName": "SAN-A"}])
    result = backup(lab, repo)
    assert result.result == RESULT_PARTIAL and result.snapshot and "SAN-A" in result.message


def test_a_2012_r2_host_is_named_as_unable(lab, repo):
    lab.set_host(os_build="9600", os_version="6.3.9600", os_caption="Microsoft Windows Server 2012 R2 Datacenter")
    result = backup(lab, repo)
    assert result.result == RESULT_FAILED and "older than Windows Server 2016" in result.message
    assert not lab.get_vm("web-01").checkpoints
