"""check: structure always, data with read_data; damage is named with every snapshot and disk using it."""

from __future__ import annotations

import os
import time

import pytest

from hvbackup.repo import Repository
from hvbackup.repo.check import check
from hvbackup.repo.errors import ChunkDamaged, ChunkMissing

from .conftest import CHUNK, PASSWORD, chunk_data, chunk_file, make_snapshot


@pytest.fixture
def two_snapshots(repo: Repository):
    """Chunk 2 is shared by both snapshots (disk sda at offset 1 chunk, disk sdb at offset 0)."""
    one = make_snapshot(repo, "web01", {"sda": [chunk_data(1), chunk_data(2)]})
    two = make_snapshot(repo, "db01", {"sdb": [chunk_data(2), None, chunk_data(3)]})
    return one, two


def damage(repo: Repository, seed: int, how: str) -> bytes:
    cid = repo.chunk_id(chunk_data(seed))
    path = chunk_file(repo, cid)
    if how == "delete":
        path.unlink()
    elif how == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    else:
        blob = bytearray(path.read_bytes())
        blob[-40] ^= 0x80
        path.write_bytes(bytes(blob))
    return cid


def test_clean_repository(repo: Repository, two_snapshots) -> None:
    report = check(repo, read_data=True)
    assert report.ok
    assert (report.snapshots, report.indexes, report.chunks_referenced, report.chunks_read) == (2, 2, 3, 3)


@pytest.mark.parametrize("how", ["flip", "truncate", "delete"])
def test_read_data_names_damaged_snapshots_and_disks(repo: Repository, two_snapshots, how: str) -> None:
    one, two = two_snapshots
    cid = damage(repo, 2, how)
    report = check(repo, read_data=True)
    assert not report.ok
    (problem,) = report.chunks
    assert problem.chunk_id == cid.hex()
    assert problem.problem == ("missing" if how == "delete" else "damaged")
    uses = sorted((u.snapshot, u.disk, tuple(u.offsets)) for u in problem.used_by)
    assert uses == sorted([(one.id, "sda", (CHUNK,)), (two.id, "sdb", (0,))])
    assert report.damaged_snapshots == sorted([one.id, two.id])
    error = ChunkMissing if how == "delete" else ChunkDamaged
    with pytest.raises(error, match=cid.hex()):
        repo.get_chunk(cid)


def test_structure_check_finds_a_missing_chunk_without_reading_data(repo: Repository, two_snapshots) -> None:
    _one, two = two_snapshots
    cid = damage(repo, 3, "delete")
    report = check(repo)
    assert [p.chunk_id for p in report.chunks] == [cid.hex()]
    assert [u.snapshot for u in report.chunks[0].used_by] == [two.id]
    assert report.chunks_read == 0


def test_structure_check_does_not_read_data(repo: Repository, two_snapshots) -> None:
    damage(repo, 1, "flip")
    assert check(repo).ok
    assert not check(repo, read_data=True).ok


def test_missing_index_is_reported(repo: Repository, two_snapshots) -> None:
    one, _two = two_snapshots
    (repo.path / one.manifest["indexes"]["sda"]["object"]).unlink()
    report = check(repo)
    assert not report.ok
    assert len(report.errors) == 1 and one.short_id in report.errors[0] and "sda" in report.errors[0]


def test_damaged_manifest_is_reported(repo: Repository, two_snapshots) -> None:
    one, _two = two_snapshots
    path = repo.path / "snapshots" / one.id
    path.write_bytes(path.read_bytes()[:-1])
    report = check(repo)
    assert any(one.id in e and "damaged" in e for e in report.errors)


def test_subset_reads_a_share_of_the_chunks(repo: Repository) -> None:
    make_snapshot(repo, "vm", {"d": [chunk_data(i) for i in range(20)]})
    assert check(repo, read_data=True, subset=0.25, seed=1).chunks_read == 5
    assert check(repo, read_data=True, subset=0.01, seed=1).chunks_read == 1


def test_next_backup_heals_a_damaged_chunk(repo: Repository, repo_path, two_snapshots) -> None:
    cid = damage(repo, 2, "flip")
    assert not check(repo, read_data=True).ok
    repo.close()
    with Repository.open(repo_path, PASSWORD) as later, later.backup_lease("next backup"):
        assert not later.has_chunk(cid)  # check remembered it as damaged in the local cache
        assert later.put_chunk(cid, chunk_data(2)) > 0
        assert later.has_chunk(cid)
    with Repository.open(repo_path, PASSWORD) as again:
        assert check(again, read_data=True).ok
        assert again.has_chunk(cid)


def test_check_removes_day_old_temporary_files_only(repo: Repository, two_snapshots) -> None:
    old = repo.path / "chunks" / ".tmp-0000000000000001"
    new = repo.path / "chunks" / ".tmp-0000000000000002"
    old.write_bytes(b"part of a chunk")
    new.write_bytes(b"a chunk being written right now")
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    report = check(repo)
    assert report.ok and report.temporary_files_removed == 1
    assert not old.exists() and new.exists()


def test_unreadable_key_slot_is_reported(repo: Repository, two_snapshots) -> None:
    (repo.path / "keys" / "0123456789abcdef").write_text("{not json")
    report = check(repo)
    assert report.errors == ["key slot keys/0123456789abcdef is unreadable"]
