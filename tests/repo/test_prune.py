"""Prune: mark and sweep with a safety window; never loses a chunk a snapshot or a running backup uses."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hvbackup.repo import Repository
from hvbackup.repo.check import check
from hvbackup.repo.errors import IndexMissing, RepositoryLocked
from hvbackup.repo.forget import forget
from hvbackup.repo.prune import prune
from hvbackup.repo.retention import KeepPolicy

from .conftest import PASSWORD, age_everything, chunk_data, chunk_file, make_snapshot, start_proc


def test_deletes_only_unreferenced_chunks_older_than_the_window(repo: Repository) -> None:
    keep = make_snapshot(repo, "vm", {"d": [chunk_data(1), chunk_data(2)]})
    gone = make_snapshot(repo, "vm", {"d": [chunk_data(2), chunk_data(3)]})
    repo.delete_snapshot(gone.id)
    age_everything(repo.path)
    young = chunk_data(4)
    with repo.backup_lease("a backup that crashed before its snapshot"):
        repo.put_chunk(repo.chunk_id(young), young)

    result = prune(repo)

    assert (result.chunks_deleted, result.chunks_kept_young, result.chunks_referenced) == (1, 1, 2)
    assert not chunk_file(repo, repo.chunk_id(chunk_data(3))).exists()
    assert chunk_file(repo, repo.chunk_id(young)).exists()
    for i in (1, 2):
        assert repo.get_chunk(repo.chunk_id(chunk_data(i))) == chunk_data(i)
    assert check(repo, read_data=True).ok
    assert keep.id in {s.id for s in repo.list_snapshots()}


def test_dry_run_deletes_nothing(repo: Repository) -> None:
    gone = make_snapshot(repo, "vm", {"d": [chunk_data(1)]})
    repo.delete_snapshot(gone.id)
    age_everything(repo.path)
    result = prune(repo, dry_run=True)
    assert result.chunks_deleted == 1 and result.dry_run
    assert chunk_file(repo, repo.chunk_id(chunk_data(1))).exists()


def test_refuses_when_an_index_is_missing(repo: Repository) -> None:
    info = make_snapshot(repo, "vm", {"d": [chunk_data(1)]})
    (repo.path / info.manifest["indexes"]["d"]["object"]).unlink()
    age_everything(repo.path)
    with pytest.raises(IndexMissing, match=f"prune deletes nothing.*hvbackup forget {info.short_id}"):
        prune(repo, safety_window=0)
    assert chunk_file(repo, repo.chunk_id(chunk_data(1))).exists()


def test_cleans_leftovers_of_crashed_writers(repo: Repository) -> None:
    info = make_snapshot(repo, "vm", {"d": [chunk_data(1)]})
    (repo.path / "chunks" / ".tmp-deadbeef").write_bytes(b"half a chunk")
    orphan_index = repo.path / "indexes" / ("ab" * 16) / "0"
    orphan_index.parent.mkdir()
    orphan_index.write_bytes(b"index of a snapshot never committed")
    age_everything(repo.path, 2 * 86400)  # temporary files are only removed when a day old
    result = prune(repo)
    assert result.objects_cleaned == 2
    assert not orphan_index.exists() and not (repo.path / "chunks" / ".tmp-deadbeef").exists()
    assert repo.load_snapshot(info.id).index("d")[0] == repo.chunk_id(chunk_data(1))


def test_prune_invalidates_other_processes_chunk_caches(repo: Repository, repo_path: Path) -> None:
    gone = make_snapshot(repo, "vm", {"d": [chunk_data(1)]})
    other = Repository.open(repo_path, PASSWORD)  # its cache knows chunk 1
    assert other.has_chunk(repo.chunk_id(chunk_data(1)))
    repo.delete_snapshot(gone.id)
    prune(repo, safety_window=0)
    with other.backup_lease("a later backup"):
        assert not other.has_chunk(repo.chunk_id(chunk_data(1)))
        info = make_snapshot(other, "vm", {"d": [chunk_data(1)]})
    other.close()
    assert repo.get_chunk(repo.load_snapshot(info.id).index("d")[0]) == chunk_data(1)


@pytest.mark.slow
def test_prune_racing_a_backup_in_another_process_loses_nothing(repo: Repository, repo_path: Path) -> None:
    rounds = 12
    backup = start_proc("backup-loop", repo_path, str(rounds))
    pruned = refused = deleted = 0
    try:
        while backup.poll() is None:
            try:
                forget(repo, KeepPolicy(last=3))
                result = prune(repo, safety_window=0)  # only the lease protects the running backup
                pruned += 1
                deleted += result.chunks_deleted
            except RepositoryLocked:
                refused += 1
            time.sleep(0.1)
        out, err = backup.communicate(timeout=60)
    finally:
        if backup.poll() is None:
            backup.kill()
    assert backup.returncode == 0, err
    assert out.count("snapshot") == rounds
    assert pruned > 0 and deleted > 0, (pruned, refused, deleted)
    report = check(repo, read_data=True)
    assert report.ok, report.to_json()
    assert report.snapshots >= 3


def test_keeps_temporary_files_of_live_writers_even_with_no_window(repo: Repository) -> None:
    fresh = repo.path / "locks" / ".tmp-0123456789abcdef"
    fresh.write_bytes(b"a lock being written by a backup that wants its lease")
    age_everything(repo.path, 3 * 3600)
    prune(repo, safety_window=0)
    assert fresh.exists()
