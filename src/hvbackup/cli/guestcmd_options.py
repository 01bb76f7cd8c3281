"""Options shared by the guest agent's freeze commands (no commands of its own)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from hvbackup.guest.config import DEFAULT_CONFIG, MAX_FREEZE_SECONDS, MIN_FREEZE_SECONDS, check_max_seconds, load_config
from hvbackup.guest.state import DEFAULT_STATE_DIR, StateDir
from hvbackup.guest.transaction import FreezeOptions

MountOpt = Annotated[
    list[Path] | None, typer.Option("--mount", "-m", help="Freeze only this mount point (repeatable).")
]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help=f"Config file (default {DEFAULT_CONFIG}).")]
HooksDirOpt = Annotated[
    Path | None, typer.Option("--hooks-dir", help="Hook directory (default from config: /etc/hvbackup/hooks.d).")
]
StateDirOpt = Annotated[Path, typer.Option("--state-dir", help="Where the freeze state lives (tmpfs).")]
MaxSecondsOpt = Annotated[
    float | None,
    typer.Option(
        "--max-seconds",
        help=f"Watchdog bound in seconds, {MIN_FREEZE_SECONDS:g} to {MAX_FREEZE_SECONDS:g} (default from config: 60).",
    ),
]
BackupIdOpt = Annotated[
    str | None, typer.Option("--backup-id", help="ID passed to hooks and reported (default: random).")
]

KvpDirOpt = Annotated[
    Path,
    typer.Option("--kvp-dir", help="The KVP pool folder the hv_kvp_daemon serves to the host (docs/GUEST.md §15)."),
]

DEFAULT_STATE = DEFAULT_STATE_DIR


def freeze_options(
    config: Path | None,
    hooks_dir: Path | None,
    state_dir: Path,
    mount: list[Path] | None,
    max_seconds: float | None,
    backup_id: str | None,
    by: str,
) -> FreezeOptions:
    sys.dont_write_bytecode = True  # a .pyc write to a frozen filesystem would hang us
    cfg = load_config(config)
    if hooks_dir is not None:
        cfg.hooks_dir = hooks_dir
    if max_seconds is not None:
        cfg.max_seconds = check_max_seconds(max_seconds, "--max-seconds")
    return FreezeOptions(cfg, StateDir(state_dir), list(mount) if mount else None, backup_id, by)


def register(app: typer.Typer) -> None:
    """Shared options only."""
