"""The lab host's sample VMs: `hvbackup assess --host lab:DIR` end to end, and each verdict checked
against what the lab host then records when a checkpoint is taken the way the verdict says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hvbackup.assess import EXIT_BLOCKERS, Policy, predict
from hvbackup.hyperv.enums import CheckpointType, ConsistencyLevel, VMState
from hvbackup.hyperv.errors import WmiJobError
from hvbackup.hyperv.filesource import LocalFileSource
from hvbackup.hyperv.powershell import PowerShellHost
from hvbackup.lab import LabHost
from hvbackup.lab.sample import SAMPLE_VMS
from hvbackup.lab.transport import LabTransport

pytestmark = pytest.mark.slow

EXPECTED_LIVE = {"agent": "application", "stock": "filesystem", "none": "crash"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    host = LabHost.create(tmp_path_factory.mktemp("assess") / "lab", sample=True)
    yield host
    host.destroy()


def assess(lab: LabHost, *args: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-c",
        "from hvbackup.cli.main import main; main()",
        "assess",
        "--host",
        f"lab:{lab.directory}",
    ]
    return subprocess.run([*command, *args], check=False, capture_output=True, text=True, timeout=300)


def test_cli_assesses_every_sample_vm(lab: LabHost, tmp_path: Path):
    page = tmp_path / "report.html"
    result = assess(lab, "--all", "--json", "--html", str(page))
    report = json.loads(result.stdout)  # exactly one JSON document on stdout
    assert result.returncode == report["exit_code"] == EXIT_BLOCKERS  # passthru-01's disk, legacy-app's VSS
    by_name = {vm["vm"]: vm for vm in report["vms"]}
    assert set(by_name) == {spec.name for spec in SAMPLE_VMS}
    for spec in SAMPLE_VMS:
        verdict = by_name[spec.name]["verdict"]
        if spec.state == VMState.Off:
            assert (verdict["mode"], verdict["consistency"]) == ("offline", "offline")
        else:
            assert (verdict["mode"], verdict["consistency"]) == ("live", EXPECTED_LIVE[spec.guest]), spec.name
        assert bool(verdict["skipped_disks"]) == spec.passthrough
        findings = {f["id"] for f in by_name[spec.name]["findings"]}
        assert ("mixed-nics" in findings) == (len({legacy for legacy, _ in spec.nics}) == 2)
        assert ("clustered-dynamic-mac" in findings) == (spec.clustered and any(dynamic for _, dynamic in spec.nics))
        publishes = spec.guest != "none" and spec.state == VMState.Running  # readiness reaches the host by KVP
        assert ("io-scheduler" in findings) == (publishes and spec.scheduler not in ("none", "noop"))
        assert by_name[spec.name]["guest_report"] == publishes, spec.name
        assert ("kvp-unavailable" in findings) == (spec.guest == "none" and spec.state == VMState.Running)
    assert "<!DOCTYPE html>" in page.read_text(encoding="utf-8")


def test_cli_policy_options_change_the_verdict(lab: LabHost):
    result = assess(lab, "legacy-app", "--consistency", "crash", "--json")
    [vm] = json.loads(result.stdout)["vms"]
    assert (vm["verdict"]["mode"], vm["verdict"]["consistency"], vm["verdict"]["meets_policy"]) == (
        "live",
        "crash",
        True,
    )


def test_saving_a_vm_is_not_offered_for_more_than_crash_consistency(lab: LabHost):
    """Review fix 4: a saved state without its .vmrs is a crash-consistent disk set."""
    result = assess(lab, "legacy-app", "--consistency", "filesystem", "--allow-downtime", "save", "--json")
    [vm] = json.loads(result.stdout)["vms"]
    assert (vm["verdict"]["mode"], vm["verdict"]["consistency"], vm["verdict"]["meets_policy"]) == (
        "live",
        "crash",
        False,
    )
    assert "saving the VM would not help" in vm["verdict"]["summary"]
    assert any("--allow-downtime shutdown" in i for i in vm["verdict"]["improvements"])


def test_unknown_vm_is_a_one_line_error(lab: LabHost):
    result = assess(lab, "no-such-vm")
    assert result.returncode == 1 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "no-such-vm" in result.stderr


def test_unwritable_html_path_is_a_one_line_error(lab: LabHost, tmp_path: Path):
    result = assess(lab, "web-01", "--html", str(tmp_path / "missing" / "report.html"))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "cannot write" in result.stderr
    assert not (tmp_path / "missing").exists()


def over_the_transport(lab: LabHost) -> PowerShellHost:
    """The code a real host runs, answered by the lab (guest reports through KVP)."""
    return PowerShellHost(LabTransport(lab), LocalFileSource, poll_interval=0.1, job_wait=0.5, report_wait=5.0)


def achieved(host: PowerShellHost, vm, consistency: str) -> str:
    """Take the checkpoint the verdict calls for and read back what the host and the guest recorded."""
    level = ConsistencyLevel.CrashConsistent if consistency == "crash" else ConsistencyLevel.ApplicationConsistent
    checkpoint = host.create_recovery_checkpoint(vm, level, "hvbackup-assess-test", skip_unsupported_disks=True)
    guest = host.guest_report(checkpoint.id)
    reference = host.convert_to_reference_point(checkpoint)
    host.destroy_reference_point(reference)
    if reference.consistency_level != ConsistencyLevel.ApplicationConsistent:
        return "crash"
    return "application" if guest and guest["consistency"] == "application" else "filesystem"


def test_every_live_verdict_is_what_the_lab_records(lab: LabHost):
    host = over_the_transport(lab)
    checked = 0
    for vm in host.inventory():
        verdict = predict(vm, Policy(consistency="crash"), host.guest_readiness(vm.name))
        if vm.state != VMState.Running:
            continue
        assert verdict.mode == "live"
        assert achieved(host, vm, verdict.consistency) == verdict.consistency, vm.name
        checked += 1
    assert checked == sum(1 for spec in SAMPLE_VMS if spec.state == VMState.Running)


def test_production_only_without_a_freeze_is_predicted_impossible(lab: LabHost):
    lab.set_checkpoint_type("legacy-app", CheckpointType.ProductionOnly)
    try:
        vm = lab.get_vm("legacy-app")
        verdict = predict(vm, Policy(consistency="crash"), over_the_transport(lab).guest_readiness(vm.name))
        assert (verdict.mode, verdict.consistency) == ("none", "none")
        with pytest.raises(WmiJobError):
            lab.create_recovery_checkpoint(vm, ConsistencyLevel.ApplicationConsistent, "hvbackup-assess-test")
    finally:
        lab.set_checkpoint_type("legacy-app", CheckpointType.Production)
