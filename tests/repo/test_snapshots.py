"""Snapshots: committed in order, found by id, prefix or latest, protected, and their indexes checked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hvbackup.errors import UsageError
from hvbackup.repo import ZERO_CHUNK_ID, DiskIndex, Repository
from hvbackup.repo.backend import LocalBackend
from hvbackup.repo.errors import ChunkMissing, IndexDamaged, IndexMissing, SnapshotNotFound

from .conftest import CHUNK, PASSWORD, chunk_data, make_snapshot, store_disk

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_commit_and_load_back(repo: Repository, repo_path: Path) -> None:
    info = make_snapshot(repo, "web01", {"sda": [chunk_data(1), None, chunk_data(2)], "sdb": [chunk_data(3)]})
    repo.close()
    with Repository.open(repo_path, PASSWORD) as r:
        snap = r.load_snapshot(info.id)
        assert snap.manifest["source"] == "web01"
        assert snap.manifest["mode"] == "full"
        assert [d["name"] for d in snap.manifest["disks"]] == ["sda", "sdb"]
        sda = snap.index("sda")
        assert len(sda) == 3 and sda.size == 3 * CHUNK and sda.chunk_size == CHUNK
        assert sda[1] == ZERO_CHUNK_ID
        assert r.get_chunk(sda[2]) == chunk_data(2)
        assert list(snap.index("sdb")) == [r.chunk_id(chunk_data(3))]


def test_repository_owns_id_time_hostname_and_version(repo: Repository) -> None:
    before = datetime.now(UTC)
    info = make_snapshot(repo, "vm", {"d": [None]})
    m = info.manifest
    assert m["id"] == info.id and m["format_version"] == 1 and m["hostname"]
    assert before <= info.time <= datetime.now(UTC)
    assert datetime.fromisoformat(m["time"]).utcoffset() == timedelta(0)


def test_write_order_is_indexes_then_manifest(repo: Repository) -> None:
    written: list[str] = []

    class RecordingBackend(LocalBackend):
        def put(self, name: str, data: bytes | memoryview) -> None:
            super().put(name, data)
            written.append(name)

    repo.backend = RecordingBackend(repo.path)
    make_snapshot(repo, "vm", {"a": [chunk_data(1)], "b": [chunk_data(2)]})
    kinds = [name.split("/")[0] for name in written if not name.startswith("locks/")]
    assert kinds == ["chunks", "chunks", "indexes", "indexes", "snapshots"]


def test_commit_refuses_an_index_naming_a_missing_chunk(repo: Repository) -> None:
    ghost = repo.chunk_id(chunk_data(99))
    index = DiskIndex(CHUNK, CHUNK, ghost)
    with repo.backup_lease("test"), pytest.raises(ChunkMissing, match=ghost.hex()):
        repo.commit_snapshot({"source": "vm", "disks": [{"name": "d"}]}, {"d": index})
    assert repo.list_snapshots() == []
    assert not any((repo.path / "indexes").iterdir())


@pytest.mark.parametrize(
    "manifest, message",
    [
        ({"disks": [{"name": "d"}]}, "source"),
        ({"source": "vm", "disks": "d"}, "disks"),
        ({"source": "vm", "disks": [{"name": "d"}, {"name": "d"}]}, "unique"),
        ({"source": "vm", "disks": [{"name": "other"}]}, "indexes given"),
    ],
)
def test_commit_validates_the_manifest(repo: Repository, manifest: dict, message: str) -> None:
    index = DiskIndex(CHUNK, CHUNK, ZERO_CHUNK_ID)
    with pytest.raises(ValueError, match=message):
        repo.commit_snapshot(manifest, {"d": index})


def test_find_by_prefix_latest_and_source(repo: Repository) -> None:
    a = make_snapshot(repo, "vm-a", {"d": [None]}, time=T0)
    b = make_snapshot(repo, "vm-b", {"d": [None]}, time=T0 + timedelta(hours=1))
    c = make_snapshot(repo, "vm-a", {"d": [None]}, time=T0 + timedelta(hours=2))
    assert [s.id for s in repo.list_snapshots()] == [a.id, b.id, c.id]
    assert repo.load_snapshot(b.id[:10]).id == b.id
    assert repo.load_snapshot("latest", source="vm-a").id == c.id
    assert repo.load_snapshot("vm-b:latest").id == b.id
    assert repo.latest_snapshot("vm-a").id == c.id
    assert repo.latest_snapshot("vm-b").id == b.id
    assert repo.latest_snapshot("vm-c") is None
    with pytest.raises(SnapshotNotFound):
        repo.load_snapshot("zzzz")


def test_latest_alone_with_several_sources_is_refused_with_the_list(repo: Repository) -> None:
    """Issue 11 item 2: `latest` used to be the newest snapshot of any source, so a restore of
    `latest --name web-01-test` restored another VM under that name."""
    make_snapshot(repo, "web-01", {"d": [None]}, time=T0)
    make_snapshot(repo, "db-01", {"d": [None]}, time=T0 + timedelta(hours=1))
    with pytest.raises(SnapshotNotFound, match=r"ambiguous.*db-01, web-01.*--source"):
        repo.load_snapshot("latest")


def test_latest_of_a_single_source_needs_no_name(repo: Repository) -> None:
    make_snapshot(repo, "web-01", {"d": [None]}, time=T0)
    newest = make_snapshot(repo, "web-01", {"d": [None]}, time=T0 + timedelta(hours=1))
    assert repo.load_snapshot("latest").id == newest.id


def test_an_id_of_another_source_is_refused(repo: Repository) -> None:
    web = make_snapshot(repo, "web-01", {"d": [None]}, time=T0)
    make_snapshot(repo, "db-01", {"d": [None]}, time=T0)
    with pytest.raises(SnapshotNotFound, match="is of 'web-01', not of 'db-01'"):
        repo.load_snapshot(web.id[:8], source="db-01")
    with pytest.raises(SnapshotNotFound, match="no snapshot of 'app-01'"):
        repo.load_snapshot("app-01:latest")
    assert repo.load_snapshot(web.id[:8], source="web-01").id == web.id


def test_ambiguous_prefix_is_refused(repo: Repository) -> None:
    infos = [make_snapshot(repo, "vm", {"d": [None]}) for _ in range(20)]
    first = {i.id[0] for i in infos}
    shared = next(ch for ch in first if sum(i.id.startswith(ch) for i in infos) > 1)
    with pytest.raises(SnapshotNotFound, match="ambiguous"):
        repo.load_snapshot(shared)


def test_missing_index_is_a_clear_error(repo: Repository) -> None:
    info = make_snapshot(repo, "vm", {"d": [chunk_data(1)]})
    (repo.path / info.manifest["indexes"]["d"]["object"]).unlink()
    with pytest.raises(IndexMissing, match=f"disk 'd' in snapshot {info.short_id}"):
        repo.load_snapshot(info.id).index("d")


def test_index_swapped_from_another_snapshot_is_detected(repo: Repository) -> None:
    one = make_snapshot(repo, "vm", {"d": [chunk_data(1)]})
    two = make_snapshot(repo, "vm", {"d": [chunk_data(2)]})
    src = repo.path / one.manifest["indexes"]["d"]["object"]
    dst = repo.path / two.manifest["indexes"]["d"]["object"]
    dst.write_bytes(src.read_bytes())
    with pytest.raises(IndexDamaged):
        repo.load_snapshot(two.id).index("d")


def test_protect_blocks_deletion_until_unprotected(repo: Repository) -> None:
    info = make_snapshot(repo, "vm", {"d": [None]})
    assert repo.set_protected(info.id, True).protected
    assert repo.list_snapshots()[0].protected
    with pytest.raises(UsageError, match="protected"):
        repo.delete_snapshot(info.id)
    repo.set_protected(info.id, False)
    repo.delete_snapshot(info.id)
    assert repo.list_snapshots() == []
    assert not (repo.path / "indexes" / info.id).exists() or not any((repo.path / "indexes" / info.id).iterdir())


def test_indexes_hold_large_disks_compactly(repo: Repository) -> None:
    count = 4096
    ids = ZERO_CHUNK_ID * (count - 1) + repo.chunk_id(chunk_data(1))
    with repo.backup_lease("test"):
        store_disk(repo, [chunk_data(1)])
        info = repo.commit_snapshot(
            {"source": "vm", "disks": [{"name": "d"}]}, {"d": DiskIndex(count * CHUNK, CHUNK, ids)}
        )
    stored = (repo.path / info.manifest["indexes"]["d"]["object"]).stat().st_size
    assert stored < len(ids) / 20  # a mostly-empty disk's index compresses
    assert repo.load_snapshot(info.id).index("d").ids == ids
