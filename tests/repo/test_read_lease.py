"""Readers hold a shared lease: prune cannot delete chunks a restore or file browse is reading."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from hvbackup.engine.disk_restore import restore_disk
from hvbackup.engine.files.opening import open_snapshot_disk
from hvbackup.repo import Repository
from hvbackup.repo.errors import RepositoryLocked
from hvbackup.repo.prune import prune

from .conftest import PASSWORD, chunk_data, make_snapshot


class PruneAttempts:
    """A progress sink that tries a prune from another handle on the same repository mid-restore."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.outcomes: list[str] = []

    def set_total(self, total: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        with Repository.open(self.path, PASSWORD) as other:
            try:
                prune(other, safety_window=0)
                self.outcomes.append("pruned")
            except RepositoryLocked:
                self.outcomes.append("locked")


def test_prune_waits_for_a_running_restore(repo: Repository, repo_path: Path, tmp_path: Path) -> None:
    snap = make_snapshot(repo, "vm", {"disk0": [chunk_data(1), None, chunk_data(2)]}, sizes=True)
    attempts = PruneAttempts(repo_path)
    restore_disk(repo, repo.load_snapshot(snap.id), tmp_path / "out.raw", progress=attempts)
    assert attempts.outcomes and set(attempts.outcomes) == {"locked"}
    prune(repo, safety_window=0)  # and the lease is gone afterwards


def test_prune_waits_while_a_snapshot_disk_is_open_for_file_restore(repo: Repository, repo_path: Path) -> None:
    snap = make_snapshot(repo, "vm", {"disk0": [chunk_data(3), chunk_data(4)]}, sizes=True)
    with open_snapshot_disk(repo, repo.load_snapshot(snap.id)), Repository.open(repo_path, PASSWORD) as other:
        with pytest.raises(RepositoryLocked):
            prune(other, safety_window=0)


@pytest.mark.root
def test_a_repository_on_a_read_only_filesystem_restores_without_a_lease(
    repo: Repository, repo_path: Path, tmp_path: Path
) -> None:
    snap = make_snapshot(repo, "vm", {"disk0": [chunk_data(5)]}, sizes=True)
    mountpoint = tmp_path / "ro"
    mountpoint.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mountpoint)], check=True)
    try:
        shutil.copytree(repo_path, mountpoint / "repo")
        subprocess.run(["mount", "-o", "remount,ro", str(mountpoint)], check=True)
        with Repository.open(mountpoint / "repo", PASSWORD) as readonly:
            with readonly.read_lease("test") as lease:
                assert lease is None
            restore_disk(readonly, readonly.load_snapshot(snap.id), tmp_path / "out.raw")
        assert (tmp_path / "out.raw").read_bytes() == chunk_data(5)
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)
