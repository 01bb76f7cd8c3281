"""A finding: what a rule saw on one VM, why it matters, and the exact command that fixes it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

BLOCKER = "blocker"
WARNING = "warning"
ADVICE = "advice"
INFO = "info"
SEVERITIES = (BLOCKER, WARNING, ADVICE, INFO)  # worst first
SEVERITY_ORDER = {s: i for i, s in enumerate(SEVERITIES)}

ON_HOST = "host"  # PowerShell on the Hyper-V host
ON_GUEST = "guest"  # a shell inside the VM, as root


@dataclass(frozen=True)
class Finding:
    id: str
    title: str
    severity: str
    evidence: str
    remedy: str
    run_on: str = ON_HOST  # where the remedy command runs

    def __post_init__(self) -> None:
        if self.severity not in SEVERITY_ORDER:
            raise ValueError(f"unknown severity {self.severity!r}")

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (SEVERITY_ORDER[f.severity], f.id))


def worst_severity(findings: Iterable[Finding]) -> str | None:
    ranks = [SEVERITY_ORDER[f.severity] for f in findings]
    return SEVERITIES[min(ranks)] if ranks else None
