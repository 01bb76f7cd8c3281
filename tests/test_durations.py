"""The one duration grammar (hvbackup/durations.py) of `--keep-within` and `--safety-window`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hvbackup.durations import Duration, parse_duration, parse_seconds
from hvbackup.errors import UsageError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2y", Duration(years=2)),
        ("6mo", Duration(months=6)),
        ("3w", Duration(days=21)),
        ("7d", Duration(days=7)),
        ("12h", Duration(hours=12)),
        ("30min", Duration(minutes=30)),
        ("90s", Duration(seconds=90)),
        ("1y6mo2w3d4h5min6s", Duration(years=1, months=6, days=17, hours=4, minutes=5, seconds=6)),
        ("1.5h", Duration(hours=1.5)),
        ("0", Duration()),
        (" 7d ", Duration(days=7)),
    ],
)
def test_each_unit(text: str, expected: Duration) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0),
        ("90s", 90),
        ("30min", 1800),
        ("1h", 3600),
        ("1h30min", 5400),
        ("2d", 172800),
        ("1w", 604800),
        ("0.5h", 1800),
    ],
)
def test_fixed_lengths_in_seconds(text: str, seconds: float) -> None:
    assert parse_seconds(text, "--safety-window") == seconds


@pytest.mark.parametrize("text", ["1m", "30m", "1h5m"])
def test_a_bare_m_is_refused_with_a_hint(text: str) -> None:
    with pytest.raises(UsageError, match=r"`m` is ambiguous; write \d+mo for months or \d+min for minutes"):
        parse_duration(text, "--keep-within")


@pytest.mark.parametrize("text", ["", "7", "d7", "1x", "3 days", "1d2y", "1h1h", "1.5mo", "-1d"])
def test_garbage_is_refused_naming_the_option(text: str) -> None:
    with pytest.raises(UsageError, match="--keep-within"):
        parse_duration(text, "--keep-within")


@pytest.mark.parametrize("text", ["1mo", "1y"])
def test_calendar_units_have_no_length_in_seconds(text: str) -> None:
    with pytest.raises(UsageError, match="no fixed length"):
        parse_seconds(text, "--safety-window")


def test_months_count_by_the_calendar() -> None:
    assert parse_duration("1mo").before(datetime(2026, 3, 31, tzinfo=UTC)) == datetime(2026, 2, 28, tzinfo=UTC)
    assert parse_duration("1h30min").before(datetime(2026, 3, 1, tzinfo=UTC)) == datetime(
        2026, 2, 28, 22, 30, tzinfo=UTC
    )


@pytest.mark.parametrize("text", ["7d", "1y6mo", "30min", "1h30min", "90s", "1.5h"])
def test_printed_durations_parse_back(text: str) -> None:
    assert str(parse_duration(text)) == text
