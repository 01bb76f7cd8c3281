"""/etc/hvbackup/guest.toml: the agent's settings (every key is optional).

[freeze]
max_seconds = 60            # the watchdog thaws after this long, whatever happens (1 to 900)
foreign_frozen = "ignore"   # "ignore": report a filesystem someone else froze; "fail": fail the freeze

[hooks]
dir = "/etc/hvbackup/hooks.d"
timeout = 30                # seconds per hook
on_failure = "continue"     # "continue": filesystem-consistent and reported; "fail": fail the freeze

[postgresql]
enabled = false
mode = "checkpoint"         # or "backup": pg_backup_start/stop with the session held across the freeze
command = ["runuser", "-u", "postgres", "--", "psql"]
host = "/var/run/postgresql"
port = 5432
dbname = "postgres"

[mariadb]
enabled = false
command = ["mariadb"]
socket = "/run/mysqld/mysqld.sock"
user = "root"
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hvbackup.errors import UsageError

DEFAULT_CONFIG = Path("/etc/hvbackup/guest.toml")

# The watchdog bound. Below a second the watchdog would fire during an ordinary freeze (starting it
# and freezing take 0.1-0.3 s); above 15 minutes the kernel has long given up on the host's FREEZE
# (hv_snapshot.c VSS_FREEZE_TIMEOUT), so no Hyper-V backup can still use the freeze.
MIN_FREEZE_SECONDS = 1.0
MAX_FREEZE_SECONDS = 900.0


class ConfigError(UsageError):
    """guest.toml cannot be read or has a wrong value."""


@dataclass
class PostgresConfig:
    enabled: bool = False
    mode: str = "checkpoint"
    command: list[str] = field(default_factory=lambda: ["runuser", "-u", "postgres", "--", "psql"])
    host: str = "/var/run/postgresql"
    port: int = 5432
    dbname: str = "postgres"
    timeout: float = 60.0


@dataclass
class MariadbConfig:
    enabled: bool = False
    command: list[str] = field(default_factory=lambda: ["mariadb"])
    socket: str = "/run/mysqld/mysqld.sock"
    user: str = "root"
    timeout: float = 60.0


@dataclass
class GuestConfig:
    max_seconds: float = 60.0
    foreign_frozen: str = "ignore"
    hooks_dir: Path = Path("/etc/hvbackup/hooks.d")
    hook_timeout: float = 30.0
    on_hook_failure: str = "continue"
    postgresql: PostgresConfig = field(default_factory=PostgresConfig)
    mariadb: MariadbConfig = field(default_factory=MariadbConfig)


_CHOICES = {
    "foreign_frozen": ("ignore", "fail"),
    "on_hook_failure": ("continue", "fail"),
    "mode": ("checkpoint", "backup"),
}


def _pick(table: dict[str, Any], key: str, default: Any, section: str) -> Any:
    if key not in table:
        return default
    value = table[key]
    kind = Path if isinstance(default, Path) else type(default)  # type(Path(...)) is PosixPath
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is Path and isinstance(value, str):
        value = Path(value)
    if not isinstance(value, kind):
        raise ConfigError(f"[{section}] {key} must be a {kind.__name__}, not {value!r}")
    return value


def _section(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[{name}] must be a table")
    return value


def _dataclass_from(cls: type, table: dict[str, Any], section: str) -> Any:
    default = cls()
    values = {k: _pick(table, k, getattr(default, k), section) for k in vars(default)}
    unknown = set(table) - set(values)
    if unknown:
        raise ConfigError(f"[{section}] unknown key(s): {', '.join(sorted(unknown))}")
    return cls(**values)


def parse_config(text: str) -> GuestConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"guest.toml is not valid TOML: {exc}") from None
    freeze, hooks = _section(data, "freeze"), _section(data, "hooks")
    base = GuestConfig()
    config = GuestConfig(
        max_seconds=_pick(freeze, "max_seconds", base.max_seconds, "freeze"),
        foreign_frozen=_pick(freeze, "foreign_frozen", base.foreign_frozen, "freeze"),
        hooks_dir=_pick(hooks, "dir", base.hooks_dir, "hooks"),
        hook_timeout=_pick(hooks, "timeout", base.hook_timeout, "hooks"),
        on_hook_failure=_pick(hooks, "on_failure", base.on_hook_failure, "hooks"),
        postgresql=_dataclass_from(PostgresConfig, _section(data, "postgresql"), "postgresql"),
        mariadb=_dataclass_from(MariadbConfig, _section(data, "mariadb"), "mariadb"),
    )
    for key, value in (
        ("foreign_frozen", config.foreign_frozen),
        ("on_hook_failure", config.on_hook_failure),
        ("mode", config.postgresql.mode),
    ):
        if value not in _CHOICES[key]:
            raise ConfigError(f"{key} must be one of {', '.join(_CHOICES[key])}, not {value!r}")
    check_max_seconds(config.max_seconds, "[freeze] max_seconds")
    return config


def check_max_seconds(value: float, what: str) -> float:
    """`value` if it is a usable watchdog bound; a ConfigError naming `what` otherwise."""
    if not (math.isfinite(value) and MIN_FREEZE_SECONDS <= value <= MAX_FREEZE_SECONDS):
        raise ConfigError(
            f"{what} must be between {MIN_FREEZE_SECONDS:g} and {MAX_FREEZE_SECONDS:g} seconds, not {value:g}"
        )
    return value


def load_config(path: Path | None = None) -> GuestConfig:
    """The config at `path` (default /etc/hvbackup/guest.toml); defaults if the default file is absent."""
    target = path or DEFAULT_CONFIG
    try:
        text = target.read_text()
    except FileNotFoundError:
        if path is None:
            return GuestConfig()
        raise ConfigError(f"config file {target} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {target}: {exc.strerror}") from None
    return parse_config(text)
