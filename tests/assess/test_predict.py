"""predict(): the backup mode and consistency per VM state, integration services, guest, checkpoint type and policy."""

from __future__ import annotations

import itertools

import pytest

from hvbackup.assess.policy import CONSISTENCY_CHOICES, DOWNTIME_CHOICES, Policy
from hvbackup.assess.verdict import predict
from hvbackup.errors import UsageError
from hvbackup.hyperv.enums import CheckpointType, IntegrationServiceStatus, OperationalStatus, VMState
from hvbackup.hyperv.model import Memory
from tests.assess.vms import GIB, HEALTHY, disk, guest_report, passthrough, service, services, vm

VSS_STATES = {
    "ok": service("VSS"),
    "disabled": service("VSS", enabled=False),
    "no-contact": service("VSS", status=IntegrationServiceStatus.NoContact, status_text="No Contact"),
    "lost": service("VSS", status=IntegrationServiceStatus.LostCommunication, status_text="Lost Communication"),
}
GUESTS = {
    "unknown": None,
    "agent": guest_report(),
    "agent-no-hooks": guest_report(hooks=[], quiescers=[]),
    "agent-with-hook": guest_report(hooks=[{"name": "10-app"}], quiescers=[]),
    "stock": guest_report(daemons={"hypervvssd": 377}),
    "no-daemon": guest_report(daemons={}),
}
FREEZE_CONSISTENCY = {
    "unknown": "filesystem",
    "agent": "application",
    "agent-no-hooks": "filesystem",
    "agent-with-hook": "application",
    "stock": "filesystem",
}
POLICIES = [Policy(c, d) for c, d in itertools.product(CONSISTENCY_CHOICES, DOWNTIME_CHOICES)]
RANK = {"crash": 1, "filesystem": 2, "application": 3, "saved-state": 3, "offline": 3}
SAVE_S = 2 + 2 * 4  # 4 GiB of memory saved and restored at 1 GiB/s, plus the checkpoint


def running(vss: str, checkpoint_type: CheckpointType = CheckpointType.Production, **changes):
    return vm(integration_services=services(VSS=VSS_STATES[vss]), checkpoint_type=checkpoint_type, **changes)


MATRIX = list(
    itertools.product(VSS_STATES, GUESTS, (CheckpointType.Production, CheckpointType.ProductionOnly), POLICIES)
)


@pytest.mark.parametrize(("vss", "guest", "checkpoint_type", "policy"), MATRIX)
def test_running_vm_matrix(vss, guest, checkpoint_type, policy):
    verdict = predict(running(vss, checkpoint_type), policy, GUESTS[guest])
    can_freeze = vss == "ok" and guest != "no-daemon"
    live = (
        FREEZE_CONSISTENCY[guest]
        if can_freeze
        else None
        if checkpoint_type == CheckpointType.ProductionOnly
        else "crash"
    )

    if live is not None and RANK[live] >= RANK[policy.consistency]:
        assert (verdict.mode, verdict.consistency, verdict.meets_policy, verdict.downtime_s) == (
            "live",
            live,
            True,
            None,
        )
    elif policy.allow_downtime == "shutdown":  # the Shutdown service is enabled and answers here
        assert (verdict.mode, verdict.consistency, verdict.meets_policy) == ("shutdown", "offline", True)
        assert verdict.downtime_s > 0 and "needs shutdown" in verdict.summary
    elif policy.allow_downtime == "save":
        assert (verdict.mode, verdict.consistency, verdict.meets_policy, verdict.downtime_s) == (
            "saved",
            "saved-state",
            True,
            SAVE_S,
        )
        assert verdict.summary == f"needs saved state: unavailable for about {SAVE_S} s"
    elif live is None:
        assert (verdict.mode, verdict.consistency, verdict.meets_policy) == ("none", "none", False)
        assert verdict.summary.startswith("cannot be backed up: ")
    else:
        assert (verdict.mode, verdict.consistency, verdict.meets_policy) == ("live", live, False)
        assert "below policy" in verdict.summary
    if not verdict.meets_policy:
        assert any("--allow-downtime save" in i for i in verdict.improvements)


@pytest.mark.parametrize(
    ("state", "mode", "consistency"),
    [
        (VMState.Off, "offline", "offline"),
        (VMState.OffCritical, "offline", "offline"),
        (VMState.Saved, "saved", "saved-state"),
        (VMState.FastSaved, "saved", "saved-state"),
    ],
)
@pytest.mark.parametrize("policy", POLICIES)
def test_off_and_saved_vms_need_no_downtime_and_meet_every_policy(state, mode, consistency, policy):
    broken = vm(state=state, integration_services=services(VSS=service("VSS", enabled=False)))
    verdict = predict(broken, policy, None)
    assert (verdict.mode, verdict.consistency, verdict.meets_policy, verdict.downtime_s) == (
        mode,
        consistency,
        True,
        None,
    )


