"""`prune`: mark and sweep. Delete chunks no snapshot references, older than a safety window.

Prune holds the exclusive lock, so no backup runs meanwhile; the safety window additionally
keeps recent unreferenced chunks (left by a crashed or another host's backup whose lease looked
stale) so that the next backup can still use them. Prune bumps the repository generation before
deleting anything, which invalidates every host's chunk cache.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from hvbackup.errors import UsageError
from hvbackup.progress import Progress
from hvbackup.repo import layout
from hvbackup.repo.backend import STALE_TEMPORARY_AGE
from hvbackup.repo.errors import DamagedObject, MissingObject, ObjectNotFound
from hvbackup.repo.repository import Repository

DEFAULT_SAFETY_WINDOW = 3600.0


@dataclass
class PruneResult:
    snapshots: int = 0
    chunks_total: int = 0
    chunks_referenced: int = 0
    chunks_deleted: int = 0
    bytes_deleted: int = 0
    chunks_kept_young: int = 0
    objects_cleaned: int = 0
    dry_run: bool = False

    def to_json(self) -> dict:
        return asdict(self)


def check_wait(wait: float) -> None:
    """Refuse a negative --wait (before anything is done, e.g. before forget removes snapshots)."""
    if wait < 0:
        raise UsageError(f"--wait {wait:g}: give the seconds to wait for running backups, 0 or more")


def prune(
    repo: Repository,
    *,
    safety_window: float = DEFAULT_SAFETY_WINDOW,
    wait: float = 0.0,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> PruneResult:
    check_wait(wait)
    if safety_window < 0:
        raise UsageError(f"--safety-window {safety_window:g}: the safety window cannot be negative")
    with repo.exclusive_lock("prune", wait=wait):
        result = PruneResult(dry_run=dry_run)
        cutoff = time.time() - safety_window
        referenced, snapshot_ids = _mark(repo, result)
        all_ids = set(repo.list_chunk_ids())
        result.chunks_total = len(all_ids)
        result.chunks_referenced = len(referenced & all_ids)
        doomed = _old_enough(repo, all_ids - referenced, cutoff, result)
        leftovers = _orphans(repo, snapshot_ids, cutoff)
        result.objects_cleaned = len(leftovers)
        if dry_run:
            result.chunks_deleted = len(doomed)
            return result
        repo.bump_generation()
        if progress is not None:
            progress.set_total(len(doomed))
        for cid, size in doomed.items():
            repo.backend.delete(layout.chunk(cid))
            result.chunks_deleted += 1
            result.bytes_deleted += size
            if progress is not None:
                progress.advance(1)
        for name in leftovers:
            repo.backend.delete(name)
        # Lock objects are written while prune runs, so temporary files get a fixed, long age.
        result.objects_cleaned += repo.backend.remove_temporary(time.time() - STALE_TEMPORARY_AGE)
        repo.rebuild_cache()
        return result


def _mark(repo: Repository, result: PruneResult) -> tuple[set[bytes], set[str]]:
    """Every chunk id any snapshot references; refuses (raises) if any snapshot cannot be read."""
    referenced: set[bytes] = set()
    snapshot_ids = repo.snapshot_object_ids()
    for snapshot_id in snapshot_ids:
        try:
            info = repo.snapshot_info(snapshot_id)
            snapshot = repo.load_snapshot(info.id)
            for disk in info.disk_names:
                referenced |= snapshot.index(disk).stored_ids()
        except (DamagedObject, MissingObject, KeyError) as exc:
            kind, reason = (DamagedObject, exc.args[0]) if isinstance(exc, KeyError) else (type(exc), exc)
            raise kind(
                f"{reason}; prune deletes nothing while a snapshot cannot be read: "
                f"remove it with `hvbackup forget {snapshot_id[:8]}` (`hvbackup check` lists them all)"
            ) from None
    result.snapshots = len(snapshot_ids)
    return referenced, set(snapshot_ids)


def _old_enough(repo: Repository, candidates: set[bytes], cutoff: float, result: PruneResult) -> dict[bytes, int]:
    doomed = {}
    for cid in candidates:
        try:
            stat = repo.backend.stat(layout.chunk(cid))
        except ObjectNotFound:
            continue
        if stat.mtime < cutoff:
            doomed[cid] = stat.size
        else:
            result.chunks_kept_young += 1
    return doomed


def _orphans(repo: Repository, snapshot_ids: set[str], cutoff: float) -> list[str]:
    """Index objects and protection marks of snapshots that no longer exist, older than the cutoff."""
    found = []
    for prefix in (layout.INDEXES, layout.PROTECTED):
        for name in repo.backend.list(prefix):
            owner = name.split("/")[1]
            if owner in snapshot_ids:
                continue
            try:
                if repo.backend.stat(name).mtime < cutoff:
                    found.append(name)
            except ObjectNotFound:
                continue
    return found
