"""A VM that is saved already is backed up in mode `saved`: the run neither saves nor starts it."""

from __future__ import annotations

from pathlib import Path

from hvbackup.assess.policy import Policy
from hvbackup.engine.vm_backup import RESULT_BELOW_POLICY, RESULT_OK, backup_vms
from hvbackup.hyperv.enums import VMState
from hvbackup.repo import Repository

from .conftest import PASSWORD
from .test_vm_backup import make_lab


def test_a_saved_vm_is_backed_up_saved_and_stays_saved(tmp_path: Path) -> None:
    lab = make_lab(tmp_path / "lab", "cluster-db")
    try:
        lab.save_vm(lab.get_vm("cluster-db"))
        with Repository.init(tmp_path / "repo", PASSWORD) as repo:
            (result,) = backup_vms(lab, repo, lab.inventory(), Policy("crash", "never")).vms
            assert (result.result, result.mode, result.consistency) == (RESULT_OK, "saved", "saved-state")
            # without its memory state (.vmrs) a saved VM's disks are crash-consistent (review fix 4)
            (result,) = backup_vms(lab, repo, lab.inventory(), Policy("application", "never")).vms
            assert (result.result, result.mode, result.consistency) == (RESULT_BELOW_POLICY, "saved", "saved-state")
            assert result.predicted["mode"] == "saved" and result.predicted["downtime_s"] is None
            assert result.frozen_or_unavailable_s == 0.0
            assert repo.load_snapshot(result.snapshot).manifest["mode"] == "saved"
        assert lab.get_vm("cluster-db").state == VMState.Saved
    finally:
        lab.destroy()
