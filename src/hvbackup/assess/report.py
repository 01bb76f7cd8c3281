"""Assess every VM of a host: findings sorted by severity, the verdict, the worst severity, the exit code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hvbackup.assess.finding import BLOCKER, WARNING, Finding, sort_findings, worst_severity
from hvbackup.assess.guest_report import GuestReport
from hvbackup.assess.policy import Policy
from hvbackup.assess.rules import Facts, run_rules
from hvbackup.assess.verdict import Verdict, predict
from hvbackup.errors import UsageError
from hvbackup.hyperv.host import HyperVHost
from hvbackup.hyperv.model import VM, Host, Orphan

EXIT_CLEAN = 0  # nothing above advice
EXIT_WARNINGS = 2
EXIT_BLOCKERS = 4
EXIT_BY_SEVERITY = {BLOCKER: EXIT_BLOCKERS, WARNING: EXIT_WARNINGS}


@dataclass(frozen=True)
class VmAssessment:
    vm: VM
    findings: tuple[Finding, ...]
    verdict: Verdict
    guest_reported: bool

    @property
    def worst(self) -> str | None:
        return worst_severity(self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            "vm": self.vm.name,
            "vm_id": self.vm.id,
            "state": self.vm.state.name,
            "generation": self.vm.generation,
            "version": self.vm.version,
            "guest_report": self.guest_reported,
            "guest_items": dict(self.vm.guest),  # the intrinsic Data Exchange items (docs/HYPERV.md §13)
            "worst": self.worst,
            "verdict": self.verdict.to_json(),
            "findings": [f.to_json() for f in self.findings],
        }


@dataclass(frozen=True)
class Report:
    host: str
    policy: Policy
    vms: tuple[VmAssessment, ...]
    generated: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))

    @property
    def worst(self) -> str | None:
        return worst_severity(f for vm in self.vms for f in vm.findings)

    @property
    def exit_code(self) -> int:
        return EXIT_BY_SEVERITY.get(self.worst or "", EXIT_CLEAN)

    def counts(self) -> dict[str, int]:
        counts = {"blocker": 0, "warning": 0, "advice": 0, "info": 0}
        for vm in self.vms:
            for finding in vm.findings:
                counts[finding.severity] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "generated": self.generated,
            "policy": self.policy.to_json(),
            "worst": self.worst,
            "exit_code": self.exit_code,
            "counts": self.counts(),
            "vms": [vm.to_json() for vm in self.vms],
        }


def assess_vm(
    vm: VM, policy: Policy, guest: dict | None = None, orphans: Sequence[Orphan] = (), host: Host | None = None
) -> VmAssessment:
    facts = Facts(vm, policy, GuestReport(guest) if guest is not None else None, tuple(orphans), host)
    verdict = predict(vm, policy, guest, host)
    return VmAssessment(vm, tuple(sort_findings(run_rules(facts))), verdict, guest is not None)


def assess_host(host: HyperVHost, policy: Policy, names: Sequence[str] = ()) -> Report:
    """Assess the named VMs (all when none is named), in the order asked, else by name."""
    facts = host.host_info()
    vms = [host.get_vm(name) for name in names] if names else sorted(host.inventory(), key=lambda v: v.name.lower())
    if not vms:
        raise UsageError(f"no VMs on {facts.name}")
    assessments = tuple(
        assess_vm(vm, policy, host.guest_readiness(vm.name), _orphans_of(host, vm), facts) for vm in vms
    )
    return Report(facts.name, policy, assessments)


def _orphans_of(host: HyperVHost, vm: VM) -> list[Orphan]:
    return [o for o in host.list_orphans(vm) if o.vm_id.lower() == vm.id.lower()]
