"""Which mounts a freeze covers, and in which order: the rules of the kernel's hv_vss_daemon.

hv_vss_daemon (tools/hv/hv_vss_daemon.c; docs/GUEST.md §3) walks the mount table and freezes
every mount whose source is a /dev/ block device, skipping read-only mounts, vfat and any device with
a loop device below it, and freezes `/` last. We apply the same rules and add what it gets wrong
(§5.3): mounts of non-directories (bind-mounted sockets, FIFOs, files) are skipped instead of
aborting or hanging the freeze, one superblock is frozen once (aliases are reported), and a
filesystem whose storage lives on another selected filesystem is frozen before it.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from hvbackup.errors import UsageError

NETWORK_FS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "9p", "afs"}
PSEUDO_FS = {
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "tmpfs",
    "ramfs",
    "cgroup",
    "cgroup2",
    "securityfs",
    "debugfs",
    "tracefs",
    "pstore",
    "bpf",
    "configfs",
    "fusectl",
    "mqueue",
    "hugetlbfs",
    "autofs",
    "binfmt_misc",
    "efivarfs",
    "rpc_pipefs",
    "nsfs",
    "selinuxfs",
    "devfs",
}


@dataclass(frozen=True)
class Mount:
    """One line of /proc/self/mountinfo."""

    mount_id: int
    parent_id: int
    dev: str  # "major:minor" of the superblock
    root: str
    mountpoint: str
    options: tuple[str, ...]
    fstype: str
    source: str
    super_options: tuple[str, ...] = ()

    @property
    def read_only(self) -> bool:
        return "ro" in self.options or "ro" in self.super_options

    def to_json(self) -> dict[str, str]:
        return {"mountpoint": self.mountpoint, "fstype": self.fstype, "source": self.source, "dev": self.dev}


@dataclass
class Skip:
    mount: Mount
    reason: str

    def to_json(self) -> dict[str, str]:
        return {**self.mount.to_json(), "reason": self.reason}


@dataclass
class FreezePlan:
    """Mounts to freeze, in freeze order (thaw is the reverse), and the ones left out, with why."""

    covers: list[Mount] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)

    def to_json(self) -> dict[str, list[dict[str, str]]]:
        return {"covers": [m.to_json() for m in self.covers], "skips": [s.to_json() for s in self.skips]}


_OCTAL = re.compile(r"\\([0-7]{3})")


def unescape(text: str) -> str:
    """Undo the kernel's octal escapes in mountinfo paths (\\040 space, \\011 tab, ...)."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), text)


def parse_mountinfo(text: str) -> list[Mount]:
    mounts = []
    for line in text.splitlines():
        if not line.strip():
            continue
        left, _, right = line.partition(" - ")
        fields = left.split()
        fstype, source, *rest = right.split()
        mounts.append(
            Mount(
                mount_id=int(fields[0]),
                parent_id=int(fields[1]),
                dev=fields[2],
                root=unescape(fields[3]),
                mountpoint=unescape(fields[4]),
                options=tuple(fields[5].split(",")),
                fstype=fstype,
                source=unescape(source),
                super_options=tuple(rest[0].split(",")) if rest else (),
            )
        )
    return mounts


def read_mounts(root: Path = Path("/")) -> list[Mount]:
    return parse_mountinfo((root / "proc/self/mountinfo").read_text())


class Topology:
    """Answers questions about block devices from /sys and /dev under `root` (a fixture in tests)."""

    def __init__(self, root: Path = Path("/")) -> None:
        self.root = root

    def block_devnum(self, source: str) -> str | None:
        """'major:minor' of a /dev/ source that is a block device here, else None."""
        try:
            st = os.stat(self.root / source.lstrip("/"))
        except OSError:
            return None
        if not stat.S_ISBLK(st.st_mode):
            return None
        return f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"

    def loop_devices_below(self, devnum: str) -> list[Path]:
        """Sysfs dirs of loop devices at or below a block device (following slaves/, like is_dev_loop)."""
        found: list[Path] = []
        self._walk(self.root / "sys/dev/block" / devnum, found, depth=0)
        return found

    def _walk(self, node: Path, found: list[Path], depth: int) -> None:
        if depth > 16 or not node.exists():
            return
        if (node / "loop").is_dir():
            found.append(node)
        slaves = node / "slaves"
        if slaves.is_dir():
            for slave in sorted(slaves.iterdir()):
                self._walk(slave, found, depth + 1)

    def is_loop_backed(self, mount: Mount) -> bool:
        devnum = self.block_devnum(mount.source)
        if devnum is None:
            return os.path.basename(mount.source).startswith("loop")
        return bool(self.loop_devices_below(devnum))

    def backing_devs(self, mount: Mount) -> set[int]:
        """st_dev of the filesystems holding the backing files of loop devices under this mount."""
        devnum = self.block_devnum(mount.source)
        if devnum is None:
            return set()
        devs = set()
        for node in self.loop_devices_below(devnum):
            try:
                backing = (node / "loop/backing_file").read_text().strip()
                devs.add(os.stat(self.root / backing.lstrip("/")).st_dev)
            except OSError:
                continue
        return devs


