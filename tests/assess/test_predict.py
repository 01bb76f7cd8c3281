"""predict(): the backup mode and consistency per VM state, integration services, guest, checkpoint type and policy."""

from __future__ import annotations

import itertools

import pytest

from hvbackup.assess.policy import CONSISTENCY_CHOICES, DOWNTIME_CHOICES, Policy
from hvbackup.assess.verdict import predict
from hvbackup.errors import UsageError
from hvbackup.hyperv.enums import CheckpointType, IntegrationServiceStatus, OperationalStatus, VMState
from hvbackup.hyperv.model import FibreChannelAdapter, Host, Memory
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
RANK = {"crash": 1, "filesystem": 2, "application": 3, "saved-state": 1, "offline": 3}  # no .vmrs captured
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
    elif policy.allow_downtime == "save" and RANK["saved-state"] >= RANK[policy.consistency]:
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
        # saving the VM gives a crash-consistent disk set: offered only where crash is enough
        saving_helps = RANK["saved-state"] >= RANK[policy.consistency]
        offered = "--allow-downtime save" if saving_helps else "--allow-downtime shutdown"
        assert any(offered in i for i in verdict.improvements)
        assert ("saving the VM would not help" in verdict.summary) == (
            policy.allow_downtime != "never" and not saving_helps
        )


@pytest.mark.parametrize(
    ("state", "mode", "consistency"), [(VMState.Off, "offline", "offline"), (VMState.OffCritical, "offline", "offline")]
)
@pytest.mark.parametrize("policy", POLICIES)
def test_off_vms_need_no_downtime_and_meet_every_policy(state, mode, consistency, policy):
    broken = vm(state=state, integration_services=services(VSS=service("VSS", enabled=False)))
    verdict = predict(broken, policy, None)
    assert (verdict.mode, verdict.consistency, verdict.meets_policy, verdict.downtime_s) == (
        mode,
        consistency,
        True,
        None,
    )


@pytest.mark.parametrize("state", [VMState.Saved, VMState.FastSaved])
@pytest.mark.parametrize("policy", POLICIES)
def test_saved_vms_are_crash_consistent_without_their_memory_state(state, policy):
    """Review fix 4: the disks of a saved VM, without its .vmrs, are what a power cut leaves."""
    saved = vm(state=state, integration_services=services(VSS=service("VSS", enabled=False)))
    verdict = predict(saved, policy, None)
    meets = policy.consistency == "crash"
    assert (verdict.mode, verdict.consistency, verdict.meets_policy, verdict.downtime_s) == (
        "saved",
        "saved-state",
        meets,
        None,
    )
    assert not verdict.vmrs_captured and "memory state (.vmrs) is not captured" in verdict.summary
    assert ("below policy" in verdict.summary) == (not meets)


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


def test_shutdown_does_not_fall_back_to_a_save_that_would_not_meet_the_policy():
    machine = vm(integration_services=services(VSS=VSS_STATES["disabled"], Shutdown=service("Shutdown", enabled=False)))
    verdict = predict(machine, Policy("filesystem", "shutdown"), None)
    assert (verdict.mode, verdict.consistency, verdict.meets_policy) == ("live", "crash", False)
    assert any("-Name 'Shutdown'" in i for i in verdict.improvements)


def test_shutdown_falls_back_to_save_when_crash_is_enough_and_a_live_checkpoint_fails():
    machine = vm(
        integration_services=services(VSS=VSS_STATES["disabled"], Shutdown=service("Shutdown", enabled=False)),
        checkpoint_type=CheckpointType.ProductionOnly,
    )
    verdict = predict(machine, Policy("crash", "shutdown"), None)
    assert (verdict.mode, verdict.consistency, verdict.downtime_s) == ("saved", "saved-state", SAVE_S)
    assert any("-Name 'Shutdown'" in i for i in verdict.improvements)


def test_saved_state_downtime_grows_with_memory():
    def saved(memory: int):
        machine = running("disabled", CheckpointType.ProductionOnly, memory=Memory(startup_bytes=memory * GIB))
        return predict(machine, Policy("crash", "save"), None)

    assert (saved(1).downtime_s, saved(16).downtime_s) == (4.0, 34.0)


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
        "vmrs_captured",
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


def test_a_host_before_windows_server_2016_backs_nothing_up_and_says_why():
    """Review fix 7: no recovery checkpoints, reference points or RCT before build 14393."""
    old = Host("HV2012", os_caption="Microsoft Windows Server 2012 R2 Datacenter", os_build="9600")
    for machine in (HEALTHY, vm(state=VMState.Off), vm(state=VMState.Saved)):
        verdict = predict(machine, Policy("crash", "shutdown"), GUESTS["agent"], old)
        assert (verdict.mode, verdict.meets_policy) == ("none", False)
        assert "build 9600, older than Windows Server 2016" in verdict.summary
        assert "no recovery checkpoints, reference points or resilient change tracking" in verdict.summary
        assert any("Export-VM" in i for i in verdict.improvements)
    current = Host("HV2016", os_build="14393")
    assert predict(HEALTHY, Policy(), GUESTS["agent"], current).mode == "live"
    assert predict(HEALTHY, Policy(), GUESTS["agent"], Host("HV?")).mode == "live"  # build unknown: not refused


def test_a_disk_the_host_cannot_read_fails_the_vm_with_the_message():
    """Review fix 5: backup refuses the VM (a snapshot missing a disk is not a backup of the VM)."""
    unreadable = disk(1, vhd_error="the file was not found", format=None, type=None, size=0)
    verdict = predict(vm(disks=(disk(0), unreadable)), Policy(), GUESTS["agent"])
    assert (verdict.mode, verdict.meets_policy) == ("none", False)
    assert "cannot read disk SCSI:0:1" in verdict.summary and "the file was not found" in verdict.summary


def test_fibre_channel_adapters_are_left_out_like_pass_through_disks():
    adapter = FibreChannelAdapter("Fibre Channel Adapter", "SAN-A")
    verdict = predict(vm(fibre_channel_adapters=(adapter,)), Policy(), GUESTS["agent"])
    assert (verdict.mode, verdict.consistency) == ("live", "application")
    assert verdict.skipped_disks == ("Fibre Channel adapter Fibre Channel Adapter (SAN SAN-A)",)
    assert verdict.summary.endswith("the LUNs of Fibre Channel adapter Fibre Channel Adapter (SAN SAN-A) not backed up")
