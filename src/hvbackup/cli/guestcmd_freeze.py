"""`hvbackup-guest freeze | thaw | status`: a safe fsfreeze with hooks and a watchdog."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from hvbackup.cli.common import JsonOpt, emit, handle_errors, stdout
from hvbackup.cli.guestcmd_options import (
    DEFAULT_STATE,
    BackupIdOpt,
    ConfigOpt,
    HooksDirOpt,
    MaxSecondsOpt,
    MountOpt,
    StateDirOpt,
    freeze_options,
)
from hvbackup.errors import HvBackupError
from hvbackup.guest.holder import freeze_detached, request_thaw
from hvbackup.guest.holder import status as freeze_status
from hvbackup.guest.state import StateDir
from hvbackup.guest.thawrequest import woken_holder


class FreezeRefused(HvBackupError):
    """The freeze did not happen; nothing is left frozen."""


def _render_freeze(data: dict[str, Any]) -> None:
    stdout.print(f"frozen: {', '.join(data['frozen']) or '(nothing)'}  backup id {data['backup_id']}")
    for mount in data["foreign_frozen"]:
        stdout.print(f"[yellow]already frozen by someone else (left alone):[/] {mount}")
    for skip in data["skipped"]:
        stdout.print(f"skipped {skip['mountpoint']}: {skip['reason']}")
    stdout.print(f"thaw with `hvbackup-guest thaw`; the watchdog thaws after {data['max_seconds']:g} s")


def _render_report(data: dict[str, Any] | None) -> None:
    if data is None:
        stdout.print("nothing is frozen by hvbackup-guest")
        return
    stdout.print(f"thawed; consistency: [bold]{data['consistency']}[/], frozen for {data['frozen_seconds']} s")
    for path, err in (data.get("thaw_errors") or {}).items():
        stdout.print(f"[red]thaw of {path} failed:[/] {err}")


def _render_status(data: dict[str, Any]) -> None:
    if not data["frozen"]:
        stdout.print("nothing is frozen by hvbackup-guest")
        return
    stdout.print(
        f"frozen by {data['by']} (pid {data['pid']}, alive: {data['holder_alive']}) for "
        f"{data['frozen_seconds']} s; watchdog thaws in {data['thaw_in_seconds']} s"
    )
    for mount in data["mounts"]:
        stdout.print(f"  {mount}")


def register(app: typer.Typer) -> None:
    app.command("freeze")(freeze_cmd)
    app.command("thaw")(thaw_cmd)
    app.command("status")(status_cmd)


@handle_errors
def freeze_cmd(
    mount: MountOpt = None,
    config: ConfigOpt = None,
    hooks_dir: HooksDirOpt = None,
    state_dir: StateDirOpt = DEFAULT_STATE,
    max_seconds: MaxSecondsOpt = None,
    backup_id: BackupIdOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the freeze hooks, freeze the filesystems and return, leaving a watchdog that thaws at the bound.

    Example: hvbackup-guest freeze --mount /srv/data --max-seconds 30 && cp ... && hvbackup-guest thaw
    """
    opts = freeze_options(config, hooks_dir, state_dir, mount, max_seconds, backup_id, "freeze")
    result = freeze_detached(opts)
    if not result.get("ok"):
        raise FreezeRefused(f"freeze failed: {result.get('error')}")
    result.pop("ok")
    emit(result, as_json, _render_freeze)


@handle_errors
def thaw_cmd(
    state_dir: StateDirOpt = DEFAULT_STATE,
    force: Annotated[bool, typer.Option("--force", help="Thaw even a freeze held by the vssd daemon.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Thaw what `freeze` froze, run the thaw hooks, and print the report.

    Example: hvbackup-guest thaw --json
    """
    report = request_thaw(StateDir(state_dir), force=force, woken_pid=woken_holder(state_dir))
    emit(report, as_json, _render_report)


@handle_errors
def status_cmd(state_dir: StateDirOpt = DEFAULT_STATE, as_json: JsonOpt = False) -> None:
    """Say what is frozen, by whom and for how long.

    Example: hvbackup-guest status --json
    """
    emit(freeze_status(StateDir(state_dir)), as_json, _render_status)