def _skip_reason(mount: Mount, topology: Topology, explicit: bool) -> str | None:
    fstype = mount.fstype
    if fstype in NETWORK_FS:
        return f"network filesystem ({fstype}) cannot be frozen from the guest"
    if fstype.startswith("fuse") or fstype == "fuse":
        return f"FUSE filesystem ({fstype}) cannot be frozen"
    if fstype == "overlay":
        return "overlay filesystem cannot be frozen (its lower filesystems are frozen on their own)"
    if fstype in PSEUDO_FS:
        return f"{fstype} is not a block-device filesystem"
    if not mount.source.startswith("/dev/"):
        return f"source {mount.source} is not a block device"
    if mount.read_only:
        return "mounted read-only"
    if fstype in ("vfat", "iso9660", "squashfs"):
        return f"{fstype} is skipped (as hv_vss_daemon does)"
    if not explicit and topology.is_loop_backed(mount):
        return "loop-backed (hv_vss_daemon skips these; name it with --mount to include it)"
    return None


def _not_a_directory(mount: Mount, topology: Topology) -> str | None:
    try:
        st = os.lstat(topology.root / mount.mountpoint.lstrip("/"))
    except OSError as exc:
        return f"mount point cannot be examined: {exc.strerror}"
    if stat.S_ISDIR(st.st_mode):
        return None
    kind = "socket" if stat.S_ISSOCK(st.st_mode) else "FIFO" if stat.S_ISFIFO(st.st_mode) else "file"
    return f"bind-mounted {kind}, not a directory (the filesystem is frozen through its directory mounts)"


def _select(mounts: list[Mount], only: list[Path] | None) -> list[Mount]:
    if only is None:
        return mounts
    wanted = {os.path.realpath(p) for p in only}
    chosen = [m for m in mounts if m.mountpoint in wanted]
    missing = wanted - {m.mountpoint for m in chosen}
    if missing:
        raise UsageError(f"not a mount point: {', '.join(sorted(missing))}")
    # A path mounted over twice: only the visible (last) mount counts.
    last = {m.mountpoint: m for m in chosen}
    return [m for m in chosen if last[m.mountpoint] is m]


def check_mount_points(only: list[Path] | None) -> None:
    """Refuse a named path that is not a mount point now (a daemon checks at start, not at its first FREEZE)."""
    _select(read_mounts(), only)


def plan_freeze(
    mounts: list[Mount], only: list[Path] | None = None, topology: Topology | None = None, check_paths: bool = True
) -> FreezePlan:
    """Apply the daemon's selection rules; `only` limits the plan to these mount points."""
    topology = topology or Topology()
    plan = FreezePlan()
    by_dev: dict[str, Mount] = {}
    for mount in _select(mounts, only):
        reason = _skip_reason(mount, topology, explicit=only is not None)
        if reason is None and check_paths:
            reason = _not_a_directory(mount, topology)
        if reason is None and mount.dev in by_dev:
            reason = f"same filesystem as {by_dev[mount.dev].mountpoint} (frozen once)"
        if reason is not None:
            plan.skips.append(Skip(mount, reason))
            continue
        by_dev[mount.dev] = mount
        plan.covers.append(mount)
    plan.covers = _order(plan.covers, topology)
    return plan


def _order(covers: list[Mount], topology: Topology) -> list[Mount]:
    """Filesystems stacked on another selected one come first; `/` comes last."""
    dev_of = {m.dev: m for m in covers}
    needs: dict[str, set[str]] = {}
    for m in covers:
        backing = {f"{os.major(d)}:{os.minor(d)}" for d in topology.backing_devs(m)}
        needs[m.dev] = {d for d in backing if d in dev_of and d != m.dev}
    ordered: list[Mount] = []
    placed: set[str] = set()

    def place(m: Mount, trail: frozenset[str]) -> None:
        if m.dev in placed or m.dev in trail:
            return
        for other in covers:  # everything stacked on m goes before m
            if m.dev in needs[other.dev]:
                place(other, trail | {m.dev})
        placed.add(m.dev)
        ordered.append(m)

    for m in covers:
        if m.mountpoint != "/":
            place(m, frozenset())
    for m in covers:
        place(m, frozenset())
    return ordered
