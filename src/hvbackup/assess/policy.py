"""The administrator's backup policy: the weakest consistency accepted, and the downtime allowed to reach it."""

from __future__ import annotations

from dataclasses import dataclass

from hvbackup.errors import UsageError
from hvbackup.vocabulary import Consistency, Downtime, RequiredConsistency

CONSISTENCY_CHOICES = tuple(c.value for c in RequiredConsistency)
DOWNTIME_CHOICES = tuple(d.value for d in Downtime)


@dataclass(frozen=True)
class Policy:
    consistency: RequiredConsistency = RequiredConsistency.filesystem  # the weakest acceptable
    allow_downtime: Downtime = Downtime.never

    def __post_init__(self) -> None:
        if self.consistency not in CONSISTENCY_CHOICES:
            raise UsageError(f"unknown consistency {self.consistency!r}: use one of {', '.join(CONSISTENCY_CHOICES)}")
        if self.allow_downtime not in DOWNTIME_CHOICES:
            raise UsageError(
                f"unknown downtime setting {self.allow_downtime!r}: use one of {', '.join(DOWNTIME_CHOICES)}"
            )
        object.__setattr__(self, "consistency", RequiredConsistency(self.consistency))
        object.__setattr__(self, "allow_downtime", Downtime(self.allow_downtime))

    def accepts(self, consistency: Consistency | str, *, vmrs_captured: bool = False) -> bool:
        """Does `consistency` meet the policy? A saved state does beyond crash only with its .vmrs
        captured (Consistency.rank)."""
        return Consistency(consistency).meets(self.consistency, vmrs_captured=vmrs_captured)

    def to_json(self) -> dict[str, str]:
        return {"consistency": self.consistency.value, "allow_downtime": self.allow_downtime.value}
