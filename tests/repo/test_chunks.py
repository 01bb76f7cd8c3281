"""Chunks: stored once, encrypted, compressed only when that helps, and verified when read."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from hvbackup.repo import ZERO_CHUNK_ID, Repository
from hvbackup.repo.errors import ChunkDamaged, ChunkMissing

from .conftest import CHUNK, FAST_KDF, PASSWORD, chunk_data, chunk_file


def all_chunk_files(repo: Repository) -> list[Path]:
    return [p for p in (repo.path / "chunks").rglob("*") if p.is_file()]


def test_round_trip_after_reopening(repo: Repository, repo_path: Path) -> None:
    data = chunk_data(1)
    cid = repo.chunk_id(data)
    with repo.backup_lease("test"):
        assert repo.put_chunk(cid, data) > 0
    repo.close()
    with Repository.open(repo_path, PASSWORD) as again:
        assert again.get_chunk(cid) == data


def test_same_data_same_id_stored_once(repo: Repository) -> None:
    data = chunk_data(2)
    with repo.backup_lease("test"):
        first = repo.put_chunk(repo.chunk_id(data), data)
        second = repo.put_chunk(repo.chunk_id(bytes(data)), bytes(data))
    assert first > 0 and second == 0
    assert len(all_chunk_files(repo)) == 1


def test_ids_are_keyed_per_repository(repo: Repository, tmp_path: Path) -> None:
    data = chunk_data(3)
    with Repository.init(tmp_path / "other", PASSWORD, chunk_size=CHUNK, kdf_n=FAST_KDF) as other:
        assert repo.chunk_id(data) != other.chunk_id(data)
    assert len(repo.chunk_id(data)) == 32


def test_zero_chunk_is_never_stored(repo: Repository) -> None:
    with repo.backup_lease("test"):
        assert repo.put_chunk(ZERO_CHUNK_ID, bytes(CHUNK)) == 0
    assert all_chunk_files(repo) == []
    assert repo.has_chunk(ZERO_CHUNK_ID)
    assert repo.get_chunk(ZERO_CHUNK_ID) == bytes(CHUNK)


def test_compresses_only_when_smaller(repo: Repository) -> None:
    text = b"the quick brown fox " * (CHUNK // 20) + b"x" * (CHUNK % 20)
    noise = os.urandom(CHUNK)
    with repo.backup_lease("test"):
        text_size = repo.put_chunk(repo.chunk_id(text), text)
        noise_size = repo.put_chunk(repo.chunk_id(noise), noise)
    assert text_size < CHUNK // 10
    assert noise_size == CHUNK + 20 + 16  # header + tag, no compression frame
    assert repo.get_chunk(repo.chunk_id(text)) == text
    assert repo.get_chunk(repo.chunk_id(noise)) == noise


def test_stored_chunk_does_not_contain_plaintext(repo: Repository) -> None:
    data = b"SECRET-MARKER-" * (CHUNK // 14) + b"!" * (CHUNK % 14)
    cid = repo.chunk_id(data)
    with repo.backup_lease("test"):
        repo.put_chunk(cid, data)
    assert b"SECRET-MARKER" not in chunk_file(repo, cid).read_bytes()


def test_chacha20_repository_round_trip(tmp_path: Path) -> None:
    with Repository.init(tmp_path / "r", PASSWORD, chunk_size=CHUNK, cipher="chacha20-poly1305", kdf_n=FAST_KDF) as r:
        data = chunk_data(4)
        with r.backup_lease("test"):
            r.put_chunk(r.chunk_id(data), data)
        assert r.get_chunk(r.chunk_id(data)) == data
        assert chunk_file(r, r.chunk_id(data)).read_bytes()[6] == 2


def test_put_refuses_data_that_does_not_match_the_id(repo: Repository) -> None:
    with repo.backup_lease("test"), pytest.raises(ValueError, match="does not match"):
        repo.put_chunk(repo.chunk_id(chunk_data(5)), chunk_data(6))
    assert all_chunk_files(repo) == []


def test_missing_chunk_names_the_chunk(repo: Repository) -> None:
    cid = repo.chunk_id(chunk_data(7))
    with pytest.raises(ChunkMissing, match=cid.hex()):
        repo.get_chunk(cid)


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty"])
def test_damaged_chunk_is_an_error_naming_the_chunk(repo: Repository, damage: str) -> None:
    data = chunk_data(8)
    cid = repo.chunk_id(data)
    with repo.backup_lease("test"):
        repo.put_chunk(cid, data)
    path = chunk_file(repo, cid)
    blob = bytearray(path.read_bytes())
    if damage == "flip":
        blob[len(blob) // 2] ^= 0x01
    elif damage == "truncate":
        del blob[-100:]
    else:
        blob.clear()
    path.write_bytes(bytes(blob))
    with pytest.raises(ChunkDamaged, match=cid.hex()):
        repo.get_chunk(cid)


def test_a_chunk_cannot_be_passed_off_as_another(repo: Repository) -> None:
    a, b = chunk_data(9), chunk_data(10)
    with repo.backup_lease("test"):
        repo.put_chunk(repo.chunk_id(a), a)
        repo.put_chunk(repo.chunk_id(b), b)
    chunk_file(repo, repo.chunk_id(b)).write_bytes(chunk_file(repo, repo.chunk_id(a)).read_bytes())
    with pytest.raises(ChunkDamaged):
        repo.get_chunk(repo.chunk_id(b))


def test_concurrent_puts_from_many_threads(repo: Repository) -> None:
    datas = [chunk_data(i % 40) for i in range(200)]  # 40 distinct chunks, each put 5 times
    errors: list[BaseException] = []

    def worker(items: list[bytes]) -> None:
        try:
            for d in items:
                cid = repo.chunk_id(d)
                if not repo.has_chunk(cid):
                    repo.put_chunk(cid, d)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with repo.backup_lease("test"):
        threads = [threading.Thread(target=worker, args=(datas[i::8],)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert len(all_chunk_files(repo)) == 40
    for d in datas[:40]:
        assert repo.get_chunk(repo.chunk_id(d)) == d


def test_chunks_are_sharded_two_levels_deep(repo: Repository) -> None:
    data = chunk_data(11)
    cid = repo.chunk_id(data)
    with repo.backup_lease("test"):
        repo.put_chunk(cid, data)
    h = cid.hex()
    assert (repo.path / "chunks" / h[:2] / h[2:4] / h).is_file()
