"""Retention: which snapshots `forget` keeps, by keep-* rules applied per source.

The rules follow Proxmox Backup Server's documented prune semantics: keep-last, then hourly,
daily, weekly (ISO weeks), monthly and yearly, in that order. Each rule walks a source's
snapshots from newest to oldest and keeps the newest snapshot of each period it has not seen,
until it has kept its count; a period already represented by a kept snapshot is skipped, and
the other snapshots of a period a rule kept are not offered to later rules. Periods without
snapshots do not count. keep-within keeps, in addition, everything within that duration of
the source's newest snapshot (as restic does). Protected snapshots are always kept and do not
count towards any rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from hvbackup.durations import Duration
from hvbackup.errors import UsageError
from hvbackup.repo.snapshots import SnapshotInfo, printable

_KEEP, _REMOVE, _PROTECTED = "keep", "remove", "protected"


@dataclass(frozen=True)
class KeepPolicy:
    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0
    within: Duration | None = None

    def __post_init__(self) -> None:
        for rule, count in self.counts():
            if count < 0:
                raise UsageError(f"--keep-{rule} {count}: a keep count must be 1 or more")

    @classmethod
    def from_options(
        cls,
        *,
        last: int | None = None,
        hourly: int | None = None,
        daily: int | None = None,
        weekly: int | None = None,
        monthly: int | None = None,
        yearly: int | None = None,
        within: Duration | None = None,
    ) -> KeepPolicy:
        """The policy of the keep options a user gave (None: not given). A count of zero or less
        is refused: it would keep nothing, and a rule that keeps nothing is no rule."""
        given = {"last": last, "hourly": hourly, "daily": daily, "weekly": weekly, "monthly": monthly, "yearly": yearly}
        for rule, count in given.items():
            if count is not None and count < 1:
                raise UsageError(f"--keep-{rule} {count}: a keep count must be 1 or more")
        return cls(**{rule: count or 0 for rule, count in given.items()}, within=within)

    def counts(self) -> list[tuple[str, int]]:
        return [
            ("last", self.last),
            ("hourly", self.hourly),
            ("daily", self.daily),
            ("weekly", self.weekly),
            ("monthly", self.monthly),
            ("yearly", self.yearly),
        ]

    def is_empty(self) -> bool:
        return not any(count for _rule, count in self.counts()) and self.within is None


@dataclass
class Decision:
    snapshot: SnapshotInfo
    keep: bool
    reasons: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        s = self.snapshot
        return {
            "id": s.id,
            "short_id": s.short_id,
            "time": s.time.isoformat(),
            "source": printable(s.source),
            "keep": self.keep,
            "reasons": self.reasons,
        }


def decide(
    snapshots: Iterable[SnapshotInfo], policy: KeepPolicy, tz: tzinfo | None = None, *, keep_none: bool = False
) -> list[Decision]:
    """A keep-or-remove decision with reasons for every snapshot, grouped by source, newest first.

    A policy that would keep no snapshot of a source is refused unless `keep_none` asks for
    exactly that (and then no rule may be given)."""
    if keep_none and not policy.is_empty():
        raise UsageError("--keep-none forgets every unprotected snapshot; it cannot be combined with keep rules")
    if policy.is_empty() and not keep_none:
        raise UsageError(
            "no keep rule given; refusing to forget every snapshot "
            "(use e.g. --keep-last 1, or --keep-none to forget them all)"
        )
    groups: dict[str, list[SnapshotInfo]] = {}
    for info in snapshots:
        groups.setdefault(info.source, []).append(info)
    decisions = []
    for source in sorted(groups):
        group = sorted(groups[source], key=lambda s: s.time, reverse=True)
        decided = _decide_group(group, policy, tz)
        if not keep_none and not any(d.keep for d in decided):
            raise UsageError(
                f"the keep rules would keep no snapshot of {source!r}; refusing (use --keep-none to forget them all)"
            )
        decisions.extend(decided)
    return decisions


def _decide_group(group: list[SnapshotInfo], policy: KeepPolicy, tz: tzinfo | None) -> list[Decision]:
    marks: dict[str, tuple[str, str]] = {s.id: (_PROTECTED, "protected") for s in group if s.protected}
    rules: list[tuple[str, int, Callable[[datetime], str]]] = [
        ("last", policy.last, lambda t: ""),
        ("hourly", policy.hourly, lambda t: t.strftime("%Y-%m-%d %H:00")),
        ("daily", policy.daily, lambda t: t.strftime("%Y-%m-%d")),
        ("weekly", policy.weekly, lambda t: "{:04d}-W{:02d}".format(*t.isocalendar()[:2])),
        ("monthly", policy.monthly, lambda t: t.strftime("%Y-%m")),
        ("yearly", policy.yearly, lambda t: t.strftime("%Y")),
    ]
    for rule, count, period in rules:
        if count:
            _mark(group, marks, rule, count, _period_of(period, tz))
    newest = group[0].time if group else None
    decisions = []
    for s in group:
        kind, reason = marks.get(s.id, (_REMOVE, ""))
        reasons = [reason] if kind in (_KEEP, _PROTECTED) else []
        if policy.within is not None and newest is not None and s.time >= policy.within.before(newest):
            reasons.append(f"within {policy.within} of the newest")
        decisions.append(Decision(s, keep=bool(reasons), reasons=reasons))
    return decisions


def _period_of(period: Callable[[datetime], str], tz: tzinfo | None) -> Callable[[SnapshotInfo], str]:
    """A snapshot's period (its hour, day, week, ...) for one keep rule, in the given time zone."""

    def key(snapshot: SnapshotInfo) -> str:
        return period(snapshot.time.astimezone(tz)) or snapshot.id

    return key


def _mark(
    group: list[SnapshotInfo],
    marks: dict[str, tuple[str, str]],
    rule: str,
    count: int,
    period_of: Callable[[SnapshotInfo], str],
) -> None:
    already = {period_of(s) for s in group if marks.get(s.id, ("",))[0] == _KEEP}
    chosen: set[str] = set()
    for s in group:
        if s.id in marks:
            continue
        period = period_of(s)
        if period in already:
            continue
        if period in chosen:
            marks[s.id] = (_REMOVE, "")
            continue
        if len(chosen) >= count:
            break
        chosen.add(period)
        label = f"{rule} {len(chosen)}" if rule == "last" else f"{rule} {period}"
        marks[s.id] = (_KEEP, label)
