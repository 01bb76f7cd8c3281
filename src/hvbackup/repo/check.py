"""`check`: is the repository whole? Structure always; with read_data, every chunk's content.

Structure: config and key slots parse, every snapshot manifest and disk index decrypts and
matches, every chunk an index references exists. Read data: every referenced chunk (or a random
subset) is read, its tag verified and its plaintext re-hashed, each chunk once, in threads.
Every missing or damaged chunk is reported with each snapshot and disk that uses it, and is
remembered in the local cache so that the next backup of that data stores it again. A snapshot
whose manifest or index cannot be read is named, with the command that removes it.
Check writes nothing to the repository but the cleanup of temporary files of writers that died
more than a day ago, and skips that on a repository it cannot write to (a read-only copy).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from hvbackup.errors import HvBackupError, UsageError
from hvbackup.progress import Progress
from hvbackup.repo import layout
from hvbackup.repo.backend import STALE_TEMPORARY_AGE
from hvbackup.repo.errors import ChunkError, DamagedObject, MissingObject
from hvbackup.repo.repository import Repository
from hvbackup.repo.snapshots import SnapshotInfo, printable


@dataclass
class ChunkUse:
    snapshot: str
    source: str
    time: str
    disk: str
    offsets: list[int]


@dataclass
class ChunkProblem:
    chunk_id: str
    problem: str  # "missing" or "damaged"
    reason: str
    used_by: list[ChunkUse] = field(default_factory=list)


@dataclass
class SnapshotProblem:
    snapshot: str
    problem: str  # "manifest" or "index"
    reason: str


@dataclass
class CheckReport:
    snapshots: int = 0
    indexes: int = 0
    chunks_referenced: int = 0
    chunks_read: int = 0
    read_data: bool = False
    temporary_files_removed: int = 0
    errors: list[str] = field(default_factory=list)
    chunks: list[ChunkProblem] = field(default_factory=list)
    snapshot_problems: list[SnapshotProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.chunks

    @property
    def damaged_snapshots(self) -> list[str]:
        """Every snapshot that cannot be restored whole: its manifest, an index or a chunk is damaged."""
        users = {use.snapshot for p in self.chunks for use in p.used_by}
        return sorted(users | {p.snapshot for p in self.snapshot_problems})

    def to_json(self) -> dict:
        data = asdict(self)
        data["ok"] = self.ok
        data["damaged_snapshots"] = self.damaged_snapshots
        return data


def check(
    repo: Repository,
    *,
    read_data: bool = False,
    subset: float | None = None,
    workers: int = 4,
    progress: Progress | None = None,
    seed: int | None = None,
) -> CheckReport:
    if workers < 1:
        raise UsageError(f"--workers {workers}: at least one thread must read")
    report = CheckReport(read_data=read_data)
    # A read lease: check writes nothing to the repository, so it also verifies a read-only copy.
    with repo.read_lease("check") as lease:
        _check_key_slots(repo, report)
        _check_generation(repo, report)
        usage = _check_snapshots(repo, report)
        report.chunks_referenced = len(usage.ids)
        present = set(repo.list_chunk_ids())
        problems = {cid: ("missing", "not in the repository") for cid in usage.ids - present}
        if read_data:
            to_read = sorted(usage.ids & present)
            if subset is not None and subset < 1.0:
                count = max(1, round(len(to_read) * subset)) if to_read else 0
                to_read = sorted(random.Random(seed).sample(to_read, count))
            problems |= _read_chunks(repo, to_read, workers, progress, report)
        if problems:
            repo.mark_damaged(set(problems))
            report.chunks = _describe(repo, problems, usage.snapshots)
        if lease is not None:
            report.temporary_files_removed = repo.backend.remove_temporary(time.time() - STALE_TEMPORARY_AGE)
    return report


@dataclass
class _Usage:
    ids: set[bytes] = field(default_factory=set)
    snapshots: list[SnapshotInfo] = field(default_factory=list)


def _check_key_slots(repo: Repository, report: CheckReport) -> None:
    readable = {slot.slot_id for slot in repo.key_slots()}
    for name in repo.backend.list(layout.KEYS):
        if layout.leaf(name) not in readable:
            report.errors.append(f"key slot {name} is unreadable")
    if not readable:
        report.errors.append("no readable key slot: only an exported key can open this repository")


def _check_generation(repo: Repository, report: CheckReport) -> None:
    try:
        repo.generation()
    except DamagedObject as exc:
        report.errors.append(str(exc))


def _check_snapshots(repo: Repository, report: CheckReport) -> _Usage:
    usage = _Usage()
    for snapshot_id in repo.snapshot_object_ids():
        try:
            snapshot = repo.load_snapshot(snapshot_id)
        except HvBackupError as exc:
            _snapshot_damaged(report, snapshot_id, "manifest", str(exc))
            continue
        report.snapshots += 1
        usage.snapshots.append(snapshot.info)
        for disk in snapshot.info.disk_names:
            try:
                usage.ids |= snapshot.index(disk).stored_ids()
                report.indexes += 1
            except (MissingObject, DamagedObject, KeyError) as exc:
                _snapshot_damaged(
                    report,
                    snapshot_id,
                    "index",
                    f"snapshot {snapshot.info.short_id} ({printable(snapshot.info.source)}): {exc}",
                )
    return usage


def _snapshot_damaged(report: CheckReport, snapshot_id: str, problem: str, reason: str) -> None:
    report.snapshot_problems.append(SnapshotProblem(snapshot_id, problem, reason))
    report.errors.append(f"{reason}; remove the snapshot with `hvbackup forget {snapshot_id[:8]}`")


def _read_chunks(
    repo: Repository, ids: list[bytes], workers: int, progress: Progress | None, report: CheckReport
) -> dict[bytes, tuple[str, str]]:
    if progress is not None:
        progress.set_total(len(ids) * repo.chunk_size)
    problems: dict[bytes, tuple[str, str]] = {}

    def verify(cid: bytes) -> tuple[bytes, ChunkError | None]:
        try:
            repo.get_chunk(cid)
            return cid, None
        except ChunkError as exc:
            return cid, exc

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hvb-check") as pool:
        for cid, error in pool.map(verify, ids):
            report.chunks_read += 1
            if error is not None:
                kind = "missing" if isinstance(error, MissingObject) else "damaged"
                problems[cid] = (kind, getattr(error, "reason", str(error)))
            if progress is not None:
                progress.advance(repo.chunk_size)
    return problems


def _describe(
    repo: Repository, problems: dict[bytes, tuple[str, str]], snapshots: Iterable[SnapshotInfo]
) -> list[ChunkProblem]:
    found = {cid: ChunkProblem(cid.hex(), kind, reason) for cid, (kind, reason) in problems.items()}
    for info in snapshots:
        snapshot = repo.load_snapshot(info.id)
        for disk in info.disk_names:
            try:
                index = snapshot.index(disk)
            except (MissingObject, DamagedObject, KeyError):
                continue
            offsets: dict[bytes, list[int]] = {}
            for number, cid in enumerate(index):
                if cid in found:
                    offsets.setdefault(cid, []).append(number * index.chunk_size)
            for cid, where in offsets.items():
                found[cid].used_by.append(ChunkUse(info.id, printable(info.source), info.time.isoformat(), disk, where))
    for problem in found.values():
        problem.used_by.sort(key=lambda use: (use.time, use.snapshot, use.disk))
    return sorted(found.values(), key=lambda p: p.chunk_id)
