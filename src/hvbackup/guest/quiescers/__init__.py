"""Built-in quiescers: database sessions prepared before the freeze and released after the thaw."""

from __future__ import annotations

from hvbackup.guest.config import GuestConfig
from hvbackup.guest.quiescers.base import Quiescer
from hvbackup.guest.quiescers.mariadb import MariadbQuiescer
from hvbackup.guest.quiescers.postgres import PostgresQuiescer


def enabled_quiescers(config: GuestConfig) -> list[Quiescer]:
    found: list[Quiescer] = []
    if config.postgresql.enabled:
        found.append(PostgresQuiescer(config.postgresql))
    if config.mariadb.enabled:
        found.append(MariadbQuiescer(config.mariadb))
    return found


__all__ = ["MariadbQuiescer", "PostgresQuiescer", "Quiescer", "enabled_quiescers"]
