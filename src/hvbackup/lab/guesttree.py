"""The readiness report of a sample VM: the real `hvbackup-guest check` code run against a guest
tree laid out like that VM's /sys, /proc, /dev and /etc (the layouts tests/guest uses: sysfs ABI
for VMBus devices, NIC drivers and schedulers; /proc/self/mountinfo)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hvbackup.guest.readiness import run_checks

VSS_CLASS = "35fa2e29-ea23-4236-96ae-3a6ebacba440"
NIC_CLASS = "f8615163-df3e-46c5-913f-f2d2f965ed0e"
SCSI_CLASS = "ba6163d9-04a1-4d29-b605-72e2ffb1dc7f"


@dataclass
class GuestFacts:
    """What the readiness checks look at inside one sample guest."""

    integration_services: bool
    vss_daemon: str  # "agent" | "stock" | "none"
    nics: list[str]  # drivers: hv_netvsc (synthetic) or tulip (legacy)
    disks: list[str]  # sda, sdb, ...
    scheduler: str  # active I/O scheduler
    fstab: str
    mountinfo: str


def _write(root: Path, path: str, text: str) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def _link(root: Path, path: str, to: str) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(to, target)


def lay_out(root: Path, facts: GuestFacts) -> None:
    _write(root, "/sys/class/dmi/id/sys_vendor", "Microsoft Corporation\n")
    _write(root, "/sys/class/dmi/id/product_name", "Virtual Machine\n")
    modules = ["ata_piix 36864 0 - Live 0x0"]
    if facts.integration_services:
        modules += ["hv_vmbus 131072 6 - Live 0x0", "hv_utils 49152 0 - Live 0x0", "hv_storvsc 28672 2 - Live 0x0"]
        modules += ["hv_netvsc 98304 0 - Live 0x0"] if "hv_netvsc" in facts.nics else []
        for n, class_id in enumerate([SCSI_CLASS, VSS_CLASS] + [NIC_CLASS] * facts.nics.count("hv_netvsc")):
            _write(root, f"/sys/bus/vmbus/devices/{n:08x}-0000-4000-8000-000000000000/class_id", "{" + class_id + "}\n")
        _write(root, "/dev/vmbus/hv_vss", "")
        _link(root, "/etc/systemd/system/multi-user.target.wants/chrony.service", "/lib/systemd/system/chrony.service")
        _write(root, "/sys/class/ptp/ptp0/clock_name", "hyperv\n")
    if "tulip" in facts.nics:
        modules.append("tulip 65536 0 - Live 0x0")
    _write(root, "/proc/modules", "\n".join(modules) + "\n")
    _write(root, "/proc/1/comm", "systemd\n")
    _write(root, "/proc/1/cmdline", "/sbin/init\0")
    if facts.vss_daemon == "agent":
        _write(root, "/proc/612/comm", "hvbackup-guest\n")
        _write(root, "/proc/612/cmdline", "/usr/bin/python3\0/usr/local/bin/hvbackup-guest\0vssd\0")
        _write(root, "/lib/systemd/system/hv-vss-daemon.service", "[Unit]\n")
        _link(root, "/etc/systemd/system/hv-vss-daemon.service", "/dev/null")
        _write(root, "/etc/systemd/system/hvbackup-guest.service", "[Unit]\n")
    elif facts.vss_daemon == "stock":
        _write(root, "/proc/598/comm", "hv_vss_daemon\n")
        _write(root, "/proc/598/cmdline", "/usr/sbin/hv_vss_daemon\0-n\0")
        _write(root, "/lib/systemd/system/hv-vss-daemon.service", "[Unit]\n")
    for n, driver in enumerate(facts.nics):
        _link(root, f"/sys/class/net/eth{n}/device/driver", f"../../../../bus/drivers/{driver}")
    for disk in facts.disks:
        choices = ["none", "mq-deadline", "kyber", "bfq"]
        _write(
            root,
            f"/sys/block/{disk}/queue/scheduler",
            " ".join(f"[{c}]" if c == facts.scheduler else c for c in choices) + "\n",
        )
    if facts.scheduler == "none":
        _write(
            root,
            "/etc/udev/rules.d/60-scheduler.rules",
            'ACTION=="add|change", KERNEL=="sd[a-z]*", ATTR{queue/scheduler}="none"\n',
        )
    _write(root, "/etc/fstab", facts.fstab)
    _write(root, "/proc/self/mountinfo", facts.mountinfo)
    _link(root, "/etc/systemd/system/timers.target.wants/fstrim.timer", "/lib/systemd/system/fstrim.timer")


def readiness(facts: GuestFacts) -> dict[str, Any]:
    """`hvbackup-guest check --json` as it would print inside this guest."""
    with tempfile.TemporaryDirectory(prefix="hvlab-guest-") as tmp:
        lay_out(Path(tmp), facts)
        return run_checks(Path(tmp))
