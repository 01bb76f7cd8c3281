"""SnapshotDiskView: random reads equal the image, zero chunks cost no fetch, prefetch fills the cache."""

from __future__ import annotations

import os
import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from hvbackup.engine.files.view import SnapshotDiskView, ViewFile
from hvbackup.engine.image_backup import backup_image
from tests.engine.files.conftest import new_repo

CHUNK = 1024 * 1024


@pytest.fixture(scope="module")
def image_snapshot(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("view")
    image = work / "disk.raw"
    data = bytearray(os.urandom(10 * CHUNK + 12345))
    data[3 * CHUNK : 5 * CHUNK] = bytes(2 * CHUNK)  # two zero chunks
    image.write_bytes(data)
    repo = new_repo(work / "repo")
    snap = repo.load_snapshot(backup_image(repo, image).snapshot.id)
    yield repo, snap.index("disk0"), bytes(data)
    repo.close()


class CountingRepo:
    """The real repository, counting the chunks fetched from it."""

    def __init__(self, repo) -> None:
        self.repo = repo
        self.fetched: list[bytes] = []

    def get_chunk(self, cid: bytes) -> bytes:
        self.fetched.append(cid)
        return self.repo.get_chunk(cid)


def test_random_reads_equal_the_image(image_snapshot):
    repo, index, data = image_snapshot
    rng = random.Random(7)
    with SnapshotDiskView(repo, index, cache_chunks=4) as view:
        assert view.size == len(data)
        for _ in range(300):
            offset = rng.randrange(0, len(data))
            length = rng.choice([1, 511, 4096, CHUNK, 3 * CHUNK + 17])
            assert view.read(offset, length) == data[offset : offset + length]
        assert view.read(len(data) - 5, 100) == data[-5:]


def test_parallel_readers_see_the_same_bytes(image_snapshot):
    repo, index, data = image_snapshot
    ranges = [(i * 777_777 % len(data), 2 * CHUNK) for i in range(64)]
    with SnapshotDiskView(repo, index, cache_chunks=8) as view, ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda r: view.read(*r), ranges))
    assert results == [data[o : o + n] for o, n in ranges]


def test_zero_chunks_are_never_fetched(image_snapshot):
    repo, index, _ = image_snapshot
    counting = CountingRepo(repo)
    with SnapshotDiskView(counting, index) as view:  # type: ignore[arg-type]
        assert view.read(3 * CHUNK, 2 * CHUNK) == bytes(2 * CHUNK)
    assert counting.fetched == []


def test_prefetch_fills_the_cache_and_reads_then_fetch_nothing(image_snapshot):
    repo, index, data = image_snapshot
    counting = CountingRepo(repo)
    with SnapshotDiskView(counting, index, cache_chunks=32) as view:  # type: ignore[arg-type]
        view.prefetch(0, len(data))
        fetched = len(counting.fetched)
        assert fetched == 9  # 11 chunks, 2 of them zero
        assert view.read(0, len(data)) == data
        assert len(counting.fetched) == fetched


def test_file_wrapper_seeks_and_reads(image_snapshot):
    repo, index, data = image_snapshot
    with SnapshotDiskView(repo, index) as view:
        fh = ViewFile(view)
        fh.seek(-10, os.SEEK_END)
        assert fh.read() == data[-10:]
        fh.seek(CHUNK - 3)
        buf = bytearray(6)
        assert fh.readinto(buf) == 6 and bytes(buf) == data[CHUNK - 3 : CHUNK + 3]
        assert fh.tell() == CHUNK + 3
