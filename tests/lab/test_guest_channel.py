"""The guest channel: the real `hvbackup-guest vssd` answers the lab's FREEZE/THAW and its hook runs;
its report reaches the host through the guest's KVP pool, read with the code a real host runs."""

from __future__ import annotations

from typing import Any

import pytest

from hvbackup import kvpreport
from hvbackup.hyperv import kvp
from hvbackup.hyperv.enums import CheckpointType, ConsistencyLevel
from hvbackup.hyperv.errors import WmiJobError
from hvbackup.hyperv.filesource import LocalFileSource
from hvbackup.hyperv.model import Checkpoint
from hvbackup.hyperv.powershell import PowerShellHost
from hvbackup.lab import LabHost
from hvbackup.lab.app import STATE_FILE, decode_state
from hvbackup.lab.transport import LabTransport
from tests.lab.conftest import MakeLab

APP = ConsistencyLevel.ApplicationConsistent


def _checkpoint_with_report(lab: LabHost, vm_name: str, name: str) -> tuple[Checkpoint, dict[str, Any] | None]:
    """Announce the request as PowerShellHost does, take the checkpoint, read the freeze report over KVP."""
    host = PowerShellHost(LabTransport(lab), LocalFileSource, poll_interval=0.05, report_wait=5)
    vm = lab.get_vm(vm_name)
    token = host.announce_request(vm)
    assert token is not None
    checkpoint = lab.create_recovery_checkpoint(vm, APP, name)
    return checkpoint, kvp.read_report(host.guest_items(vm.id), kvpreport.FREEZE, token).report


def test_agent_freezes_with_its_hook_and_the_checkpoint_holds_the_flushed_state(make_lab: MakeLab) -> None:
    lab = make_lab("web-01")
    checkpoint, report = _checkpoint_with_report(lab, "web-01", "hvbackup-agent")
    assert report is not None
    assert report["by"] == "vssd" and report["consistency"] == "application"
    assert report["frozen"] == [], "the agent must freeze nothing on this machine"
    hooks = {(h["name"], h["phase"]): h for h in report["hooks"]}
    assert hooks[("50-app", "freeze")]["ok"] and hooks[("50-app", "thaw")]["ok"]
    flushed_seq = int(hooks[("50-app", "freeze")]["stdout"].split('"seq": ')[1].split("}")[0])

    frozen = lab.checkpoint_disks(checkpoint)[0].path
    state = decode_state(lab.read_guest_file("web-01", STATE_FILE, disk_path=frozen))
    assert state["clean"] and state["seq"] == flushed_seq and state["flushed_for"].startswith(report["backup_id"])
    assert lab.convert_to_reference_point(checkpoint).consistency_level == APP


def _failing_hook(lab, vm: str) -> None:
    guest = lab.folder(vm).guest_dir
    (guest / "guest.toml").write_text('[hooks]\non_failure = "fail"\n')
    hook = guest / "hooks.d" / "10-db-refuses"
    hook.write_text("#!/bin/sh\n[ \"$1\" = freeze ] && { echo 'database busy' >&2; exit 1; }\nexit 0\n")
    hook.chmod(0o755)


def test_agent_refusing_to_freeze_fails_a_production_only_checkpoint(make_lab: MakeLab) -> None:
    lab = make_lab("web-01")
    _failing_hook(lab, "web-01")
    lab.set_checkpoint_type("web-01", CheckpointType.ProductionOnly)
    with pytest.raises(WmiJobError, match="0x80004005"):
        lab.create_recovery_checkpoint(lab.get_vm("web-01"), APP, "hvbackup-refused")
    assert not lab.get_vm("web-01").checkpoints


def test_agent_refusing_to_freeze_falls_back_to_crash_for_production(make_lab: MakeLab) -> None:
    lab = make_lab("web-01")
    _failing_hook(lab, "web-01")
    checkpoint, report = _checkpoint_with_report(lab, "web-01", "hvbackup-fallback")
    assert report is not None
    assert report["consistency"] == "failed" and "on_failure" in report["error"]
    assert lab.convert_to_reference_point(checkpoint).consistency_level == ConsistencyLevel.CrashConsistent


def test_two_disk_agent_vm_checkpoints_both_disks(make_lab: MakeLab) -> None:
    lab = make_lab("app-02")
    checkpoint = lab.create_recovery_checkpoint(lab.get_vm("app-02"), APP, "hvbackup-two")
    disks = lab.checkpoint_disks(checkpoint)
    assert [d.address for d in disks] == ["SCSI:0:0", "SCSI:0:1"]
    point = lab.convert_to_reference_point(checkpoint)
    assert all(point.rct_id_for(d) for d in disks), "each disk maps to its own RCT id"
    assert len({point.rct_id_for(d) for d in disks}) == 2


def test_vssd_no_freeze_refuses_a_mount_list() -> None:
    import subprocess
    import sys

    argv = [
        sys.executable,
        "-c",
        "from hvbackup.cli.guest_main import main; main()",
        "vssd",
        "--socket",
        "/nonexistent",
    ]
    done = subprocess.run([*argv, "--no-freeze", "--mount", "/"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "exclude each other" in done.stderr
