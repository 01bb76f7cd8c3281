"""Guest trees for `check --root`: the /sys, /proc, /dev and /etc layouts of real guests, in a directory.

Layouts follow the kernel's sysfs ABI (Documentation/ABI/stable/sysfs-bus-vmbus: class_id with
braces; /sys/class/net/<if>/device/driver a symlink to the driver; /sys/block/<d>/queue/scheduler
with the active one in brackets) and /proc/self/mountinfo (Documentation/filesystems/proc.rst).
"""

from __future__ import annotations

import os
from pathlib import Path

VSS = "35fa2e29-ea23-4236-96ae-3a6ebacba440"
NIC = "f8615163-df3e-46c5-913f-f2d2f965ed0e"
SCSI = "ba6163d9-04a1-4d29-b605-72e2ffb1dc7f"

MOUNTINFO_HEALTHY = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
24 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
25 22 8:17 / /var/lib/postgresql rw,noatime shared:30 - xfs /dev/sdb1 rw,attr2,inode64,noquota
26 22 8:2 / /boot/efi rw,relatime shared:31 - vfat /dev/sda2 rw,fmask=0077
27 22 0:25 / /run rw,nosuid,nodev shared:5 - tmpfs tmpfs rw,size=400000k
"""

MOUNTINFO_PROBLEMS = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
25 22 8:17 / /srv/data rw,relatime shared:30 - xfs /dev/sdb1 rw,attr2,inode64,noquota
28 22 0:40 / /mnt/share rw,relatime shared:40 - nfs4 server:/export rw,vers=4.2
29 22 0:41 / /mnt/sshfs rw,relatime shared:41 - fuse.sshfs user@host:/ rw
30 22 0:42 / /var/lib/docker/overlay2/abc/merged rw,relatime - overlay overlay rw,lowerdir=/a,upperdir=/b
31 22 7:0 / /mnt/image rw,relatime shared:42 - ext4 /dev/loop0 rw
32 22 8:33 / /mnt/ro rw,relatime shared:43 - ext4 /dev/sdc1 ro
33 22 8:17 /sub /srv/bind\\040dir rw,relatime shared:30 - xfs /dev/sdb1 rw
"""


def _write(root: Path, path: str, text: str) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def _link(root: Path, path: str, to: str) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(to, target)


def _vmbus(root: Path, instance: str, class_id: str) -> None:
    _write(root, f"/sys/bus/vmbus/devices/{instance}/class_id", "{" + class_id + "}\n")


def _nic(root: Path, name: str, driver: str) -> None:
    _link(root, f"/sys/class/net/{name}/device/driver", f"../../../../bus/drivers/{driver}")


def _disk(root: Path, name: str, scheduler: str) -> None:
    _write(root, f"/sys/block/{name}/queue/scheduler", scheduler + "\n")


def _process(root: Path, pid: int, comm: str, cmdline: str) -> None:
    _write(root, f"/proc/{pid}/comm", comm + "\n")
    _write(root, f"/proc/{pid}/cmdline", cmdline.replace(" ", "\0") + "\0")


def _hyperv_base(root: Path) -> None:
    _write(root, "/sys/class/dmi/id/sys_vendor", "Microsoft Corporation\n")
    _write(root, "/sys/class/dmi/id/product_name", "Virtual Machine\n")
    _write(root, "/sys/class/dmi/id/product_version", "Hyper-V UEFI Release v4.1\n")
    _vmbus(root, "f8b3781b-1e82-4818-a1c3-63d806ec15bb", SCSI)
    _vmbus(root, "9be4ea2c-7e38-4cfe-a3c4-4bd1a3a0c1a2", NIC)


