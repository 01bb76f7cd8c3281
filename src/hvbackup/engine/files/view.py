"""A random-access, read-only view of one disk of a snapshot.

Reads map to chunk ids through the disk index; decrypted chunks are kept in a small LRU, and
all-zero chunks are answered without touching the repository. Sequential reads (also several
interleaved sequential streams, as a striped LV makes) start a read-ahead of the next chunks on
a pool of threads, so fetching and decrypting overlap with whoever consumes the data.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO, Protocol, Self, cast

from hvbackup.engine.pipeline import ordered_map
from hvbackup.repo import ZERO_CHUNK_ID, DiskIndex, Repository

_RECENT_MISSES = 16


class SnapshotDiskView:
    """Thread-safe `read(offset, length)` over a snapshot disk, with a chunk cache and read-ahead."""

    def __init__(
        self, repo: Repository, index: DiskIndex, *, cache_chunks: int = 64, prefetch_workers: int = 4
    ) -> None:
        self.repo = repo
        self.index = index
        self.size = index.size
        self.chunk_size = index.chunk_size
        self.cache_chunks = max(cache_chunks, 2 * prefetch_workers + 2)
        self.prefetch_workers = prefetch_workers
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._inflight: dict[int, Future[bytes]] = {}
        self._recent: OrderedDict[int, None] = OrderedDict()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=prefetch_workers, thread_name_prefix="hvb-view")
        self._zero = bytes(self.chunk_size)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, offset: int, length: int) -> bytes:
        """Up to `length` bytes at `offset` (fewer only at the end of the disk)."""
        if offset < 0 or length < 0:
            raise ValueError("offset and length must not be negative")
        end = min(offset + length, self.size)
        parts: list[bytes | memoryview] = []
        while offset < end:
            i, within = divmod(offset, self.chunk_size)
            take = min(end - offset, self.chunk_length(i) - within)
            data = self.chunk(i)
            parts.append(data if (within == 0 and take == len(data)) else memoryview(data)[within : within + take])
            offset += take
        return parts[0] if len(parts) == 1 and isinstance(parts[0], bytes) else b"".join(parts)

    def chunk_length(self, i: int) -> int:
        return self.index.chunk_length(i)

    def is_zero(self, i: int) -> bool:
        return self.index[i] == ZERO_CHUNK_ID

    def chunk(self, i: int) -> bytes:
        """The plaintext of chunk `i`, from the cache, a running fetch, or the repository."""
        if self.is_zero(i):
            return self._zero[: self.chunk_length(i)]
        with self._lock:
            data = self._cache.get(i)
            if data is not None:
                self._cache.move_to_end(i)
                return data
            future = self._inflight.get(i)
            sequential = self._note_miss(i)
        if future is None:
            future = self._start_fetch(i)
        if sequential:
            self._read_ahead(i + 1)
        return future.result()

    def prefetch(self, offset: int, length: int) -> None:
        """Fetch every chunk of [offset, offset+length) in parallel into the cache (at most what fits)."""
        if length <= 0:
            return
        first = offset // self.chunk_size
        last = min((offset + length - 1) // self.chunk_size, len(self.index) - 1)
        wanted = [i for i in range(first, last + 1) if not self.is_zero(i) and not self._cached(i)]
        wanted = wanted[: self.cache_chunks // 2]
        for i, data in zip(wanted, ordered_map(self._fetch, wanted, workers=self.prefetch_workers), strict=False):
            self._store(i, data)

    def _cached(self, i: int) -> bool:
        with self._lock:
            return i in self._cache

    def _note_miss(self, i: int) -> bool:
        sequential = (i - 1) in self._recent
        self._recent[i] = None
        self._recent.move_to_end(i)
        while len(self._recent) > _RECENT_MISSES:
            self._recent.popitem(last=False)
        return sequential

    def _read_ahead(self, start: int) -> None:
        for i in range(start, min(start + self.prefetch_workers * 2, len(self.index))):
            if self.is_zero(i):
                continue
            with self._lock:
                self._recent[i] = None
                busy = i in self._cache or i in self._inflight
            if not busy:
                self._start_fetch(i)

    def _start_fetch(self, i: int) -> Future[bytes]:
        with self._lock:
            future = self._inflight.get(i)
            if future is not None:
                return future
            future = self._pool.submit(self._fetch_and_store, i)
            self._inflight[i] = future
            return future

    def _fetch_and_store(self, i: int) -> bytes:
        try:
            data = self._fetch(i)
            self._store(i, data)
            return data
        finally:
            with self._lock:
                self._inflight.pop(i, None)

    def _fetch(self, i: int) -> bytes:
        return self.repo.get_chunk(self.index[i])

    def _store(self, i: int, data: bytes) -> None:
        with self._lock:
            self._cache[i] = data
            self._cache.move_to_end(i)
            while len(self._cache) > self.cache_chunks:
                self._cache.popitem(last=False)


class RandomAccess(Protocol):
    """Bytes read by offset: a SnapshotDiskView, or a disk image (disk/image.py's DiskImage)."""

    size: int

    def read(self, offset: int, length: int) -> bytes: ...


class ViewFile(io.RawIOBase):
    """A seekable, read-only file object over random-access bytes (what dissect parsers take)."""

    def __init__(self, view: RandomAccess) -> None:
        super().__init__()
        self.view = view
        self.size = view.size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = max(self.size - self._pos, 0)
        data = self.view.read(self._pos, size)
        self._pos += len(data)
        return bytes(data)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def as_binary_file(view: RandomAccess) -> BinaryIO:
    """A ViewFile typed as the binary file object it is, for readers annotated with BinaryIO."""
    return cast(BinaryIO, ViewFile(view))
