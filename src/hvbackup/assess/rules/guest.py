"""Findings that only the guest can see, read from its readiness report (docs/GUEST.md §9, §12;
docs/ASSESS.md §6, §8, §9; docs/GUEST.md "Readiness")."""

from __future__ import annotations

from typing import Any

from hvbackup.assess.finding import ADVICE, ON_GUEST, WARNING, Finding
from hvbackup.assess.remedies import sh
from hvbackup.assess.rules.registry import Facts, rule

GOOD_SCHEDULERS = ("none", "noop")
SCHEDULER_RULE = "/etc/udev/rules.d/60-hvbackup-scheduler.rules"


def _relay(facts: Facts, guest_id: str, rule_id: str, severity: str) -> list[Finding]:
    """The guest agent's own finding, under this rule's id and severity."""
    if facts.guest is None:
        return []
    return [_from_guest(item, rule_id, severity) for item in facts.guest.finding(guest_id)]


def _from_guest(item: dict[str, Any], rule_id: str, severity: str) -> Finding:
    return Finding(
        rule_id,
        str(item.get("title", rule_id)),
        severity,
        str(item.get("evidence", "")),
        str(item.get("remedy", "")),
        ON_GUEST,
    )


@rule("io-scheduler", "Guest I/O scheduler not none/noop", ADVICE, "docs/ASSESS.md §6; docs/GUEST.md §12")
def io_scheduler(facts: Facts) -> list[Finding]:
    if facts.guest is None:
        return []
    findings = []
    for disk in facts.guest.disks:
        name, scheduler = str(disk.get("name", "")), disk.get("scheduler")
        if not name or scheduler in (None, *GOOD_SCHEDULERS):
            continue
        persist = 'ACTION=="add|change", KERNEL=="sd[a-z]*", ATTR{queue/scheduler}="none"'
        findings.append(
            Finding(
                "io-scheduler",
                f"{name} uses the {scheduler} I/O scheduler; on Hyper-V the host schedules, so none (noop) is recommended",
                ADVICE,
                f"/sys/block/{name}/queue/scheduler: {disk.get('available') or scheduler}",
                f"echo none > /sys/block/{name}/queue/scheduler && echo {sh(persist)} > {SCHEDULER_RULE}",
                ON_GUEST,
            )
        )
    return findings


@rule("fstab-device-name", "fstab mounts by kernel device name", WARNING, "docs/ASSESS.md §8")
def fstab_device_name(facts: Facts) -> list[Finding]:
    return _relay(facts, "fstab-device-name", "fstab-device-name", WARNING)


@rule("xfs-relatime", "XFS mounted with relatime", ADVICE, "docs/ASSESS.md §9 (velero-io/velero#2113)")
def xfs_relatime(facts: Facts) -> list[Finding]:
    return _relay(facts, "xfs-relatime", "xfs-relatime", ADVICE)


@rule("unfrozen-data-mount", "Application data on NFS, FUSE or loop mounts", WARNING, "docs/ASSESS.md §9")
def unfrozen_data_mount(facts: Facts) -> list[Finding]:
    if facts.guest is None:
        return []
    return [
        Finding(
            "unfrozen-data-mount",
            f"{skip.get('mountpoint')} ({skip.get('fstype')}) is never frozen: data kept there is not consistent in a backup",
            WARNING,
            f"{skip.get('source')} on {skip.get('mountpoint')}: {skip.get('reason', '')}",
            f"keep application data off {skip.get('mountpoint')}, or quiesce it in a hook: /etc/hvbackup/hooks.d",
            ON_GUEST,
        )
        for skip in facts.guest.unfrozen_data_mounts()
    ]


@rule("no-trim", "TRIM off in the guest", ADVICE, "docs/ASSESS.md §6")
def no_trim(facts: Facts) -> list[Finding]:
    return _relay(facts, "no-trim", "no-trim", ADVICE)
