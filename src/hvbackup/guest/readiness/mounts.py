"""What a freeze covers and what it cannot (docs/GUEST.md §5), and XFS with relatime (docs/ASSESS.md §9)."""

from __future__ import annotations

from hvbackup.guest.mounts import FreezePlan, Topology, parse_mountinfo, plan_freeze
from hvbackup.guest.readiness.findings import Finding, GuestTree

HARMLESS_SKIPS = ("read-only", "vfat", "iso9660", "squashfs", "same filesystem", "is not a block-device")


def freeze_plan(tree: GuestTree) -> FreezePlan:
    text = tree.read("/proc/self/mountinfo") or ""
    return plan_freeze(parse_mountinfo(text), None, Topology(tree.root), check_paths=False)


def check_freeze_coverage(tree: GuestTree) -> list[Finding]:
    findings = []
    for skip in freeze_plan(tree).skips:
        if any(h in skip.reason for h in HARMLESS_SKIPS) or skip.mount.mountpoint.startswith(
            ("/proc", "/sys", "/dev", "/run")
        ):
            continue
        findings.append(
            Finding(
                "not-frozen-mount",
                "warning",
                f"{skip.mount.mountpoint} ({skip.mount.fstype}) is not covered by the freeze",
                f"{skip.mount.source} on {skip.mount.mountpoint}: {skip.reason}",
                f"keep application data off {skip.mount.mountpoint}, or quiesce it in a hook in /etc/hvbackup/hooks.d",
            )
        )
    return findings


def check_xfs_relatime(tree: GuestTree) -> list[Finding]:
    findings = []
    for mount in parse_mountinfo(tree.read("/proc/self/mountinfo") or ""):
        if mount.fstype == "xfs" and "relatime" in mount.options:
            findings.append(
                Finding(
                    "xfs-relatime",
                    "advice",
                    f"XFS {mount.mountpoint} is mounted with relatime",
                    f"options {','.join(mount.options)}; read-after-write atime updates can stall around a freeze",
                    f"mount -o remount,noatime {mount.mountpoint}  # and add noatime to its /etc/fstab options",
                )
            )
    return findings
