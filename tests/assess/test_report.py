"""The report: findings sorted by severity, the worst severity, exit codes, the JSON document, and a host
assessed through the PowerShell host with the documented inventory shapes (tests/hyperv/fixtures)."""

from __future__ import annotations

import json

import pytest

from hvbackup.assess import EXIT_BLOCKERS, EXIT_CLEAN, EXIT_WARNINGS, Policy, assess_host, assess_vm
from hvbackup.assess.finding import SEVERITY_ORDER
from hvbackup.assess.report import Report
from hvbackup.hyperv.enums import CheckpointType, HeartbeatStatus
from hvbackup.hyperv.powershell import PowerShellHost
from tests.assess.sample import sample_report
from tests.assess.vms import disk, guest_finding, guest_report, vm
from tests.hyperv.hyperv_fixtures import ReplayTransport

MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("machine", "guest", "worst", "code"),
    [
        (vm(), guest_report(), None, EXIT_CLEAN),
        (vm(disks=(disk(0, block_size=32 * MIB),)), guest_report(), "advice", EXIT_CLEAN),
        (vm(), None, "info", EXIT_CLEAN),
        (vm(heartbeat=HeartbeatStatus.NoContact), guest_report(), "warning", EXIT_WARNINGS),
        (vm(version="5.0"), guest_report(), "blocker", EXIT_BLOCKERS),
    ],
)
def test_exit_code_follows_the_worst_severity(machine, guest, worst, code):
    report = Report(
        "hv", Policy(), (assess_vm(vm(name="clean"), Policy(), guest_report()), assess_vm(machine, Policy(), guest))
    )
    assert (report.worst, report.exit_code) == (worst, code)


def test_findings_are_sorted_worst_first():
    machine = vm(checkpoint_type=CheckpointType.Standard, disks=(disk(0, block_size=32 * MIB),), version="5.0")
    guest = guest_report(findings=[guest_finding("no-trim", "advice")], daemons={"hv_vss_daemon": 9})
    findings = assess_vm(machine, Policy(), guest).findings
    ranks = [SEVERITY_ORDER[f.severity] for f in findings]
    assert ranks == sorted(ranks) and len(set(ranks)) >= 3


def test_json_document_shape():
    data = json.loads(json.dumps(sample_report().to_json()))
    assert data["exit_code"] == EXIT_BLOCKERS
    assert data["counts"] == {"blocker": 2, "warning": 1, "advice": 1, "info": 1}
    assert data["policy"] == {"consistency": "application", "allow_downtime": "never"}
    second = data["vms"][1]
    assert second["verdict"]["skipped_disks"] == ["SCSI:0:1"]
    assert {f["id"] for f in second["findings"]} == {"passthrough-disk", "vss-ic-disabled", "guest-unknown"}
    assert set(second["findings"][0]) == {"id", "title", "severity", "evidence", "remedy", "run_on"}


def replay_host(vm_count: int = 3) -> tuple[PowerShellHost, ReplayTransport]:
    replay = ReplayTransport()
    replay.queue("inventory", "inventory.json")
    for _ in range(vm_count):
        replay.queue("guest_items", "guest_items_none.json")  # readiness over KVP: none published
        replay.queue("list_orphans", "list_orphans.json")
    replay.queue("get_host", "get_host.json")
    return PowerShellHost(replay, lambda path: None, poll_interval=0.0), replay


def test_assess_host_over_the_documented_inventory():
    host, replay = replay_host()
    report = assess_host(host, Policy())
    by_name = {a.vm.name: a for a in report.vms}
    assert [a.vm.name for a in report.vms] == sorted(by_name)
    assert replay.operations() == ["get_host", "inventory", *["guest_items", "list_orphans"] * 3]
    web = by_name["web01"]
    assert web.verdict.summary == "live, filesystem-consistent (unknown guest: assumed stock daemon)"
    assert {f.id for f in web.findings} >= {"orphan-checkpoint", "guest-unknown"}
    assert by_name["db01"].verdict.mode == "none"  # Lost Communication under ProductionOnly
    assert by_name["legacy01"].verdict.mode == "offline"
    assert not {f.id for f in by_name["db01"].findings} & {"orphan-checkpoint", "orphan-avhdx"}  # orphans of web01 only
    assert report.exit_code == EXIT_BLOCKERS


def test_guest_readiness_is_asked_per_vm_when_the_host_offers_it():
    host, _ = replay_host()
    asked: list[str] = []

    def guest_readiness(name: str):
        asked.append(name)
        return guest_report() if name == "web01" else None

    host.guest_readiness = guest_readiness  # type: ignore[attr-defined]
    report = assess_host(host, Policy())
    assert sorted(asked) == ["db01", "legacy01", "web01"]
    web = next(a for a in report.vms if a.vm.name == "web01")
    assert web.guest_reported and web.verdict.consistency == "application"


def test_one_unreadable_disk_is_reported_on_that_disk_not_as_a_failed_inventory():
    """Review fix 5: Get-VHD failing on one disk (VhdError) leaves the inventory whole."""
    replay = ReplayTransport()
    replay.queue("get_host", "get_host.json")
    replay.queue("inventory", "inventory_degraded.json")
    replay.queue("guest_items", "guest_items_none.json")
    replay.queue("list_orphans", "list_orphans.json")
    report = assess_host(PowerShellHost(replay, lambda path: None, poll_interval=0.0), Policy())
    (web,) = report.vms
    unreadable = [f for f in web.findings if f.id == "unreadable-disk"]
    assert len(unreadable) == 1 and unreadable[0].severity == "blocker"
    assert unreadable[0].evidence.startswith("\\\\fs01\\vms\\web01-data.vhdx: Get-VHD : Getting the mounted")
    assert any(f.id == "fibre-channel" and "SAN-A" in f.title for f in web.findings)
    assert web.verdict.mode == "none" and "cannot read disk SCSI:0:1" in web.verdict.summary
    assert report.exit_code == 4


def test_a_2012_r2_host_is_named_as_unable_to_take_a_live_backup():
    """Review fix 7: every VM of a host before build 14393 gets the reason, not a WMI failure."""
    replay = ReplayTransport()
    replay.queue("get_host", "get_host_2012r2.json")
    replay.queue("inventory", "inventory.json")
    for _ in range(3):
        replay.queue("guest_items", "guest_items_none.json")
        replay.queue("list_orphans", "list_orphans.json")
    report = assess_host(PowerShellHost(replay, lambda path: None, poll_interval=0.0), Policy())
    for assessment in report.vms:
        assert assessment.verdict.mode == "none"
        assert "build 9600, older than Windows Server 2016" in assessment.verdict.summary
        assert any(f.id == "host-version" for f in assessment.findings)
    assert report.host == "HV2012"
