"""The one duration grammar of every option that takes a length of time.

A duration is one or more parts, largest unit first, each unit at most once, no spaces:
`y` years, `mo` months, `w` weeks, `d` days, `h` hours, `min` minutes, `s` seconds
(`1y6mo`, `2w`, `36h`, `30min`, `1h30min`, `90s`, `1.5h`). Years and months count by the
calendar and take whole numbers; the other units may have a decimal fraction. `0` alone needs
no unit. A bare `m` is refused: it could mean months or minutes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from hvbackup.errors import UsageError

GRAMMAR_HINT = "use e.g. 7d, 12h, 30min, 90s, 2w, 1y6mo (units y, mo, w, d, h, min, s)"

# Largest first: a part may only follow parts of larger units.
UNITS = ("y", "mo", "w", "d", "h", "min", "s")
_CALENDAR_UNITS = ("y", "mo")
_PART = re.compile(r"(\d+(?:\.\d+)?)(min|mo|y|w|d|h|s|m)?")


@dataclass(frozen=True)
class Duration:
    years: int = 0
    months: int = 0
    days: float = 0
    hours: float = 0
    minutes: float = 0
    seconds: float = 0

    def before(self, moment: datetime) -> datetime:
        """The moment this long before `moment`, months and years by the calendar."""
        total_months = moment.year * 12 + moment.month - 1 - self.years * 12 - self.months
        year, month = divmod(total_months, 12)
        day = min(moment.day, _days_in_month(year, month + 1))
        shifted = moment.replace(year=year, month=month + 1, day=day)
        return shifted - timedelta(days=self.days, hours=self.hours, minutes=self.minutes, seconds=self.seconds)

    def is_calendar(self) -> bool:
        """Whether its length depends on the date (it has years or months)."""
        return bool(self.years or self.months)

    def total_seconds(self) -> float:
        """Its length in seconds; only for a duration without years and months."""
        if self.is_calendar():
            raise ValueError(f"{self} has no fixed length in seconds")
        return self.days * 86400 + self.hours * 3600 + self.minutes * 60 + self.seconds

    def __str__(self) -> str:
        parts = [
            (self.years, "y"),
            (self.months, "mo"),
            (self.days, "d"),
            (self.hours, "h"),
            (self.minutes, "min"),
            (self.seconds, "s"),
        ]
        return "".join(f"{n:g}{u}" for n, u in parts if n) or "0h"


def parse_duration(text: str, option: str = "duration") -> Duration:
    """`1y6mo`, `7d`, `1h30min`... (module doc); a UsageError naming `option` and the grammar."""
    spec = text.strip()
    if spec == "0":
        return Duration()
    amounts: dict[str, float] = {}
    position = 0
    while position < len(spec):
        match = _PART.match(spec, position)
        if match is None:
            raise UsageError(f"bad {option} {text!r}; {GRAMMAR_HINT}")
        number, unit = match.groups()
        _check_part(text, option, number, unit, amounts)
        amounts[unit] = float(number)
        position = match.end()
    if not amounts:
        raise UsageError(f"bad {option} {text!r}; {GRAMMAR_HINT}")
    return _duration_of(amounts)


def parse_seconds(text: str, option: str = "duration") -> float:
    """A duration of fixed length (no years or months), in seconds."""
    duration = parse_duration(text, option)
    if duration.is_calendar():
        raise UsageError(f"bad {option} {text!r}: years and months have no fixed length here; use w, d, h, min or s")
    return duration.total_seconds()


def _check_part(text: str, option: str, number: str, unit: str | None, amounts: dict[str, float]) -> None:
    if unit is None:
        raise UsageError(f"bad {option} {text!r}: {number} has no unit; {GRAMMAR_HINT}")
    if unit == "m":
        raise UsageError(
            f"bad {option} {text!r}: `m` is ambiguous; write {number}mo for months or {number}min for minutes"
        )
    if unit in _CALENDAR_UNITS and "." in number:
        raise UsageError(f"bad {option} {text!r}: years and months are whole numbers")
    if any(UNITS.index(seen) >= UNITS.index(unit) for seen in amounts):
        raise UsageError(f"bad {option} {text!r}: give each unit once, largest first; {GRAMMAR_HINT}")


def _duration_of(amounts: dict[str, float]) -> Duration:
    return Duration(
        years=int(amounts.get("y", 0)),
        months=int(amounts.get("mo", 0)),
        days=_whole_if_whole(amounts.get("d", 0) + 7 * amounts.get("w", 0)),
        hours=_whole_if_whole(amounts.get("h", 0)),
        minutes=_whole_if_whole(amounts.get("min", 0)),
        seconds=_whole_if_whole(amounts.get("s", 0)),
    )


def _whole_if_whole(value: float) -> float:
    return int(value) if value == int(value) else value


def _days_in_month(year: int, month: int) -> int:
    if month == 12:
        return 31
    return (datetime(year, month + 1, 1) - datetime(year, month, 1)).days
