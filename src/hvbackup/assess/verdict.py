"""The verdict for one VM: the backup mode and consistency it will get under the policy.

The backup run plans each VM from this verdict, so what `assess` predicts and what `backup`
does agree by construction. The decision rules are written out in docs/ASSESS.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hvbackup.assess.guest_report import GuestReport
from hvbackup.assess.outlook import OFF_STATES, PAUSED_STATES, RUNNING_STATES, SAVED_STATES, LiveOutlook, live_outlook
from hvbackup.assess.policy import Policy
from hvbackup.assess.remedies import enable_service, ps
from hvbackup.hyperv.enums import CheckpointType
from hvbackup.hyperv.model import VM, Host
from hvbackup.vocabulary import BackupMode, Consistency, Downtime

GIB = 1024**3
SAVE_FIXED_S = 2.0  # the checkpoint itself, plus starting the save and the restore
SAVE_RATE = GIB  # bytes of memory written (save) and read back (restore) per second
SHUTDOWN_BOOT_S = 60.0  # a clean guest shutdown and boot; depends on the guest, so only a rough figure
CAPTURES_VMRS = False
"""Does a backup capture a saved VM's memory state (.vmrs) with its disks, so that it restores? Not
yet (the checkpoint's configuration files are not captured): a saved state then ranks with crash."""
NO_VMRS = "a saved VM's disks alone are crash-consistent: its memory state (.vmrs) is not captured"


@dataclass(frozen=True)
class Verdict:
    mode: BackupMode
    consistency: Consistency
    meets_policy: bool
    summary: str
    downtime_s: float | None
    skipped_disks: tuple[str, ...]  # pass-through disks (controller address) and Fibre Channel adapters left out
    improvements: tuple[str, ...]  # what to change for a better verdict (plain words + command)
    vmrs_captured: bool = CAPTURES_VMRS  # a saved state restores with its memory (Consistency.rank)

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": str(self.mode),
            "consistency": str(self.consistency),
            "meets_policy": self.meets_policy,
            "summary": self.summary,
            "downtime_s": self.downtime_s,
            "skipped_disks": list(self.skipped_disks),
            "improvements": list(self.improvements),
            "vmrs_captured": self.vmrs_captured,
        }


def save_downtime_s(vm: VM) -> float:
    """Save and restore the memory at about 1 GiB/s each way, plus the checkpoint (startup memory: the
    inventory does not carry what a dynamic-memory VM has assigned right now)."""
    return round(SAVE_FIXED_S + 2 * vm.memory.startup_bytes / SAVE_RATE, 1)


def predict(vm: VM, policy: Policy, guest: dict | None, host: Host | None = None) -> Verdict:
    skipped = (
        *(d.address for d in vm.disks if d.is_passthrough),
        *(a.label for a in vm.fibre_channel_adapters),
    )
    refusal = _refusal(vm, host)
    if refusal is not None:
        base = Verdict(BackupMode.none, Consistency.none, False, refusal[0], None, skipped, refusal[1])
    elif vm.state in OFF_STATES:
        base = Verdict(BackupMode.offline, Consistency.offline, True, "offline (the VM is off)", None, skipped, ())
    elif vm.state in SAVED_STATES:
        base = _saved(vm, policy, skipped)
    elif vm.state in RUNNING_STATES or vm.state in PAUSED_STATES:
        base = _running(vm, policy, live_outlook(vm, GuestReport(guest) if guest is not None else None), skipped)
    else:
        summary = f"cannot be backed up now: the VM is {vm.state.name}; run again once it is running, off or saved"
        base = Verdict(BackupMode.none, Consistency.none, False, summary, None, skipped, ())
    return _with_skipped_disks(base)


def _refusal(vm: VM, host: Host | None) -> tuple[str, tuple[str, ...]] | None:
    """Why no backup of this VM can be taken at all (summary, improvements), or None."""
    problem = host.backup_checkpoints_problem() if host is not None else None
    if problem is not None:
        return (
            f"cannot be backed up: {problem}",
            (
                "upgrade the host to Windows Server 2016 or later; until then hvbackup takes no backup of it, not even "
                f"offline: export the VM while it is off (Export-VM -Name {ps(vm.name)} -Path <folder>) and back the "
                "exported disks up with `hvbackup image backup`",
            ),
        )
    unreadable = [d for d in vm.disks if d.vhd_error]
    if unreadable:
        reasons = "; ".join(f"disk {d.address} ({d.path}): {d.vhd_error}" for d in unreadable)
        return (
            f"cannot be backed up: the host cannot read {reasons}",
            (
                "make every disk file readable by the host (a missing file, or an SMB share the remote session "
                "cannot reach: constrained delegation for the share), or detach the disk",
            ),
        )
    return None


def _saved(vm: VM, policy: Policy, skipped: tuple[str, ...]) -> Verdict:
    meets = policy.accepts(Consistency.saved_state, vmrs_captured=CAPTURES_VMRS)
    summary = "saved state (the VM is saved), no extra downtime"
    if CAPTURES_VMRS:
        return Verdict(BackupMode.saved, Consistency.saved_state, meets, summary, None, skipped, ())
    summary += f"; {NO_VMRS}"
    improvements: tuple[str, ...] = ()
    if not meets:
        summary += f" — below policy ({policy.consistency} required)"
        improvements = (f"start the VM for a live backup: Start-VM -Name {ps(vm.name)}",)
    return Verdict(BackupMode.saved, Consistency.saved_state, meets, summary, None, skipped, improvements)


