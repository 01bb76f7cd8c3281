"""Integration services and the guest's VSS daemon (docs/ASSESS.md §2, §3; docs/HYPERV.md §4)."""

from __future__ import annotations

from hvbackup.assess.finding import ADVICE, BLOCKER, INFO, ON_GUEST, WARNING, Finding
from hvbackup.assess.outlook import RUNNING_STATES, vss_service_name
from hvbackup.assess.remedies import LOAD_HV_UTILS, enable_service
from hvbackup.assess.rules.registry import Facts, rule
from hvbackup.hyperv.enums import HeartbeatStatus, IntegrationServiceStatus

LOST_HEARTBEAT = (HeartbeatStatus.NoContact, HeartbeatStatus.LostCommunication, HeartbeatStatus.Error)
TIME_SYNC_SERVICE = "Time Synchronization"


def _running(facts: Facts) -> bool:
    return facts.vm.state in RUNNING_STATES


@rule("vss-ic-disabled", "Backup (VSS) integration service disabled", BLOCKER, "docs/ASSESS.md §2; docs/HYPERV.md §4")
def vss_ic_disabled(facts: Facts) -> list[Finding]:
    vm, service = facts.vm, facts.vm.vss_service
    if service is not None and service.enabled:
        return []
    evidence = "no VSS integration service in the inventory" if service is None else f"{service.name}: Enabled=False"
    return [
        Finding(
            "vss-ic-disabled",
            "The backup (VSS) integration service is off: the guest cannot freeze, live backups are crash-consistent",
            BLOCKER if _running(facts) else WARNING,
            evidence + ("" if _running(facts) else f"; the VM is {vm.state.name}, so this matters once it runs"),
            enable_service(vm.name, vss_service_name(vm)),
        )
    ]


@rule(
    "vss-ic-unreachable",
    "Backup (VSS) integration service: No Contact / Lost Communication",
    BLOCKER,
    "docs/ASSESS.md §3",
)
def vss_ic_unreachable(facts: Facts) -> list[Finding]:
    service = facts.vm.vss_service
    if not _running(facts) or service is None or not service.enabled or not service.guest_unreachable:
        return []
    return [
        Finding(
            "vss-ic-unreachable",
            f"The guest does not answer the backup integration service ({service.status_text or service.status.name})",
            BLOCKER,
            f"{service.name}: PrimaryOperationalStatus={service.status.name}",
            f"{LOAD_HV_UTILS} && hvbackup-guest install",
            ON_GUEST,
        )
    ]


@rule(
    "vss-ic-protocol-mismatch", "Backup (VSS) integration service protocol version mismatch", INFO, "docs/ASSESS.md §3"
)
def vss_ic_protocol_mismatch(facts: Facts) -> list[Finding]:
    service = facts.vm.vss_service
    if service is None or not service.enabled:
        return []
    text = f"{service.status_text} {service.secondary_status_text}".lower()
    if service.status != IntegrationServiceStatus.ProtocolMismatch and "protocol" not in text:
        return []
    return [
        Finding(
            "vss-ic-protocol-mismatch",
            "The backup integration service reports a protocol version mismatch; Linux guests report this while working normally",
            INFO,
            f"{service.name}: {service.status.name}; {service.secondary_status_text or service.status_text}",
            "none needed",
        )
    ]


@rule("heartbeat-lost", "Heartbeat: No Contact / Lost Communication", WARNING, "docs/ASSESS.md §3")
def heartbeat_lost(facts: Facts) -> list[Finding]:
    if not _running(facts) or facts.vm.heartbeat not in LOST_HEARTBEAT:
        return []
    return [
        Finding(
            "heartbeat-lost",
            "The guest's heartbeat does not answer: the guest may hang, or hv_utils is not loaded",
            WARNING,
            f"Heartbeat={facts.vm.heartbeat.name}",
            LOAD_HV_UTILS,
            ON_GUEST,
        )
    ]


