"""Leases and locks: backups and prune exclude each other; dead holders are detected."""

from __future__ import annotations

import logging
import signal
import time
from pathlib import Path

import pytest

from hvbackup.errors import EXIT_LOCKED
from hvbackup.repo import Repository
from hvbackup.repo.errors import RepositoryLocked
from hvbackup.repo.locks import SHARED, STALE_AFTER, LockInfo
from hvbackup.repo.prune import prune

from .conftest import PASSWORD, start_proc


def lock_files(repo: Repository) -> list[Path]:
    return list((repo.path / "locks").iterdir())


def test_leases_are_shared_and_released(repo: Repository) -> None:
    with repo.backup_lease("one"), repo.backup_lease("two"):
        assert len(lock_files(repo)) == 2
    assert lock_files(repo) == []


def test_prune_refuses_while_a_backup_holds_a_lease(repo: Repository) -> None:
    with repo.backup_lease("image backup of disk.raw"):
        with pytest.raises(RepositoryLocked, match=r"shared lease .*\(image backup of disk.raw\)") as err:
            prune(repo)
    assert err.value.exit_code == EXIT_LOCKED
    assert prune(repo).dry_run is False


def test_backup_refused_while_prune_holds_the_lock(repo: Repository) -> None:
    with repo.exclusive_lock("prune"), pytest.raises(RepositoryLocked, match="exclusive lock"):
        with repo.backup_lease("backup"):
            pass
    assert lock_files(repo) == []


def test_lease_of_another_process_blocks_prune_until_released(repo: Repository, repo_path: Path) -> None:
    proc = start_proc("hold-lease", repo_path)
    try:
        assert proc.stdout.readline().strip() == "ready"
        with pytest.raises(RepositoryLocked, match=f"pid {proc.pid}"):
            prune(repo)
        started = time.monotonic()
        with pytest.raises(RepositoryLocked):
            prune(repo, wait=1.0)
        assert time.monotonic() - started >= 1.0  # it waited before giving up
    finally:
        proc.kill()
        proc.wait()


def test_stale_lease_of_a_killed_process_is_removed(
    repo: Repository, repo_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    proc = start_proc("hold-lease", repo_path)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (stale,) = repo.locks.list()
    assert stale.pid == proc.pid and stale.is_stale()
    with caplog.at_level(logging.WARNING, logger="hvbackup.repo"):
        prune(repo)
    assert "removed stale lock" in caplog.text and str(proc.pid) in caplog.text
    assert lock_files(repo) == []


def _foreign_lock(repo: Repository, refreshed_ago: float) -> LockInfo:
    now = time.time()
    info = LockInfo(
        "feedfacecafe0001",
        SHARED,
        "another-host.example",
        4242,
        1.0,
        now - refreshed_ago,
        now - refreshed_ago,
        "backup on another host",
    )
    repo.locks._write(info)
    return info


def test_lock_of_another_host_counts_until_it_is_not_refreshed(repo: Repository) -> None:
    _foreign_lock(repo, refreshed_ago=60)
    with pytest.raises(RepositoryLocked, match=r"another-host.example"):
        prune(repo)
    assert repo.locks.remove_stale() == []
    _foreign_lock(repo, refreshed_ago=STALE_AFTER + 60)
    assert [lock.hostname for lock in repo.locks.remove_stale()] == ["another-host.example"]
    prune(repo)


def test_unreadable_lock_is_treated_as_held(repo: Repository) -> None:
    (repo.path / "locks" / "garbage").write_bytes(b"not a lock")
    with pytest.raises(RepositoryLocked, match="unreadable"):
        prune(repo)


def test_lease_reopens_a_repository_after_unlock(repo_path: Path, repo: Repository) -> None:
    with repo.exclusive_lock("prune"):
        other = Repository.open(repo_path, PASSWORD)
        with pytest.raises(RepositoryLocked), other.backup_lease("x"):
            pass
    with other.backup_lease("x"):
        assert len(lock_files(repo)) == 1
    other.close()