def _running(vm: VM, policy: Policy, outlook: LiveOutlook, skipped: tuple[str, ...]) -> Verdict:
    live = _live_consistency(vm, outlook)
    improvements = _improvements(outlook, live)
    if live is not None and policy.accepts(live):
        return Verdict(BackupMode.live, live, True, _live_summary(live, outlook), None, skipped, improvements)
    if policy.allow_downtime == Downtime.shutdown and _can_shut_down(vm):
        summary = f"needs shutdown: unavailable for about {SHUTDOWN_BOOT_S:.0f} s (guest shutdown and boot)"
        return Verdict(BackupMode.shutdown, Consistency.offline, True, summary, SHUTDOWN_BOOT_S, skipped, improvements)
    saving_meets = policy.accepts(Consistency.saved_state, vmrs_captured=CAPTURES_VMRS)
    if policy.allow_downtime in (Downtime.save, Downtime.shutdown) and saving_meets:
        downtime = save_downtime_s(vm)
        summary = f"needs saved state: unavailable for about {downtime:.0f} s"
        if policy.allow_downtime == Downtime.shutdown:
            summary += " (no clean shutdown: the Shutdown integration service is off or the guest does not answer)"
            improvements += (f"for a clean shutdown instead — fix: {enable_service(vm.name, 'Shutdown')}",)
        return Verdict(BackupMode.saved, Consistency.saved_state, True, summary, downtime, skipped, improvements)
    downtime_hint = _downtime_hint(vm, saving_meets)
    no_save = f"; saving the VM would not help: {NO_VMRS}" if policy.allow_downtime != Downtime.never else ""
    if live is None:
        reasons = "; ".join(o.reason for o in outlook.obstacles)
        summary = (
            f"cannot be backed up: {reasons}, and checkpoint type ProductionOnly forbids a crash-consistent checkpoint"
        )
        return Verdict(
            BackupMode.none, Consistency.none, False, summary + no_save, None, skipped, (*improvements, downtime_hint)
        )
    summary = f"{_live_summary(live, outlook)} — below policy ({policy.consistency} required){no_save}"
    return Verdict(BackupMode.live, live, False, summary, None, skipped, (*improvements, downtime_hint))


def _downtime_hint(vm: VM, saving_meets: bool) -> str:
    if saving_meets:
        return f"or allow downtime: --allow-downtime save (about {save_downtime_s(vm):.0f} s)"
    if _can_shut_down(vm):
        return f"or allow downtime: --allow-downtime shutdown (about {SHUTDOWN_BOOT_S:.0f} s)"
    return (
        "or allow downtime: --allow-downtime shutdown, once the guest can shut down cleanly — fix: "
        f"{enable_service(vm.name, 'Shutdown')}"
    )


def _live_consistency(vm: VM, outlook: LiveOutlook) -> Consistency | None:
    """What a live checkpoint gives; None when it fails outright."""
    if outlook.can_freeze:
        return outlook.consistency
    if vm.checkpoint_type == CheckpointType.ProductionOnly:
        return None
    return Consistency.crash


def _live_summary(live: Consistency, outlook: LiveOutlook) -> str:
    if live == Consistency.crash:
        return "crash-consistent: " + "; ".join(o.reason for o in outlook.obstacles)
    summary = f"live, {live}-consistent"
    return f"{summary} ({outlook.note})" if outlook.note else summary


def _improvements(outlook: LiveOutlook, live: Consistency | None) -> tuple[str, ...]:
    if not outlook.can_freeze:
        return tuple(f"{o.reason} — fix: {o.fix}" for o in outlook.obstacles)
    if live == Consistency.filesystem and outlook.upgrade:
        return (f"for application consistency — {outlook.upgrade}",)
    return ()


def _can_shut_down(vm: VM) -> bool:
    service = vm.integration_service("Shutdown")
    return vm.state in RUNNING_STATES and service is not None and service.enabled and not service.guest_unreachable


def _with_skipped_disks(verdict: Verdict) -> Verdict:
    if not verdict.skipped_disks:
        return verdict
    disks = ", ".join(verdict.skipped_disks)
    return Verdict(
        verdict.mode,
        verdict.consistency,
        verdict.meets_policy,
        f"{verdict.summary}; {_skipped_words(verdict.skipped_disks)} {disks} not backed up",
        verdict.downtime_s,
        verdict.skipped_disks,
        (
            *verdict.improvements,
            f"to include {disks}: move the data to a VHDX disk (pass-through disks and Fibre Channel LUNs cannot be "
            "checkpointed)",
        ),
        verdict.vmrs_captured,
    )


def _skipped_words(skipped: tuple[str, ...]) -> str:
    adapters = [s for s in skipped if s.startswith("Fibre Channel")]
    if not adapters:
        return "pass-through disk(s)"
    if len(adapters) == len(skipped):
        return "the LUNs of"
    return "pass-through disk(s) and the LUNs of"
