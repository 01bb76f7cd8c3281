"""The chunk cache is only a cache: lost, stale or wrong, it is rebuilt from the repository."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hvbackup.repo import Repository
from hvbackup.repo.cache import default_cache_root

from .conftest import PASSWORD, chunk_data, make_snapshot


def cache_file(repo: Repository) -> Path:
    return default_cache_root() / repo.id / "chunks.sqlite"


def cached_ids(repo: Repository) -> set[bytes]:
    with sqlite3.connect(cache_file(repo)) as db:
        return {row[0] for row in db.execute("SELECT id FROM chunks")}


def test_cache_lives_under_xdg_cache_home(repo: Repository, tmp_path: Path) -> None:
    make_snapshot(repo, "vm", {"d": [chunk_data(1)]})
    repo.close()
    assert cache_file(repo).is_relative_to(tmp_path / "cache" / "hvbackup")
    assert cached_ids(repo) == {repo.chunk_id(chunk_data(1))}


def test_deleted_cache_is_rebuilt_from_the_repository(repo: Repository, repo_path: Path) -> None:
    make_snapshot(repo, "vm", {"d": [chunk_data(1), chunk_data(2)]})
    repo.close()
    cache_file(repo).unlink()
    with Repository.open(repo_path, PASSWORD) as again:
        assert again.has_chunk(again.chunk_id(chunk_data(2)))
        with again.backup_lease("test"):
            assert again.put_chunk(again.chunk_id(chunk_data(1)), chunk_data(1)) == 0
    assert cached_ids(repo) == {repo.chunk_id(chunk_data(i)) for i in (1, 2)}


def test_rebuild_cache_drops_ids_that_are_not_in_the_repository(repo: Repository, repo_path: Path) -> None:
    make_snapshot(repo, "vm", {"d": [chunk_data(1)]})
    repo.close()
    ghost = b"\x42" * 32
    with sqlite3.connect(cache_file(repo)) as db:
        db.execute("INSERT INTO chunks VALUES (?)", (ghost,))
    with Repository.open(repo_path, PASSWORD) as again:
        assert again.has_chunk(ghost)  # a wrong cache is believed until rebuilt ...
        assert again.rebuild_cache() == 1
        assert not again.has_chunk(ghost)
    assert cached_ids(repo) == {repo.chunk_id(chunk_data(1))}


def test_cache_of_an_older_generation_is_rebuilt(repo: Repository, repo_path: Path) -> None:
    make_snapshot(repo, "vm", {"d": [chunk_data(1)]})
    repo.close()
    ghost = b"\x42" * 32
    with sqlite3.connect(cache_file(repo)) as db:
        db.execute("INSERT INTO chunks VALUES (?)", (ghost,))
    with Repository.open(repo_path, PASSWORD) as again:
        again.bump_generation()  # as prune does before deleting
        with again.backup_lease("test"):
            assert not again.has_chunk(ghost)
            assert again.has_chunk(again.chunk_id(chunk_data(1)))


def test_unwritable_cache_location_still_works(repo_path: Path, monkeypatch, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    with Repository.init(repo_path, PASSWORD, chunk_size=64 * 1024, kdf_n=2**12) as r:
        info = make_snapshot(r, "vm", {"d": [chunk_data(1)]})
        assert r.get_chunk(r.load_snapshot(info.id).index("d")[0]) == chunk_data(1)


def test_chunks_a_crashed_writer_never_recorded_are_not_stored_twice(repo: Repository, repo_path: Path) -> None:
    make_snapshot(repo, "vm", {"d": [chunk_data(1), chunk_data(2)]})
    repo.close()
    with sqlite3.connect(cache_file(repo)) as db:  # as if the writer died before saving its cache
        db.execute("DELETE FROM chunks")
    with Repository.open(repo_path, PASSWORD) as again, again.backup_lease("next backup"):
        assert again.has_chunk(again.chunk_id(chunk_data(1)))
        assert again.put_chunk(again.chunk_id(chunk_data(2)), chunk_data(2)) == 0
        assert not again.has_chunk(again.chunk_id(chunk_data(3)))
