"""`forget`: remove the snapshots a keep policy does not keep, or the snapshots named by id
(chunks are freed later by prune)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

from hvbackup.errors import HvBackupError, UsageError
from hvbackup.repo.repository import Repository
from hvbackup.repo.retention import Decision, KeepPolicy, decide
from hvbackup.repo.snapshots import SnapshotInfo, printable


def forget(
    repo: Repository,
    policy: KeepPolicy,
    *,
    source: str | None = None,
    dry_run: bool = False,
    tz: tzinfo | None = None,
    keep_none: bool = False,
) -> list[Decision]:
    """Decide for every snapshot (of `source`, if given) and delete the ones not kept, unless dry_run."""
    with repo.backup_lease("forget"):
        snapshots = [s for s in repo.list_snapshots() if source is None or s.source == source]
        decisions = decide(snapshots, policy, tz, keep_none=keep_none)
        if not dry_run:
            for decision in decisions:
                if not decision.keep:
                    repo.delete_snapshot(decision.snapshot.id)
    return decisions


@dataclass
class NamedSnapshot:
    """A snapshot forgotten because it was named; `info` is None when its manifest cannot be read."""

    id: str
    info: SnapshotInfo | None
    manifest_error: str | None = None

    @property
    def short_id(self) -> str:
        return self.id[:8]

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "short_id": self.short_id,
            "time": self.info.time.isoformat() if self.info else None,
            "source": printable(self.info.source) if self.info else None,
            "keep": False,
            "reasons": [],
            "manifest_error": self.manifest_error,
        }


def forget_snapshots(repo: Repository, refs: list[str], *, dry_run: bool = False) -> list[NamedSnapshot]:
    """Delete the snapshots named by full id or unique prefix (or SOURCE:latest), also those whose
    manifest cannot be read: that is how a damaged snapshot leaves the repository. Nothing is
    deleted unless every reference resolves and no named snapshot is protected."""
    with repo.backup_lease("forget"):
        ids = list(dict.fromkeys(repo.resolve_snapshot_id(ref) for ref in refs))
        protected = [i[:8] for i in ids if repo.is_protected(i)]
        if protected:
            raise UsageError(f"snapshot {', '.join(protected)} is protected; unprotect it first")
        named = [_named(repo, snapshot_id) for snapshot_id in ids]
        if not dry_run:
            for snapshot in named:
                repo.delete_snapshot(snapshot.id)
    return named


def _named(repo: Repository, snapshot_id: str) -> NamedSnapshot:
    try:
        return NamedSnapshot(snapshot_id, repo.snapshot_info(snapshot_id))
    except HvBackupError as exc:
        return NamedSnapshot(snapshot_id, None, str(exc))