@pytest.mark.parametrize(
    ("guest", "summary"),
    [
        ("agent", "live, application-consistent"),
        ("unknown", "live, filesystem-consistent (unknown guest: assumed stock daemon)"),
        ("stock", "live, filesystem-consistent (stock daemon hypervvssd)"),
    ],
)
def test_summaries_say_what_was_assumed(guest, summary):
    assert predict(HEALTHY, Policy(), GUESTS[guest]).summary == summary


def test_crash_consistent_summary_names_the_cause_and_the_fix():
    verdict = predict(running("disabled"), Policy(consistency="crash"), None)
    assert verdict.summary == "crash-consistent: the VSS (backup) integration service is disabled"
    assert verdict.improvements == (
        "the VSS (backup) integration service is disabled — fix: Enable-VMIntegrationService -VMName 'web-01' -Name 'VSS'",
    )


def test_production_only_without_a_freeze_cannot_be_backed_up_without_downtime():
    verdict = predict(running("ok", CheckpointType.ProductionOnly), Policy(consistency="crash"), GUESTS["no-daemon"])
    assert verdict.mode == "none"
    assert "the guest runs no VSS daemon" in verdict.summary and "ProductionOnly" in verdict.summary
    assert "the guest runs no VSS daemon — fix: in the guest: hvbackup-guest install" in verdict.improvements


def test_stock_daemon_is_told_how_to_reach_application_consistency():
    verdict = predict(HEALTHY, Policy(), GUESTS["stock"])
    assert verdict.meets_policy
    assert any("hvbackup-guest install" in i for i in verdict.improvements)


def test_shutdown_falls_back_to_save_when_the_guest_cannot_shut_down():
    machine = vm(integration_services=services(VSS=VSS_STATES["disabled"], Shutdown=service("Shutdown", enabled=False)))
    verdict = predict(machine, Policy("filesystem", "shutdown"), None)
    assert (verdict.mode, verdict.consistency, verdict.downtime_s) == ("saved", "saved-state", SAVE_S)
    assert any("-Name 'Shutdown'" in i for i in verdict.improvements)


def test_saved_state_downtime_grows_with_memory():
    small = predict(running("disabled", memory=Memory(startup_bytes=1 * GIB)), Policy(allow_downtime="save"), None)
    large = predict(running("disabled", memory=Memory(startup_bytes=16 * GIB)), Policy(allow_downtime="save"), None)
    assert (small.downtime_s, large.downtime_s) == (4.0, 34.0)


def test_passthrough_disks_are_skipped_and_the_rest_is_backed_up():
    verdict = predict(vm(disks=(disk(0), passthrough(1), passthrough(2))), Policy(), GUESTS["agent"])
    assert (verdict.mode, verdict.consistency) == ("live", "application")
    assert verdict.skipped_disks == ("SCSI:0:1", "SCSI:0:2")
    assert verdict.summary.endswith("pass-through disk(s) SCSI:0:1, SCSI:0:2 not backed up")


def test_busy_vm_is_predicted_as_usual():
    busy = vm(operational_status=(OperationalStatus.Ok, OperationalStatus.BackingUpVirtualMachine))
    assert predict(busy, Policy(), GUESTS["agent"]) == predict(HEALTHY, Policy(), GUESTS["agent"])


def test_paused_vm_cannot_freeze():
    verdict = predict(vm(state=VMState.Paused), Policy(consistency="crash"), GUESTS["agent"])
    assert (verdict.mode, verdict.consistency) == ("live", "crash")
    assert "Resume-VM -Name 'web-01'" in verdict.improvements[0]


def test_old_configuration_version_cannot_freeze():
    verdict = predict(vm(version="5.0"), Policy(), GUESTS["agent"])
    assert (verdict.consistency, verdict.meets_policy) == ("crash", False)


@pytest.mark.parametrize("state", [VMState.Starting, VMState.Stopping, VMState.Saving])
def test_vm_in_transition_cannot_be_backed_up_now(state):
    verdict = predict(vm(state=state), Policy(allow_downtime="save"), None)
    assert (verdict.mode, verdict.meets_policy) == ("none", False)
    assert state.name in verdict.summary


def test_verdict_json_is_plain_data():
    data = predict(vm(disks=(disk(0), passthrough(1))), Policy(), None).to_json()
    assert data["skipped_disks"] == ["SCSI:0:1"] and isinstance(data["improvements"], list)
    assert set(data) == {
        "mode",
        "consistency",
        "meets_policy",
        "summary",
        "downtime_s",
        "skipped_disks",
        "improvements",
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"consistency": "perfect"}, "unknown consistency 'perfect'"),
        ({"allow_downtime": "always"}, "unknown downtime setting 'always'"),
    ],
)
def test_bad_policy_is_a_usage_error(kwargs, message):
    with pytest.raises(UsageError, match=message):
        Policy(**kwargs)