def healthy(root: Path) -> Path:
    """Hyper-V Gen2 guest running our agent, synthetic NIC, none scheduler with a udev rule, UUID fstab."""
    _hyperv_base(root)
    _vmbus(root, "2dd1ce17-079e-403c-b352-a1921ee207ee", VSS)
    _write(root, "/dev/vmbus/hv_vss", "")
    _write(
        root,
        "/proc/modules",
        "hv_utils 49152 0 - Live 0x0\nhv_netvsc 98304 0 - Live 0x0\n"
        "hv_storvsc 28672 2 - Live 0x0\nhv_vmbus 131072 6 hv_utils - Live 0x0\n",
    )
    _process(root, 1, "systemd", "/sbin/init")
    _process(root, 612, "hvbackup-guest", "/usr/bin/python3 /usr/local/bin/hvbackup-guest vssd")
    _link(root, "/etc/systemd/system/hv-vss-daemon.service", "/dev/null")
    _write(root, "/lib/systemd/system/hv-vss-daemon.service", "[Unit]\n")
    _write(root, "/etc/systemd/system/hvbackup-guest.service", "[Unit]\n")
    _nic(root, "eth0", "hv_netvsc")
    _write(root, "/sys/class/net/lo/operstate", "unknown\n")
    _disk(root, "sda", "[none] mq-deadline kyber bfq")
    _disk(root, "sdb", "[none] mq-deadline kyber bfq")
    _write(
        root,
        "/etc/udev/rules.d/60-scheduler.rules",
        'ACTION=="add|change", KERNEL=="sd[a-z]*", ATTR{queue/scheduler}="none"\n',
    )
    _write(
        root,
        "/etc/fstab",
        "# <file system> <mount point> <type> <options> <dump> <pass>\n"
        "UUID=0a1b2c3d-1111-2222-3333-444455556666 / ext4 errors=remount-ro 0 1\n"
        "LABEL=pgdata /var/lib/postgresql xfs noatime,nofail 0 2\n"
        "PARTUUID=12345678-02 /boot/efi vfat umask=0077 0 1\n",
    )
    _write(root, "/proc/self/mountinfo", MOUNTINFO_HEALTHY)
    _link(root, "/etc/systemd/system/timers.target.wants/fstrim.timer", "/lib/systemd/system/fstrim.timer")
    _link(root, "/etc/systemd/system/multi-user.target.wants/chrony.service", "/lib/systemd/system/chrony.service")
    _write(root, "/sys/class/ptp/ptp0/clock_name", "hyperv\n")
    return root


def problems(root: Path) -> Path:
    """Hyper-V Gen1 guest with the stock RHEL daemon, legacy+synthetic NICs, mq-deadline, /dev/sdX fstab."""
    _hyperv_base(root)
    _vmbus(root, "2dd1ce17-079e-403c-b352-a1921ee207ee", VSS)
    _write(root, "/dev/vmbus/hv_vss", "")
    _write(
        root,
        "/proc/modules",
        "hv_utils 49152 0 - Live 0x0\nhv_storvsc 28672 2 - Live 0x0\n"
        "hv_vmbus 131072 6 hv_utils - Live 0x0\ntulip 65536 0 - Live 0x0\n",
    )
    _process(root, 1, "systemd", "/sbin/init")
    _process(root, 733, "hypervvssd", "/usr/sbin/hypervvssd -n")
    _write(root, "/usr/lib/systemd/system/hypervvssd.service", "[Unit]\n")
    _nic(root, "eth0", "hv_netvsc")
    _nic(root, "eth1", "tulip")
    _disk(root, "sda", "none [mq-deadline] kyber bfq")
    _disk(root, "sdb", "[none] mq-deadline kyber bfq")
    _write(
        root,
        "/etc/fstab",
        "/dev/sda1 / ext4 defaults 0 1\n/dev/sdb1 /srv/data xfs defaults 0 2\n"
        "UUID=aaaa /mnt/ro ext4 ro 0 2\nserver:/export /mnt/share nfs4 defaults 0 0\n",
    )
    _write(root, "/proc/self/mountinfo", MOUNTINFO_PROBLEMS)
    return root


def not_hyperv(root: Path) -> Path:
    """A KVM guest: other DMI strings, no VMBus."""
    _write(root, "/sys/class/dmi/id/sys_vendor", "QEMU\n")
    _write(root, "/sys/class/dmi/id/product_name", "Standard PC (Q35 + ICH9, 2009)\n")
    _write(root, "/proc/modules", "virtio_net 65536 0 - Live 0x0\n")
    _link(root, "/sys/class/net/enp1s0/device/driver", "../../../../bus/pci/drivers/virtio-pci")
    _disk(root, "vda", "[none] mq-deadline")
    _write(root, "/etc/fstab", "UUID=abcd / ext4 defaults 0 1\n")
    _write(root, "/proc/self/mountinfo", "22 1 252:1 / / rw,relatime - ext4 /dev/vda1 rw\n")
    _link(root, "/etc/systemd/system/sysinit.target.wants/systemd-timesyncd.service", "/lib/systemd/system/x")
    _link(root, "/etc/systemd/system/timers.target.wants/fstrim.timer", "/lib/systemd/system/fstrim.timer")
    return root
