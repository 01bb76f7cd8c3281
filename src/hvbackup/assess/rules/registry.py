"""The rule registry: every rule with its id, usual severity, source, and check function."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hvbackup.assess.finding import Finding
from hvbackup.assess.guest_report import GuestReport
from hvbackup.assess.policy import Policy
from hvbackup.hyperv.model import VM, Host, Orphan


@dataclass(frozen=True)
class Facts:
    """Everything a rule may look at for one VM."""

    vm: VM
    policy: Policy = field(default_factory=Policy)
    guest: GuestReport | None = None
    orphans: tuple[Orphan, ...] = ()
    host: Host | None = None


Check = Callable[[Facts], list[Finding]]


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: str  # the severity it usually reports; some rules raise or lower it with the context
    source: str  # where the fact behind the rule is documented (docs/ASSESS.md lists them)
    check: Check


RULES: list[Rule] = []


def rule(rule_id: str, title: str, severity: str, source: str) -> Callable[[Check], Check]:
    """Register a check function under `rule_id`."""

    def register(check: Check) -> Check:
        if any(r.id == rule_id for r in RULES):
            raise ValueError(f"rule id {rule_id!r} registered twice")
        RULES.append(Rule(rule_id, title, severity, source, check))
        return check

    return register


def run_rules(facts: Facts) -> list[Finding]:
    findings: list[Finding] = []
    for registered in RULES:
        findings += registered.check(facts)
    return findings
