"""read_chunk_into, the restore path: large chunks read with O_DIRECT and opened straight into the
caller's buffer, must give what get_chunk gives and fail the same way."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hvbackup import directio
from hvbackup.repo import ZERO_CHUNK_ID, Repository
from hvbackup.repo.errors import ChunkDamaged, ChunkMissing

from .conftest import FAST_KDF, PASSWORD, chunk_data, chunk_file

BIG = 1024 * 1024  # above directio.MIN_DIRECT, so chunk objects are read with O_DIRECT


@pytest.fixture
def big_repo(tmp_path: Path):
    r = Repository.init(tmp_path / "big", PASSWORD, chunk_size=BIG, kdf_n=FAST_KDF)
    yield r
    r.close()


def stored(repo: Repository, data: bytes) -> bytes:
    cid = repo.chunk_id(data)
    with repo.backup_lease("test"):
        repo.put_chunk(cid, data)
    return cid


@pytest.mark.parametrize("kind", ["compressible", "incompressible", "short tail"])
def test_read_into_gives_what_get_chunk_gives(big_repo: Repository, kind: str) -> None:
    data = {
        "compressible": chunk_data(1, BIG),
        "incompressible": os.urandom(BIG),
        "short tail": os.urandom(BIG - 4096 - 77),
    }[kind]
    cid = stored(big_repo, data)
    out = directio.scratch("test-out", len(data))
    out[:] = b"\xaa" * len(data)
    big_repo.read_chunk_into(cid, out)
    assert out.tobytes() == data == big_repo.get_chunk(cid)


def test_zero_chunk_fills_the_buffer_with_zeros(big_repo: Repository) -> None:
    out = directio.scratch("test-out", BIG)
    out[:] = b"\x01" * BIG
    big_repo.read_chunk_into(ZERO_CHUNK_ID, out)
    assert out.tobytes() == bytes(BIG)


@pytest.mark.parametrize("damage", ["flip", "truncate", "other chunk"])
def test_damage_is_an_error_naming_the_chunk(big_repo: Repository, damage: str) -> None:
    data = os.urandom(BIG)
    cid = stored(big_repo, data)
    path = chunk_file(big_repo, cid)
    blob = bytearray(path.read_bytes())
    if damage == "flip":
        blob[len(blob) // 2] ^= 0x01
    elif damage == "truncate":
        del blob[-5000:]
    else:
        other = os.urandom(BIG)
        blob = bytearray(chunk_file(big_repo, stored(big_repo, other)).read_bytes())
    path.write_bytes(bytes(blob))
    with pytest.raises(ChunkDamaged, match=cid.hex()):
        big_repo.read_chunk_into(cid, directio.scratch("test-out", BIG))


def test_a_buffer_of_the_wrong_length_is_damage_not_garbage(big_repo: Repository) -> None:
    compressible = stored(big_repo, chunk_data(2, BIG))
    raw = stored(big_repo, os.urandom(BIG))
    for cid in (compressible, raw):
        with pytest.raises(ChunkDamaged):
            big_repo.read_chunk_into(cid, directio.scratch("test-out", BIG - 4096))


def test_missing_chunk(big_repo: Repository) -> None:
    with pytest.raises(ChunkMissing):
        big_repo.read_chunk_into(b"\x42" * 32, directio.scratch("test-out", BIG))
