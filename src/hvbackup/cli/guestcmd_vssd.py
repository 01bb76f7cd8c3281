"""`hvbackup-guest vssd`: the VSS daemon replacing hv_vss_daemon / hypervvssd."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from hvbackup.cli.common import JsonOpt, emit, handle_errors, stderr
from hvbackup.cli.guestcmd_options import (
    DEFAULT_STATE,
    ConfigOpt,
    HooksDirOpt,
    KvpDirOpt,
    MaxSecondsOpt,
    MountOpt,
    StateDirOpt,
    freeze_options,
)
from hvbackup.errors import UsageError
from hvbackup.guest.kvp import DEFAULT_KVP_DIR
from hvbackup.guest.vssd import DEFAULT_DEVICE, DaemonOptions, VssDaemon


def _say(message: str) -> None:
    stderr.print(f"{time.strftime('%H:%M:%S')} {message}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.command("vssd")(vssd_cmd)


@handle_errors
def vssd_cmd(
    device: Annotated[Path, typer.Option("--device", help="The kernel's VSS device.")] = DEFAULT_DEVICE,
    socket: Annotated[
        Path | None, typer.Option("--socket", help="Connect to a lab host's SEQPACKET socket instead.")
    ] = None,
    mount: MountOpt = None,
    config: ConfigOpt = None,
    hooks_dir: HooksDirOpt = None,
    state_dir: StateDirOpt = DEFAULT_STATE,
    max_seconds: MaxSecondsOpt = None,
    no_freeze: Annotated[
        bool,
        typer.Option("--no-freeze", help="Freeze no filesystem (hooks and quiescers still run): the lab host."),
    ] = False,
    kvp_dir: KvpDirOpt = DEFAULT_KVP_DIR,
    no_readiness: Annotated[
        bool, typer.Option("--no-readiness", help="Do not publish this guest's readiness report at start.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Answer Hyper-V's backup requests (HOT_BACKUP, FREEZE, THAW) with hooks around the freeze.

    Logs go to stderr only outside the freeze window. With --socket it serves until the lab host
    closes the socket. The readiness report (at start) and each freeze report (after the thaw
    hooks) are published for the host as KVP items in --kvp-dir.

    Example: hvbackup-guest vssd --socket /run/lab/vm1.sock --mount /srv/data
    """
    if no_freeze and mount:
        raise UsageError("--no-freeze and --mount exclude each other")
    opts = freeze_options(config, hooks_dir, state_dir, mount, max_seconds, None, "vssd")
    if no_freeze:
        opts.only = []  # an explicit empty set: never the default mount table
    daemon = VssDaemon(DaemonOptions(opts, device, socket, kvp_dir, not no_readiness), say=_say)
    daemon.run()
    summary = {"transactions": len(daemon.reports), "reports": daemon.reports}
    emit(summary, as_json, lambda s: stderr.print(f"served {s['transactions']} backup(s)"))
