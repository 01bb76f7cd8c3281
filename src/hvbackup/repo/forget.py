"""`forget`: remove the snapshots a keep policy does not keep (chunks are freed later by prune)."""

from __future__ import annotations

from datetime import tzinfo

from hvbackup.repo.repository import Repository
from hvbackup.repo.retention import Decision, KeepPolicy, decide


def forget(
    repo: Repository,
    policy: KeepPolicy,
    *,
    source: str | None = None,
    dry_run: bool = False,
    tz: tzinfo | None = None,
) -> list[Decision]:
    """Decide for every snapshot (of `source`, if given) and delete the ones not kept, unless dry_run."""
    with repo.backup_lease("forget"):
        snapshots = [s for s in repo.list_snapshots() if source is None or s.source == source]
        decisions = decide(snapshots, policy, tz)
        if not dry_run:
            for decision in decisions:
                if not decision.keep:
                    repo.delete_snapshot(decision.snapshot.id)
    return decisions
