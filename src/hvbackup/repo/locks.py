"""Locks and leases in `locks/`: backups hold shared leases, prune holds an exclusive lock.

Each lock is a sealed JSON object naming its holder (host, pid, process start time), its kind
and what it is for. Taking a lock writes it first and then looks at the others, so two processes
racing for conflicting locks can both fail, but never both succeed. A holder rewrites its lock
every REFRESH_INTERVAL seconds; a lock of another host not refreshed for STALE_AFTER seconds,
or a lock of this host whose process is gone, is stale and may be removed.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import psutil

from hvbackup.errors import HvBackupError
from hvbackup.repo import layout
from hvbackup.repo.backend import Backend
from hvbackup.repo.crypto import Sealer, SealError
from hvbackup.repo.errors import ObjectNotFound, RepositoryLocked

SHARED = "shared"
EXCLUSIVE = "exclusive"
REFRESH_INTERVAL = 300.0
STALE_AFTER = 1800.0
RETRY_INTERVAL = 0.5

log = logging.getLogger("hvbackup.repo")


@dataclass
class LockInfo:
    id: str
    kind: str
    hostname: str
    pid: int
    process_start: float
    created: float
    refreshed: float
    description: str

    def describe(self) -> str:
        since = datetime.fromtimestamp(self.created, UTC).isoformat(timespec="seconds")
        what = "an exclusive lock" if self.kind == EXCLUSIVE else "a shared lease"
        return f"{what} held by pid {self.pid} on {self.hostname} since {since} ({self.description})"

    def is_stale(self, now: float | None = None) -> bool:
        if self.hostname == socket.gethostname():
            return not _process_alive(self.pid, self.process_start)
        return (now or time.time()) - self.refreshed > STALE_AFTER

    def conflicts_with(self, kind: str) -> bool:
        return EXCLUSIVE in (kind, self.kind)

    def to_json(self) -> dict:
        data = asdict(self)
        data["stale"] = self.is_stale()
        return data


class Locks:
    def __init__(self, backend: Backend, sealer: Sealer) -> None:
        self.backend = backend
        self.sealer = sealer

    def list(self) -> list[LockInfo]:
        found = []
        for name in self.backend.list(layout.LOCKS):
            info = self._read(layout.leaf(name))
            if info is not None:
                found.append(info)
        return sorted(found, key=lambda lock: lock.created)

    def _read(self, lock_id: str) -> LockInfo | None:
        try:
            raw = self.sealer.open(self.backend.get(layout.lock(lock_id)), f"lock:{lock_id}")
            return LockInfo(**json.loads(raw))
        except ObjectNotFound:
            return None  # released while we were looking
        except (SealError, ValueError, TypeError):
            # Held until it is as old as a stale lock: it may come from a newer hvbackup.
            try:
                written = self.backend.stat(layout.lock(lock_id)).mtime
            except ObjectNotFound:
                return None
            return LockInfo(lock_id, EXCLUSIVE, "?", 0, 0.0, written, written, "unreadable lock object")

    def _write(self, info: LockInfo) -> None:
        blob = self.sealer.seal(json.dumps(asdict(info)).encode(), f"lock:{info.id}", compress=False)
        self.backend.put(layout.lock(info.id), memoryview(blob))

    def remove(self, info: LockInfo) -> None:
        self.backend.delete(layout.lock(info.id))

    def remove_stale(self) -> builtins.list[LockInfo]:  # `list` here is the method above
        removed = [lock for lock in self.list() if lock.is_stale()]
        for lock in removed:
            log.warning("removed stale lock: %s", lock.describe())
            self.remove(lock)
        return removed

    @contextmanager
    def hold(self, kind: str, description: str, wait: float = 0.0) -> Iterator[LockInfo]:
        """Hold a lock of `kind` for the duration of the block; RepositoryLocked on conflict."""
        info = self._acquire(kind, description, wait)
        stop = threading.Event()
        refresher = threading.Thread(target=self._refresh_until, args=(info, stop), daemon=True, name="hvb-lock")
        refresher.start()
        try:
            yield info
        finally:
            stop.set()
            refresher.join()
            self.remove(info)

    def _acquire(self, kind: str, description: str, wait: float) -> LockInfo:
        deadline = time.monotonic() + wait
        me = psutil.Process()
        while True:
            now = time.time()
            info = LockInfo(
                id=secrets.token_hex(8),
                kind=kind,
                hostname=socket.gethostname(),
                pid=os.getpid(),
                process_start=me.create_time(),
                created=now,
                refreshed=now,
                description=description,
            )
            self._write(info)
            holder = self._first_conflict(info)
            if holder is None:
                return info
            self.remove(info)
            if time.monotonic() >= deadline:
                raise RepositoryLocked(f"repository is locked: {holder.describe()}")
            time.sleep(RETRY_INTERVAL)

    def _first_conflict(self, mine: LockInfo) -> LockInfo | None:
        for other in self.list():
            if other.id == mine.id or not other.conflicts_with(mine.kind):
                continue
            if other.is_stale():
                log.warning("removed stale lock: %s", other.describe())
                self.remove(other)
                continue
            return other
        return None

    def _refresh_until(self, info: LockInfo, stop: threading.Event) -> None:
        while not stop.wait(REFRESH_INTERVAL):
            info.refreshed = time.time()
            try:
                self._write(info)
            except (OSError, HvBackupError) as exc:  # a full repository, say; the next refresh may succeed
                log.warning("could not refresh lock %s: %s", info.id, exc)


def _process_alive(pid: int, started: float) -> bool:
    try:
        process = psutil.Process(pid)
        return abs(process.create_time() - started) < 1.0 and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # it exists; we just may not look at it