@rule("no-vss-daemon", "No VSS daemon in the guest", BLOCKER, "docs/ASSESS.md §2; docs/GUEST.md §9")
def no_vss_daemon(facts: Facts) -> list[Finding]:
    guest = facts.guest
    if guest is None or not guest.lacks_vss_daemon:
        return []
    units = ", ".join(f"{u} ({s})" for u, s in guest.vss_units.items()) or "none"
    return [
        Finding(
            "no-vss-daemon",
            "No VSS daemon runs in the guest: the kernel answers every freeze with a failure",
            BLOCKER if _running(facts) else WARNING,
            f"guest report: no hv_vss_daemon, hypervvssd or hvbackup-guest process; VSS units: {units}",
            "hvbackup-guest install",
            ON_GUEST,
        )
    ]


@rule("stock-vss-daemon", "Stock VSS daemon: filesystem-consistent only", ADVICE, "docs/ASSESS.md §4; docs/GUEST.md")
def stock_vss_daemon(facts: Facts) -> list[Finding]:
    guest = facts.guest
    if guest is None or guest.agent_runs or guest.stock_daemon is None:
        return []
    return [
        Finding(
            "stock-vss-daemon",
            f"The stock VSS daemon {guest.stock_daemon} freezes filesystems but runs no application hooks",
            ADVICE,
            f"guest report: {guest.stock_daemon} pid {(guest.running_daemons or {}).get(guest.stock_daemon, '?')}",
            "hvbackup-guest install",
            ON_GUEST,
        )
    ]


@rule("guest-unknown", "No guest readiness report", INFO, "docs/ASSESS.md §2 (the daemon is only visible from inside)")
def guest_unknown(facts: Facts) -> list[Finding]:
    if facts.guest is not None or not _running(facts):
        return []
    return [
        Finding(
            "guest-unknown",
            "Whether a VSS daemon runs in the guest is unknown: no readiness report; the stock daemon is assumed",
            INFO,
            "the host offered no guest readiness report for this VM",
            "hvbackup-guest install && hvbackup-guest check",
            ON_GUEST,
        )
    ]


@rule("time-sync", "Time synchronisation off", WARNING, "docs/ASSESS.md §8; docs/GUEST.md §8")
def time_sync(facts: Facts) -> list[Finding]:
    vm = facts.vm
    service = vm.integration_service(TIME_SYNC_SERVICE)
    host_off = service is not None and not service.enabled
    guest_off = facts.guest.finding("no-time-sync") if facts.guest is not None else []
    if guest_off:
        evidence = guest_off[0].get("evidence", "the guest runs no time service")
        if host_off:
            evidence += f"; {TIME_SYNC_SERVICE} integration service disabled"
        return [
            Finding(
                "time-sync",
                "No time synchronisation in the guest: a restored VM keeps the clock of the backup",
                WARNING,
                evidence,
                guest_off[0].get("remedy") or "apt-get install -y chrony",
                ON_GUEST,
            )
        ]
    if host_off:
        return [
            Finding(
                "time-sync",
                "The Time Synchronization integration service is disabled: after a restore the clock is only "
                "corrected if the guest runs NTP",
                ADVICE,
                f"{TIME_SYNC_SERVICE}: Enabled=False",
                enable_service(vm.name, TIME_SYNC_SERVICE),
            )
        ]
    return []


@rule(
    "shutdown-ic",
    "Shutdown integration service unusable while the policy allows shutdown",
    WARNING,
    "docs/HYPERV.md §8 (InitiateShutdown)",
)
def shutdown_ic(facts: Facts) -> list[Finding]:
    if facts.policy.allow_downtime != "shutdown" or not _running(facts):
        return []
    service = facts.vm.integration_service("Shutdown")
    if service is not None and service.enabled and not service.guest_unreachable:
        return []
    state = "missing" if service is None else "disabled" if not service.enabled else service.status.name
    return [
        Finding(
            "shutdown-ic",
            "The policy allows a clean shutdown, but the Shutdown integration service cannot deliver one: "
            "the backup saves the VM instead",
            WARNING,
            f"Shutdown integration service: {state}",
            enable_service(facts.vm.name, "Shutdown"),
        )
    ]
