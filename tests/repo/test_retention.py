"""Retention rules of `forget`, on fixed times (PBS keep-* semantics, restic-style keep-within)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hvbackup.durations import Duration, parse_duration
from hvbackup.errors import UsageError
from hvbackup.repo import SnapshotInfo
from hvbackup.repo.retention import KeepPolicy, decide

UTC = UTC
START = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)  # a Thursday; ISO week 1 of 2026 is Dec 29 - Jan 4


def snap(t: datetime, source: str = "vm", protected: bool = False) -> SnapshotInfo:
    sid = f"{source}-{t:%Y%m%d%H%M}"
    return SnapshotInfo(sid, t, source, protected, {"source": source})


def every_six_hours(days: int = 10, source: str = "vm") -> list[SnapshotInfo]:
    return [snap(START + timedelta(hours=6 * i), source) for i in range(days * 4)]


def kept_times(snaps: list[SnapshotInfo], policy: KeepPolicy, tz=UTC) -> list[str]:
    return sorted(f"{d.snapshot.time:%m-%d %H}" for d in decide(snaps, policy, tz) if d.keep)


@pytest.mark.parametrize(
    "policy, expected",
    [
        (KeepPolicy(last=3), ["01-10 06", "01-10 12", "01-10 18"]),
        (KeepPolicy(daily=3), ["01-08 18", "01-09 18", "01-10 18"]),
        # days already represented by keep-last do not use up keep-daily's count
        (KeepPolicy(last=2, daily=3), ["01-07 18", "01-08 18", "01-09 18", "01-10 12", "01-10 18"]),
        (KeepPolicy(weekly=5), ["01-04 18", "01-10 18"]),  # only two ISO weeks have snapshots
        (KeepPolicy(hourly=2), ["01-10 12", "01-10 18"]),
        (KeepPolicy(monthly=1, yearly=3), ["01-10 18"]),
        (
            KeepPolicy(within=Duration(days=2)),
            [
                "01-08 18",
                "01-09 00",
                "01-09 06",
                "01-09 12",
                "01-09 18",
                "01-10 00",
                "01-10 06",
                "01-10 12",
                "01-10 18",
            ],
        ),
        (KeepPolicy(daily=1, within=parse_duration("12h")), ["01-10 06", "01-10 12", "01-10 18"]),
    ],
)
def test_keep_rules(policy: KeepPolicy, expected: list[str]) -> None:
    assert kept_times(every_six_hours(), policy) == expected


def test_reasons_name_the_rule_and_period() -> None:
    decisions = decide(every_six_hours(), KeepPolicy(last=1, daily=1, weekly=2))
    reasons = {f"{d.snapshot.time:%m-%d %H}": d.reasons for d in decisions if d.keep}
    assert reasons == {"01-10 18": ["last 1"], "01-09 18": ["daily 2026-01-09"], "01-04 18": ["weekly 2026-W01"]}
    assert all(d.reasons == [] for d in decisions if not d.keep)


def test_protected_is_kept_and_does_not_count() -> None:
    snaps = every_six_hours()
    snaps[4] = snap(snaps[4].time, protected=True)  # 01-02 00:00
    decisions = decide(snaps, KeepPolicy(daily=2))
    kept = {f"{d.snapshot.time:%m-%d %H}": d.reasons for d in decisions if d.keep}
    assert kept == {"01-02 00": ["protected"], "01-10 18": ["daily 2026-01-10"], "01-09 18": ["daily 2026-01-09"]}


def test_groups_by_source() -> None:
    snaps = every_six_hours(2, "a") + every_six_hours(3, "b")
    kept = [(d.snapshot.source, f"{d.snapshot.time:%m-%d %H}") for d in decide(snaps, KeepPolicy(last=1)) if d.keep]
    assert sorted(kept) == [("a", "01-02 18"), ("b", "01-03 18")]


def test_days_follow_the_given_time_zone() -> None:
    late, early = datetime(2026, 1, 10, 23, 30, tzinfo=UTC), datetime(2026, 1, 11, 0, 30, tzinfo=UTC)
    snaps = [snap(late), snap(early)]
    assert len(kept_times(snaps, KeepPolicy(daily=5), UTC)) == 2
    minus_two = timezone(timedelta(hours=-2))  # both are on Jan 10 there
    assert kept_times(snaps, KeepPolicy(daily=5), minus_two) == ["01-11 00"]


def test_no_rule_refuses_to_forget_everything() -> None:
    with pytest.raises(UsageError, match="no keep rule"):
        decide(every_six_hours(), KeepPolicy())


@pytest.mark.parametrize(
    "text, expected",
    [
        ("7d", Duration(days=7)),
        ("2w", Duration(days=14)),
        ("1y6mo", Duration(years=1, months=6)),
        ("36h", Duration(hours=36)),
        ("1mo2d3h", Duration(months=1, days=2, hours=3)),
    ],
)
def test_parse_duration(text: str, expected: Duration) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7", "d7", "1x", "3 days"])
def test_parse_duration_rejects_garbage(text: str) -> None:
    with pytest.raises(UsageError):
        parse_duration(text)


def test_month_arithmetic_clamps_to_month_end() -> None:
    assert Duration(months=1).before(datetime(2026, 3, 31, tzinfo=UTC)) == datetime(2026, 2, 28, tzinfo=UTC)
    assert Duration(years=1).before(datetime(2028, 2, 29, tzinfo=UTC)) == datetime(2027, 2, 28, tzinfo=UTC)


times = st.lists(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)),
    min_size=1,
    max_size=40,
    unique=True,
)


@settings(max_examples=150, deadline=None)
@given(times, st.lists(st.booleans(), min_size=40, max_size=40), st.integers(1, 5), st.integers(0, 5))
def test_properties_of_last_and_daily(ts, protected_flags, last, daily) -> None:
    snaps = [snap(t, protected=p) for t, p in zip(ts, protected_flags, strict=False)]
    decisions = {d.snapshot.id: d for d in decide(snaps, KeepPolicy(last=last, daily=daily), UTC)}
    assert len(decisions) == len(snaps)
    for s in snaps:
        d = decisions[s.id]
        assert d.keep == bool(d.reasons)
        if s.protected:
            assert d.keep and d.reasons == ["protected"]
    unprotected = sorted((s for s in snaps if not s.protected), key=lambda s: s.time, reverse=True)
    newest = unprotected[:last]
    assert all(decisions[s.id].reasons == [f"last {i + 1}"] for i, s in enumerate(newest))
    # keep-daily keeps, for up to `daily` days not already covered, the newest snapshot of each day
    covered = {s.time.date() for s in newest}
    rest = unprotected[last:]
    expected_daily = []
    for s in rest:
        day = s.time.date()
        if day in covered or any(e.time.date() == day for e in expected_daily):
            continue
        if len(expected_daily) == daily:
            break
        expected_daily.append(s)
    kept_daily = [s for s in rest if decisions[s.id].keep]
    assert kept_daily == expected_daily
