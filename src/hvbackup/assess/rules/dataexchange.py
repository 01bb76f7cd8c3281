"""Data Exchange (KVP): the channel the guest agent's reports travel on (docs/HYPERV.md §13; docs/GUEST.md §15).

The intrinsic items the host reads from the guest (FullyQualifiedDomainName, OSName, OSVersion,
IntegrationServicesVersion, NetworkAddressIPv4; inventory's `VM.guest`) are the evidence: a running
guest that shows none has no working KVP daemon, so neither its readiness report nor any freeze
report can reach the host, and a live backup is never counted application-consistent.
"""

from __future__ import annotations

from hvbackup.assess.finding import ADVICE, ON_GUEST, WARNING, Finding
from hvbackup.assess.outlook import RUNNING_STATES
from hvbackup.assess.remedies import enable_service
from hvbackup.assess.rules.registry import Facts, rule
from hvbackup.hyperv.model import VM
from hvbackup.vocabulary import RequiredConsistency

DATA_EXCHANGE = "Key-Value Pair Exchange"
INTRINSIC_KEYS = ("FullyQualifiedDomainName", "OSName", "OSVersion", "IntegrationServicesVersion", "NetworkAddressIPv4")
START_KVP_DAEMON = "systemctl enable --now hv-kvp-daemon.service || systemctl enable --now hypervkvpd.service"


def intrinsic_evidence(vm: VM) -> str:
    """The intrinsic items the host read, as `Key=value; ...` (the ones assess relies on first)."""
    shown = [k for k in INTRINSIC_KEYS if vm.guest.get(k)] + sorted(k for k in vm.guest if k not in INTRINSIC_KEYS)
    return "; ".join(f"{k}={vm.guest[k]}" for k in shown) or "no intrinsic items"


@rule("kvp-unavailable", "The guest's Data Exchange (KVP) items do not reach the host", WARNING, "docs/HYPERV.md §13")
def kvp_unavailable(facts: Facts) -> list[Finding]:
    vm = facts.vm
    if vm.state not in RUNNING_STATES:
        return []
    service = vm.integration_service(DATA_EXCHANGE)
    severity = WARNING if facts.policy.consistency == RequiredConsistency.application else ADVICE
    title = "The host cannot read the guest's Data Exchange items: the agent's reports cannot reach it"
    if service is None or not service.enabled:
        evidence = "no Data Exchange service in the inventory" if service is None else f"{DATA_EXCHANGE}: Enabled=False"
        return [Finding("kvp-unavailable", title, severity, evidence, enable_service(vm.name, DATA_EXCHANGE))]
    if service.guest_unreachable or not any(vm.guest.get(k) for k in INTRINSIC_KEYS):
        evidence = f"{DATA_EXCHANGE}: {service.status_text or service.status.name}; {intrinsic_evidence(vm)}"
        return [Finding("kvp-unavailable", title, severity, evidence, START_KVP_DAEMON, ON_GUEST)]
    return []
