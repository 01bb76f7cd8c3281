"""The one progress protocol: what a long run (backup, restore, check, prune) reports as it goes."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def advance(self, nbytes: int) -> None: ...
    def set_total(self, total: int) -> None: ...


class NoProgress:
    """Progress that goes nowhere."""

    def advance(self, nbytes: int) -> None:
        pass

    def set_total(self, total: int) -> None:
        pass
