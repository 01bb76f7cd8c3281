"""TRIM (fstrim.timer or discard) and time sync (chrony/ntp/timesyncd, the Hyper-V PTP clock)."""

from __future__ import annotations

from hvbackup.guest.mounts import parse_mountinfo
from hvbackup.guest.readiness.findings import Finding, GuestTree

WANTS_DIRS = (
    "/etc/systemd/system/timers.target.wants",
    "/etc/systemd/system/multi-user.target.wants",
    "/etc/systemd/system/sysinit.target.wants",
)
TIME_SERVICES = (
    "chrony.service",
    "chronyd.service",
    "ntp.service",
    "ntpd.service",
    "ntpsec.service",
    "systemd-timesyncd.service",
    "openntpd.service",
)


def enabled_units(tree: GuestTree) -> set[str]:
    return {name for directory in WANTS_DIRS for name in tree.listdir(directory)}


def check_trim(tree: GuestTree) -> list[Finding]:
    if "fstrim.timer" in enabled_units(tree):
        return []
    discard = [
        m.mountpoint
        for m in parse_mountinfo(tree.read("/proc/self/mountinfo") or "")
        if "discard" in m.super_options or "discard" in m.options
    ]
    if discard:
        return []
    return [
        Finding(
            "no-trim",
            "advice",
            "Freed blocks are never trimmed: dynamic VHDX files only grow and "
            "backups read blocks the guest no longer uses",
            "fstrim.timer is not enabled and no mount uses discard",
            "systemctl enable --now fstrim.timer",
        )
    ]


def hyperv_ptp(tree: GuestTree) -> str | None:
    for dev in tree.listdir("/sys/class/ptp"):
        if (tree.read(f"/sys/class/ptp/{dev}/clock_name") or "").strip() == "hyperv":
            return dev
    return None


def check_time_sync(tree: GuestTree) -> list[Finding]:
    units = enabled_units(tree) & set(TIME_SERVICES)
    if units:
        return []
    ptp = hyperv_ptp(tree)
    remedy = "apt-get install -y chrony" + (
        f" && echo 'refclock PHC /dev/{ptp} poll 3 dpoll -2 offset 0' >> /etc/chrony/chrony.conf && "
        "systemctl restart chrony"
        if ptp
        else ""
    )
    return [
        Finding(
            "no-time-sync",
            "warning",
            "No time synchronisation service is enabled",
            f"none of {', '.join(TIME_SERVICES)} is enabled"
            + (f"; the Hyper-V PTP clock is /dev/{ptp}" if ptp else ""),
            remedy,
        )
    ]
