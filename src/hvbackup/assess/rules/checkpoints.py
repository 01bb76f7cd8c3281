"""Configuration version, checkpoint type, leftover checkpoints and AVHDX files, busy VMs
(docs/ASSESS.md §1, §5, §7)."""

from __future__ import annotations

from hvbackup.assess.finding import ADVICE, BLOCKER, INFO, WARNING, Finding
from hvbackup.assess.outlook import RUNNING_STATES, live_outlook, version_too_old
from hvbackup.assess.remedies import ps, update_version
from hvbackup.assess.rules.registry import Facts, rule
from hvbackup.hyperv.enums import CheckpointType
from hvbackup.hyperv.model import ORPHAN_AVHDX, Orphan


def _set_production(vm: str) -> str:
    return f"Set-VM -Name {ps(vm)} -CheckpointType Production"


@rule("config-version", "Configuration version below 6.2", BLOCKER, "docs/ASSESS.md §1")
def config_version(facts: Facts) -> list[Finding]:
    vm = facts.vm
    if not version_too_old(vm):
        return []
    return [
        Finding(
            "config-version",
            f"Configuration version {vm.version} is too old for production checkpoints and change tracking (6.2 needed)",
            BLOCKER,
            f"Version={vm.version}",
            update_version(vm.name),
        )
    ]


@rule("host-version", "Host older than Windows Server 2016", BLOCKER, "docs/HYPERV.md §17")
def host_version(facts: Facts) -> list[Finding]:
    problem = facts.host.backup_checkpoints_problem() if facts.host is not None else None
    if facts.host is None or problem is None:
        return []
    return [
        Finding(
            "host-version",
            f"The host cannot take a backup this way: {problem}",
            BLOCKER,
            f"OsCaption={facts.host.os_caption or '?'}; OsBuild={facts.host.os_build}",
            "upgrade the host to Windows Server 2016 or later (then: Update-VMVersion on each VM); until then "
            f"hvbackup backs nothing up here: Export-VM -Name {ps(facts.vm.name)} -Path <folder> while it is off, "
            "and hvbackup image backup the exported disks",
        )
    ]


@rule("checkpoint-type", "Checkpoint type against the policy", WARNING, "docs/ASSESS.md §1")
def checkpoint_type(facts: Facts) -> list[Finding]:
    vm, policy = facts.vm, facts.policy
    kind = vm.checkpoint_type
    evidence = f"CheckpointType={kind.name}; policy: {policy.consistency} or better"
    if kind == CheckpointType.ProductionOnly:
        return _production_only(facts, evidence)
    if kind == CheckpointType.Standard:
        severity = INFO if policy.consistency == "crash" else WARNING
        title = "Checkpoint type Standard: checkpoints taken of this VM never freeze the guest and hold its memory"
        return [Finding("checkpoint-type", title, severity, evidence, _set_production(vm.name))]
    if kind == CheckpointType.Disabled:
        title = "Checkpoints are disabled on this VM: nobody can take a checkpoint before a risky change"
        return [Finding("checkpoint-type", title, WARNING, evidence, _set_production(vm.name))]
    return []


def _production_only(facts: Facts, evidence: str) -> list[Finding]:
    vm = facts.vm
    outlook = live_outlook(vm, facts.guest)
    if not outlook.can_freeze and vm.state in RUNNING_STATES:
        reasons = "; ".join(o.reason for o in outlook.obstacles)
        title = "Checkpoint type ProductionOnly while the guest cannot freeze: live checkpoints fail"
        return [Finding("checkpoint-type", title, BLOCKER, f"{evidence}; {reasons}", _set_production(vm.name))]
    if facts.policy.consistency == "crash":
        title = "Checkpoint type ProductionOnly fails a backup when the freeze fails, though the policy accepts crash-consistent"
        return [Finding("checkpoint-type", title, WARNING, evidence, _set_production(vm.name))]
    title = "Checkpoint type ProductionOnly: a failed freeze fails the checkpoint instead of falling back"
    return [Finding("checkpoint-type", title, INFO, evidence, "none needed: it matches the policy")]


def _remove_checkpoint(vm: str, orphan: Orphan) -> str:
    if orphan.id:
        return f"Get-VMSnapshot -VMName {ps(vm)} | Where-Object Id -eq {ps(orphan.id)} | Remove-VMSnapshot"
    return f"Remove-VMSnapshot -VMName {ps(vm)} -Name {ps(orphan.name or '')}"


@rule("orphan-checkpoint", "Leftover backup checkpoint", WARNING, "docs/ASSESS.md §7; DESIGN.md (orphans)")
def orphan_checkpoint(facts: Facts) -> list[Finding]:
    vm = facts.vm
    return [
        Finding(
            "orphan-checkpoint",
            f"Checkpoint {orphan.name or orphan.id} was left by an earlier backup"
            f"{' (hvbackup)' if orphan.is_ours else ''}: its differencing disks keep growing",
            WARNING,
            f"{orphan.kind} {orphan.name or ''} {orphan.id or ''} created {orphan.created or '?'} {orphan.detail}".strip(),
            _remove_checkpoint(vm.name, orphan),
        )
        for orphan in facts.orphans
        if orphan.kind != ORPHAN_AVHDX
    ]


@rule("orphan-avhdx", "AVHDX file no disk chain uses", WARNING, "docs/ASSESS.md §7")
def orphan_avhdx(facts: Facts) -> list[Finding]:
    return [
        Finding(
            "orphan-avhdx",
            f"{orphan.path} is a differencing disk no checkpoint or disk of the VM uses",
            WARNING,
            f"{orphan.path} created {orphan.created or '?'} {orphan.detail}".strip(),
            f"Get-VHD -Path {ps(orphan.path or '')} | Select-Object Path, ParentPath, FileSize"
            f"  # check nothing needs it, then: Remove-Item -LiteralPath {ps(orphan.path or '')}",
        )
        for orphan in facts.orphans
        if orphan.kind == ORPHAN_AVHDX
    ]


@rule("user-checkpoints", "User checkpoints present", ADVICE, "docs/ASSESS.md §5")
def user_checkpoints(facts: Facts) -> list[Finding]:
    vm = facts.vm
    orphan_ids = {o.id for o in facts.orphans}
    mine = [c for c in vm.checkpoints if not c.is_ours and not c.is_recovery and c.id not in orphan_ids]
    if not mine:
        return []
    names = ", ".join(c.name for c in mine)
    return [
        Finding(
            "user-checkpoints",
            f"{len(mine)} user checkpoint(s): the VM runs on a differencing-disk chain that grows until they are removed",
            ADVICE,
            names,
            f"Get-VMSnapshot -VMName {ps(vm.name)} -SnapshotType Standard | Remove-VMSnapshot  # once nobody needs them",
        )
    ]


@rule(
    "vm-busy",
    "VM busy (merging, backing up, migrating)",
    WARNING,
    "docs/ASSESS.md §7 (do not touch a chain while merging)",
)
def vm_busy(facts: Facts) -> list[Finding]:
    vm = facts.vm
    if not vm.is_busy:
        return []
    statuses = ", ".join(s.name for s in vm.operational_status)
    return [
        Finding(
            "vm-busy",
            "The VM is busy: a backup now waits or fails until the host finishes",
            WARNING,
            f"OperationalStatus={statuses}",
            f"Get-VM -Name {ps(vm.name)} | Select-Object Name, Status  # run the backup once it reads Operating normally",
        )
    ]
