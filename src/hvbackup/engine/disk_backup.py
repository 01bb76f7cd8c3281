"""Back up one virtual disk into the repository as a fixed index of chunk IDs.

A chunk is the piece [i*chunk_size, (i+1)*chunk_size) of the virtual disk. For each chunk the
plan decides one of three things: it lies wholly in unallocated space (marked zero, never read),
it is unchanged since the previous snapshot (its ID is copied, never read), or it is read,
hashed, and stored if the repository does not have it yet.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import asdict, dataclass, field

from hvbackup import directio
from hvbackup.disk import DiskImage
from hvbackup.engine.pipeline import ordered_map
from hvbackup.engine.ranges import Range, chunks_touched, merge_ranges
from hvbackup.progress import NoProgress, Progress
from hvbackup.repo import ZERO_CHUNK_ID, DiskIndex, Repository

MODE_FULL = "full"
MODE_INCREMENTAL = "incremental"


@dataclass
class DiskBackupStats:
    size: int = 0
    chunks: int = 0
    bytes_read: int = 0
    bytes_new: int = 0
    bytes_deduplicated: int = 0
    bytes_zero: int = 0
    bytes_unchanged: int = 0
    stored_bytes: int = 0
    chunks_new: int = 0
    duration_s: float = 0.0

    @property
    def throughput(self) -> float:
        return self.bytes_read / self.duration_s if self.duration_s > 0 else 0.0

    def to_json(self) -> dict:
        data = asdict(self)
        data["throughput_bytes_per_s"] = round(self.throughput)
        return data


@dataclass
class DiskBackupResult:
    index: DiskIndex
    mode: str
    reason: str
    stats: DiskBackupStats
    sampled_chunks: int = 0


@dataclass
class _Plan:
    read: list[int] = field(default_factory=list)
    zero: set[int] = field(default_factory=set)
    unchanged: set[int] = field(default_factory=set)


class DiskBackup:
    """One disk's backup run: plan once, then read, hash and store through the thread pipeline."""

    def __init__(
        self,
        repo: Repository,
        disk: DiskImage,
        *,
        previous: DiskIndex | None = None,
        changed: list[Range] | None = None,
        workers: int | None = None,
    ) -> None:
        self.repo = repo
        self.disk = disk
        self.previous = previous
        self.chunk_size = repo.chunk_size
        self.count = (disk.size + self.chunk_size - 1) // self.chunk_size
        self.workers = workers
        self.stats = DiskBackupStats(size=disk.size, chunks=self.count)
        self._lock = threading.Lock()
        self._storing: set[bytes] = set()
        self._zero_ids: dict[int, bytes] = {}
        self._allocated = chunks_touched(disk.allocated_ranges(), self.chunk_size, self.count)
        self.mode, self.reason = self._choose_mode(previous, changed)
        self.plan = self._plan_incremental(changed or []) if self.mode == MODE_INCREMENTAL else self._plan_full()

    def chunk_len(self, i: int) -> int:
        return min(self.chunk_size, self.disk.size - i * self.chunk_size)

    @property
    def bytes_to_read(self) -> int:
        return sum(self.chunk_len(i) for i in self.plan.read)

    def _choose_mode(self, previous: DiskIndex | None, changed: list[Range] | None) -> tuple[str, str]:
        if previous is None:
            return MODE_FULL, "no earlier snapshot of this disk"
        if changed is None:
            return MODE_FULL, "no change-tracking ranges given; read all allocated data (deduplicated)"
        if previous.size != self.disk.size:
            return MODE_FULL, f"disk size changed from {previous.size} to {self.disk.size} bytes"
        if previous.chunk_size != self.chunk_size:
            return MODE_FULL, "the earlier snapshot used another chunk size"
        return MODE_INCREMENTAL, "changed ranges from change tracking"

    def _plan_full(self) -> _Plan:
        return _Plan(read=sorted(self._allocated), zero=set(range(self.count)) - self._allocated)

    def _plan_incremental(self, changed: list[Range]) -> _Plan:
        changed_chunks = chunks_touched(merge_ranges(changed), self.chunk_size, self.count)
        plan = _Plan()
        for i in range(self.count):
            if i not in self._allocated:
                plan.zero.add(i)
            elif i in changed_chunks:
                plan.read.append(i)
            else:
                plan.unchanged.add(i)
        return plan

    # -- running ----------------------------------------------------------------------------

    def run(
        self,
        *,
        sample_fraction: float = 0.005,
        min_sample: int = 8,
        progress: Progress | None = None,
    ) -> DiskBackupResult:
        progress = progress or NoProgress()
        started = time.monotonic()
        sampled = 0
        if self.mode == MODE_INCREMENTAL:
            sampled, mismatch = self._verify_sample(sample_fraction, min_sample)
            if mismatch is not None:
                self.mode = MODE_FULL
                self.reason = (
                    f"change tracking is not trustworthy: chunk {mismatch} (offset {mismatch * self.chunk_size}) "
                    "changed although the ranges said it did not; read the whole disk"
                )
                self.plan = self._plan_full()
        progress.set_total(self.bytes_to_read)
        ids = bytearray(self.count * 32)
        for i in self.plan.unchanged:
            ids[i * 32 : (i + 1) * 32] = self.previous[i]  # type: ignore[index]
            self.stats.bytes_unchanged += self.chunk_len(i)
        for i in self.plan.zero:
            ids[i * 32 : (i + 1) * 32] = ZERO_CHUNK_ID
            self.stats.bytes_zero += self.chunk_len(i)
        for i, cid in zip(
            self.plan.read, ordered_map(self._store_chunk, self.plan.read, workers=self.workers), strict=False
        ):
            ids[i * 32 : (i + 1) * 32] = cid
            progress.advance(self.chunk_len(i))
        self.stats.duration_s = time.monotonic() - started
        index = DiskIndex(size=self.disk.size, chunk_size=self.chunk_size, ids=bytes(ids))
        return DiskBackupResult(
            index=index, mode=self.mode, reason=self.reason, stats=self.stats, sampled_chunks=sampled
        )

    def _verify_sample(self, fraction: float, minimum: int) -> tuple[int, int | None]:
        """Re-read a sample of the chunks the ranges call unchanged; the first mismatch, if any."""
        candidates = sorted(self.plan.unchanged)
        want = min(len(candidates), max(minimum, round(len(candidates) * fraction)))
        sample = random.Random(len(candidates)).sample(candidates, want) if want else []
        previous = self.previous
        assert previous is not None

        def matches(i: int) -> bool:
            data = self._read(i)
            with self._lock:
                self.stats.bytes_read += len(data)
            return self._id_of(data) == previous[i]

        for i, ok in zip(sample, ordered_map(matches, sample, workers=self.workers), strict=False):
            if not ok:
                return len(sample), i
        return len(sample), None

    def _read(self, i: int) -> memoryview:
        """Chunk i in this thread's scratch buffer: valid until the thread reads its next chunk."""
        view = directio.scratch("backup-chunk", self.chunk_len(i))
        self.disk.read_into(view, i * self.chunk_size)
        return view

    def _id_of(self, data: memoryview) -> bytes:
        cid = self.repo.chunk_id(data)
        return ZERO_CHUNK_ID if cid == self._zero_id(len(data)) else cid

    def _zero_id(self, length: int) -> bytes:
        """The id an all-zero chunk of this length would have: comparing ids is free, comparing a
        memoryview with zeros byte by byte is not."""
        cid = self._zero_ids.get(length)
        if cid is None:
            cid = self._zero_ids[length] = self.repo.chunk_id(bytes(length))
        return cid

    def _store_chunk(self, i: int) -> bytes:
        data = self._read(i)
        cid = self._id_of(data)
        with self._lock:
            self.stats.bytes_read += len(data)
            if cid == ZERO_CHUNK_ID:
                self.stats.bytes_zero += len(data)
                return cid
            if cid in self._storing or self.repo.has_chunk(cid):
                self.stats.bytes_deduplicated += len(data)
                return cid
            self._storing.add(cid)
        stored = self.repo.put_chunk(cid, data, trusted_id=True)
        with self._lock:
            if stored == 0:  # already in the repository (e.g. left by an interrupted backup)
                self.stats.bytes_deduplicated += len(data)
            else:
                self.stats.bytes_new += len(data)
                self.stats.stored_bytes += stored
                self.stats.chunks_new += 1
        return cid
