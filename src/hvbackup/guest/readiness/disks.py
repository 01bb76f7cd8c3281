"""Disks: I/O scheduler per disk (docs/GUEST.md §12) and fstab by kernel device name (docs/ASSESS.md §8)."""

from __future__ import annotations

import re

from hvbackup.guest.readiness.findings import Finding, GuestTree

DISK_PREFIXES = ("sd", "hd", "vd", "xvd", "nvme")
GOOD_SCHEDULERS = {"none", "noop"}
KERNEL_NAME = re.compile(r"^/dev/(sd[a-z]+|hd[a-z]+|vd[a-z]+|xvd[a-z]+|nvme\d+n\d+)(p?\d+)?$")
UDEV_RULE = "/etc/udev/rules.d/60-hvbackup-scheduler.rules"


def _active(scheduler_line: str) -> str | None:
    match = re.search(r"\[([^\]]+)\]", scheduler_line)
    return match.group(1) if match else (scheduler_line.strip() or None)


def scheduler_rules(tree: GuestTree) -> list[str]:
    found = []
    for directory in ("/etc/udev/rules.d", "/lib/udev/rules.d", "/usr/lib/udev/rules.d"):
        for name in tree.listdir(directory):
            if "queue/scheduler" in (tree.read(f"{directory}/{name}") or ""):
                found.append(f"{directory}/{name}")
    return found


def disk_inventory(tree: GuestTree) -> list[dict[str, str | None]]:
    disks = []
    for name in tree.listdir("/sys/block"):
        if name.startswith(DISK_PREFIXES):
            line = tree.read(f"/sys/block/{name}/queue/scheduler") or ""
            disks.append({"name": name, "scheduler": _active(line), "available": line.strip()})
    return disks


def check_io_scheduler(tree: GuestTree) -> list[Finding]:
    rules = scheduler_rules(tree)
    findings = []
    for disk in disk_inventory(tree):
        if disk["scheduler"] in GOOD_SCHEDULERS or disk["scheduler"] is None:
            continue
        persist = f'echo \'ACTION=="add|change", KERNEL=="sd[a-z]*", ATTR{{queue/scheduler}}="none"\' > {UDEV_RULE}'
        findings.append(
            Finding(
                "io-scheduler",
                "advice",
                f"{disk['name']} uses the {disk['scheduler']} I/O scheduler; Hyper-V recommends none/noop",
                f"/sys/block/{disk['name']}/queue/scheduler: {disk['available']}; "
                f"persistent rule: {', '.join(rules) or 'none'}",
                f"echo none > /sys/block/{disk['name']}/queue/scheduler" + ("" if rules else f" && {persist}"),
            )
        )
    return findings


def check_fstab_device_names(tree: GuestTree) -> list[Finding]:
    findings = []
    for line in (tree.read("/etc/fstab") or "").splitlines():
        fields = line.split()
        if not fields or fields[0].startswith("#") or not KERNEL_NAME.match(fields[0]):
            continue
        device, mountpoint = fields[0], fields[1] if len(fields) > 1 else "?"
        findings.append(
            Finding(
                "fstab-device-name",
                "warning",
                f"/etc/fstab mounts {mountpoint} by kernel device name {device}",
                f"fstab line: {line.strip()}; device names can change order after a restore or a new controller",
                f'sed -i "s|^{device}[[:space:]]|UUID=$(blkid -s UUID -o value {device}) |" /etc/fstab',
            )
        )
    return findings
