"""Helpers for the guest tests: loop filesystems they create (and thaw and remove, whatever happens).

Tests freeze only filesystems made here; every freeze names them with --mount / `only`.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator  # noqa: F401
from dataclasses import dataclass
from pathlib import Path

import pytest

FITHAW = 0xC0045878
FIFREEZE = 0xC0045877
GUEST_CLI = [
    sys.executable,
    "-c",
    "import sys; sys.argv[0] = 'hvbackup-guest'; from hvbackup.cli.guest_main import main; main()",
]
MKFS = {"ext4": ["mkfs.ext4", "-q", "-F"], "xfs": ["mkfs.xfs", "-q", "-f"], "btrfs": ["mkfs.btrfs", "-q", "-f"]}
SIZE_MB = {"ext4": 64, "xfs": 320, "btrfs": 128}


def run(*argv: str | Path, check: bool = True, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], check=check, capture_output=True, text=True, **kw)  # type: ignore[call-overload]


@dataclass
class LoopFs:
    image: Path
    device: str
    mountpoint: Path
    fstype: str


def thaw_path(path: Path) -> None:
    """FITHAW, ignoring 'not frozen' and anything else: a safety net, not a test."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NONBLOCK)
    except OSError:
        return
    try:
        fcntl.ioctl(fd, FITHAW, 0)
    except OSError:
        pass
    finally:
        os.close(fd)


def is_frozen(path: Path) -> bool:
    """True if the filesystem is frozen (a FIFREEZE answers EBUSY); leaves it as it was."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.ioctl(fd, FIFREEZE, 0)
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            return True
        raise
    else:
        fcntl.ioctl(fd, FITHAW, 0)
        return False
    finally:
        os.close(fd)


def writable_within(path: Path, seconds: float) -> bool:
    """Try to create a file; True if the write finished within `seconds`."""
    proc = subprocess.Popen(["sh", "-c", f"echo x > '{path}/probe-$$' && sync -f '{path}'"])
    try:
        proc.wait(timeout=seconds)
        return proc.returncode == 0
    except subprocess.TimeoutExpired:
        return False  # the child stays in D state until a thaw; the finalizer thaws


class LoopFactory:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.made: list[LoopFs] = []
        self.extra_mounts: list[Path] = []

    def make(
        self, fstype: str = "ext4", name: str | None = None, where: Path | None = None, size_mb: int | None = None
    ) -> LoopFs:
        if shutil.which(MKFS[fstype][0]) is None:
            pytest.skip(f"{MKFS[fstype][0]} is not installed")
        name = name or f"{fstype}{len(self.made)}"
        image = (where or self.base) / f"{name}.img"
        with open(image, "wb") as fh:
            fh.truncate((size_mb or SIZE_MB[fstype]) << 20)
        run(*MKFS[fstype], image)
        return self.attach(image, fstype, self.base / f"mnt-{name}")

    def attach(self, image: Path, fstype: str, mountpoint: Path) -> LoopFs:
        """Mount an existing image (a copy taken while frozen) through a loop device; cleaned up like the rest."""
        device = run("losetup", "--find", "--show", image).stdout.strip()
        mountpoint.mkdir()
        run("mount", "-t", fstype, device, mountpoint)
        fs = LoopFs(image, device, mountpoint, fstype)
        self.made.append(fs)
        return fs

    def bind(self, source: Path, target: Path) -> None:
        run("mount", "--bind", source, target)
        self.extra_mounts.append(target)

    def cleanup(self) -> None:
        for fs in reversed(self.made):  # inner (later) filesystems first
            thaw_path(fs.mountpoint)
        for fs in self.made:
            thaw_path(fs.mountpoint)
        for target in reversed(self.extra_mounts):
            run("umount", "-l", target, check=False)
        for fs in reversed(self.made):
            for _ in range(20):
                if run("umount", fs.mountpoint, check=False).returncode == 0:
                    break
                time.sleep(0.25)
            else:
                run("umount", "-l", fs.mountpoint, check=False)
            run("losetup", "-d", fs.device, check=False)
