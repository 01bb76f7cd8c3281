"""FIFREEZE / FITHAW on a list of mounts, with the daemon's error rules and rollback.

Error rules (hv_vss_daemon, docs/GUEST.md §3, §4): EBUSY on FIFREEZE of a filesystem
we have not frozen means someone else froze it: it is reported and never thawed by us (or the whole
freeze fails, by configuration). EOPNOTSUPP means the filesystem cannot be frozen: reported,
skipped. Any other failure thaws what was frozen so far, in reverse, and fails. On FITHAW, EINVAL
(not frozen any more) is tolerated; thaw goes on through every mount whatever happens.

Nothing here writes to disk or logs: callers keep results in memory until after the thaw.
"""

from __future__ import annotations

import errno
import fcntl
import os
from dataclasses import dataclass, field

from hvbackup.errors import HvBackupError

TYPE_CHECKING = False  # the watchdog imports this module: no `typing` at run time
if TYPE_CHECKING:
    from typing import Any

FIFREEZE = 0xC0045877  # _IOWR('X', 119, int), x86/x86_64/arm64 encoding
FITHAW = 0xC0045878  # _IOWR('X', 120, int)


class FreezeFailed(HvBackupError):
    """A filesystem could not be frozen; everything frozen before it was thawed again."""


@dataclass
class Target:
    """A mount to freeze, identified by its path and the st_dev it had when planned."""

    path: str
    dev: int

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "dev": self.dev}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Target:
        return cls(str(data["path"]), int(data["dev"]))


@dataclass
class FreezeResult:
    frozen: list[Target] = field(default_factory=list)
    foreign: list[Target] = field(default_factory=list)
    unsupported: list[Target] = field(default_factory=list)


@dataclass
class ThawResult:
    thawed: list[str] = field(default_factory=list)
    already_thawed: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def target_of(path: str) -> Target:
    return Target(path, os.stat(path).st_dev)


def _open_dir(path: str) -> int:
    # O_DIRECTORY: a FIFO or socket mounted here fails at once instead of blocking or ENXIO-ing.
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NONBLOCK | os.O_CLOEXEC)


def freeze(targets: list[Target], fail_on_foreign: bool = False) -> FreezeResult:
    """Freeze in order; on failure thaw what was frozen (reverse) and raise FreezeFailed."""
    fds: list[tuple[Target, int]] = []
    try:
        for target in targets:  # open everything before the first FIFREEZE
            fds.append((target, _open_dir(target.path)))
        return _freeze_open(fds, fail_on_foreign)
    except OSError as exc:
        raise FreezeFailed(f"cannot open {exc.filename}: {exc.strerror}") from None
    finally:
        for _, fd in fds:
            os.close(fd)


def _freeze_open(fds: list[tuple[Target, int]], fail_on_foreign: bool) -> FreezeResult:
    result = FreezeResult()
    for target, fd in fds:
        try:
            fcntl.ioctl(fd, FIFREEZE, 0)
        except OSError as exc:
            if exc.errno == errno.EBUSY and not fail_on_foreign:
                result.foreign.append(target)
                continue
            if exc.errno == errno.EOPNOTSUPP:
                result.unsupported.append(target)
                continue
            thaw(list(reversed(result.frozen)))
            why = "already frozen by another process" if exc.errno == errno.EBUSY else exc.strerror
            raise FreezeFailed(f"FREEZE of {target.path} failed: {why}; thawed what was frozen") from None
        result.frozen.append(target)
    return result


def thaw(targets: list[Target]) -> ThawResult:
    """FITHAW each target (callers pass freeze order reversed); EINVAL means already thawed."""
    result = ThawResult()
    for target in targets:
        try:
            fd = _open_dir(target.path)
        except OSError as exc:
            result.errors[target.path] = exc.strerror or str(exc)
            continue
        try:
            if os.fstat(fd).st_dev != target.dev:
                result.errors[target.path] = "a different filesystem is mounted there now"
                continue
            fcntl.ioctl(fd, FITHAW, 0)
            result.thawed.append(target.path)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                result.already_thawed.append(target.path)
            else:
                result.errors[target.path] = exc.strerror or str(exc)
        finally:
            os.close(fd)
    return result
