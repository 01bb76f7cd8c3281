"""The administrator's backup policy: the weakest consistency accepted, and the downtime allowed to reach it."""

from __future__ import annotations

from dataclasses import dataclass

from hvbackup.errors import UsageError

CONSISTENCY_CHOICES = ("application", "filesystem", "crash")
DOWNTIME_CHOICES = ("never", "save", "shutdown")

# How good a consistency is. "saved-state" and "offline" rank with "application": the
# administrator accepted downtime to get a point in time nothing was writing to.
CONSISTENCY_RANK = {
    "none": 0,
    "crash": 1,
    "filesystem": 2,
    "application": 3,
    "saved-state": 3,
    "offline": 3,
}


@dataclass(frozen=True)
class Policy:
    consistency: str = "filesystem"  # weakest acceptable: "application" | "filesystem" | "crash"
    allow_downtime: str = "never"  # "never" | "save" | "shutdown"

    def __post_init__(self) -> None:
        if self.consistency not in CONSISTENCY_CHOICES:
            raise UsageError(f"unknown consistency {self.consistency!r}: use one of {', '.join(CONSISTENCY_CHOICES)}")
        if self.allow_downtime not in DOWNTIME_CHOICES:
            raise UsageError(
                f"unknown downtime setting {self.allow_downtime!r}: use one of {', '.join(DOWNTIME_CHOICES)}"
            )

    def accepts(self, consistency: str) -> bool:
        return CONSISTENCY_RANK[consistency] >= CONSISTENCY_RANK[self.consistency]

    def to_json(self) -> dict[str, str]:
        return {"consistency": self.consistency, "allow_downtime": self.allow_downtime}
