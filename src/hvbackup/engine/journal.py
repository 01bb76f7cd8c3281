"""What a run must undo if it dies (VMs it saved or shut down), and which VMs a run is backing up.

A VM that hvbackup paused is recorded here before the pause and forgotten after it runs again.
A later run that finds the record and the VM still paused starts it (a VM left saved by a
killed backup must not stay down). Kept per host in the user's cache folder; losing it only
loses that courtesy, never data.

Each checkpoint a run takes is recorded here by id the moment it exists, before the host is asked
to give it our name, and forgotten once it is converted or destroyed: orphan cleanup takes a
recorded checkpoint for ours even when the rename failed or the run died before it.

A run holds a VM's backup lock (an flock on `running/<host>/<VM id>.lock`, which names the holder)
from before its orphan cleanup to its last release, so a second run refuses the VM up front and
never takes the first run's checkpoint for an orphan. The kernel drops the lock with the process,
so a run killed with -9 leaves no stale lock. It serializes the runs of this machine and user.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from hvbackup.atomic import atomic_write
from hvbackup.errors import EXIT_LOCKED, HvBackupError


class VmBusy(HvBackupError):
    """Another run is backing this VM up."""

    exit_code = EXIT_LOCKED


def _base() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hvbackup"


def _host_part(host_key: str) -> str:
    """A file name for a host key; a long one (a lab's folder) is shortened by its hash."""
    plain = re.sub(r"[^A-Za-z0-9_.-]", "_", host_key)
    if len(plain) <= 80:
        return plain
    return f"{plain[:40]}-{hashlib.sha256(host_key.encode()).hexdigest()[:16]}"


def _folder(host_key: str) -> Path:
    return _base() / "paused" / _host_part(host_key)


@contextmanager
def backing_up(host_key: str, vm_id: str, vm_name: str) -> Iterator[None]:
    """Hold the VM's backup lock, or raise VmBusy naming who holds it (pid, machine, since when)."""
    folder = _base() / "running" / _host_part(host_key)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f"{_host_part(vm_id)}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            raise VmBusy(f"{vm_name} is being backed up by {_holder(fd)}: wait for that run to end") from None
        since = datetime.now(UTC).isoformat(timespec="seconds")
        holder = {"pid": os.getpid(), "machine": socket.gethostname(), "since": since}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # the file stays: unlinking it could let two runs lock two inodes
    finally:
        os.close(fd)  # closing drops the lock


def _holder(fd: int) -> str:
    try:
        holder = json.loads(os.pread(fd, 4096, 0))
        return f"pid {holder['pid']} on {holder['machine']} since {holder['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another run"  # it holds the lock but has not written its name yet


def remember_paused(host_key: str, vm_id: str, how: str) -> None:
    folder = _folder(host_key)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / f"{vm_id}.json", json.dumps({"vm_id": vm_id, "how": how}))


def forget_paused(host_key: str, vm_id: str) -> None:
    (_folder(host_key) / f"{vm_id}.json").unlink(missing_ok=True)


def paused_by_us(host_key: str, vm_id: str) -> str | None:
    try:
        return json.loads((_folder(host_key) / f"{vm_id}.json").read_text())["how"]
    except (OSError, ValueError, KeyError):
        return None


def _checkpoints_file(host_key: str, vm_id: str) -> Path:
    return _base() / "checkpoints" / _host_part(host_key) / f"{_host_part(vm_id.lower())}.json"


def our_checkpoints(host_key: str, vm_id: str) -> set[str]:
    """Ids (lower case) of the checkpoints our runs took of this VM and have not seen gone yet."""
    try:
        return {str(i).lower() for i in json.loads(_checkpoints_file(host_key, vm_id).read_text())["ids"]}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def _write_checkpoints(host_key: str, vm_id: str, ids: set[str]) -> None:
    path = _checkpoints_file(host_key, vm_id)
    if not ids:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps({"vm_id": vm_id, "ids": sorted(ids)}))


def remember_checkpoint(host_key: str, vm_id: str, checkpoint_id: str) -> None:
    """Record a checkpoint of ours; called under the VM's backup lock, so no other run writes it."""
    _write_checkpoints(host_key, vm_id, our_checkpoints(host_key, vm_id) | {checkpoint_id.lower()})


def forget_checkpoint(host_key: str, vm_id: str, checkpoint_id: str) -> None:
    _write_checkpoints(host_key, vm_id, our_checkpoints(host_key, vm_id) - {checkpoint_id.lower()})
