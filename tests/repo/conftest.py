"""Helpers for repository tests: small repositories in tmp_path and snapshots of made-up data."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hvbackup.repo import ZERO_CHUNK_ID, DiskIndex, Repository, SnapshotInfo

PASSWORD = "correct horse battery staple"
CHUNK = 64 * 1024
FAST_KDF = 2**12  # scrypt cost for throwaway test repositories; the default is tested in test_open_and_keys.py


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("HVBACKUP_PASSWORD", "HVBACKUP_REPO", "HVBACKUP_NEW_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def repo_path(tmp_path: Path) -> Path:
    return tmp_path / "repo"


@pytest.fixture
def repo(repo_path: Path):
    r = Repository.init(repo_path, PASSWORD, chunk_size=CHUNK, kdf_n=FAST_KDF)
    yield r
    r.close()


def chunk_data(seed: int, size: int = CHUNK) -> bytes:
    """Distinct, half-compressible data for chunk `seed`."""
    rng = random.Random(seed)
    return rng.randbytes(size // 2) + bytes([seed % 251]) * (size - size // 2)


def store_disk(repo: Repository, chunks: list[bytes | None]) -> DiskIndex:
    """Store the chunks (None = an all-zero chunk) and return the disk's index."""
    ids = bytearray()
    for data in chunks:
        if data is None:
            ids += ZERO_CHUNK_ID
        else:
            cid = repo.chunk_id(data)
            repo.put_chunk(cid, data)
            ids += cid
    return DiskIndex(size=len(chunks) * repo.chunk_size, chunk_size=repo.chunk_size, ids=bytes(ids))


def make_snapshot(
    repo: Repository, source: str, disks: dict[str, list[bytes | None]], *, sizes: bool = False, **kw
) -> SnapshotInfo:
    """A snapshot of made-up disks; with `sizes`, the manifest gives each disk's size (restores need it)."""
    with repo.backup_lease(f"test backup of {source}"):
        indexes = {name: store_disk(repo, chunks) for name, chunks in disks.items()}
        manifest = {
            "source": source,
            "mode": "full",
            "disks": [{"name": name} | ({"size": indexes[name].size} if sizes else {}) for name in disks],
        }
        return repo.commit_snapshot(manifest, indexes, **kw)


def chunk_file(repo: Repository, cid: bytes) -> Path:
    h = cid.hex()
    return repo.path / "chunks" / h[:2] / h[2:4] / h


def age_everything(root: Path, seconds: float = 7200) -> None:
    """Make every file look `seconds` old (to test the prune safety window)."""
    past = time.time() - seconds
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            os.utime(Path(dirpath) / name, (past, past))


PROCS = Path(__file__).with_name("procs.py")


def start_proc(role: str, repo_path: Path, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, HVBACKUP_PASSWORD=PASSWORD)
    return subprocess.Popen(
        [sys.executable, str(PROCS), role, str(repo_path), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
