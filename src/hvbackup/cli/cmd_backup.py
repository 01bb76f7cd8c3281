"""`hvbackup backup` and `hvbackup restore`: whole Linux VMs on a Hyper-V host or the lab."""

from __future__ import annotations

from enum import Enum
from pathlib import Path  # noqa: F401  (typer reads the annotations)
from typing import Annotated, Optional

import typer
from rich.table import Table

from hvbackup.cli.common import (
    JsonOpt,
    PasswordFileOpt,
    RepoOpt,
    emit,
    handle_errors,
    human_bytes,
    open_repository,
    progress,
    stderr,
    stdout,
)

HostOpt = Annotated[str, typer.Option("--host", "-H", envvar="HVBACKUP_HOST",
                                      help="lab:DIR, psrp://user@host[:port], or local (or HVBACKUP_HOST).")]


class Consistency(str, Enum):
    application = "application"
    filesystem = "filesystem"
    crash = "crash"


class Downtime(str, Enum):
    never = "never"
    save = "save"
    shutdown = "shutdown"


def register(app: typer.Typer) -> None:
    app.command("backup")(backup_cmd)
    app.command("restore")(restore_cmd)


@handle_errors
def backup_cmd(
    host: HostOpt,
    repo: RepoOpt,
    vms: Annotated[Optional[list[str]], typer.Argument(help="VM names or ids.")] = None,
    password_file: PasswordFileOpt = None,
    all_vms: Annotated[bool, typer.Option("--all", help="Every VM on the host.")] = False,
    consistency: Annotated[Consistency, typer.Option(help="The weakest consistency acceptable.")] = Consistency.filesystem,
    allow_downtime: Annotated[Downtime, typer.Option(help="May a VM be saved or shut down to reach the policy?")] = Downtime.never,
    parallel: Annotated[int, typer.Option(help="VMs backed up at the same time.")] = 2,
    as_json: JsonOpt = False,
) -> None:
    """Back up Linux VMs in the best mode each allows under the policy.

    Exit code 0 when every VM met the policy, 3 when some did not (below policy, skipped disks, failed).

    Example: hvbackup backup --host lab:/srv/lab --repo /srv/repo --all --consistency application --allow-downtime save
    """
    from hvbackup.assess.policy import Policy
    from hvbackup.engine.vm_backup import backup_vms, select_vms
    from hvbackup.hyperv.connect import connect

    policy = Policy(consistency=consistency.value, allow_downtime=allow_downtime.value)
    with connect(host) as hv, open_repository(repo, password_file) as repository:
        selected = select_vms(hv, vms or [], all_vms)

        def done(result) -> None:
            if not as_json:
                colour = "green" if result.result == "ok" else "yellow" if result.snapshot else "red"
                stderr.print(f"[{colour}]{result.name}: {result.result}[/] {result.mode}, {result.consistency}"
                             + (f" — {result.message}" if result.message else ""))

        with progress("backup", None, as_json) as bar:
            run = backup_vms(hv, repository, selected, policy, parallel=parallel, progress=_Summed(bar), on_done=done)
    emit(run.to_json(), as_json, _render_run)
    raise typer.Exit(run.exit_code)


class _Summed:
    """Several disks and VMs feed one bar: totals add up as each disk announces its own."""

    def __init__(self, bar) -> None:
        self.bar = bar
        self.total = 0

    def set_total(self, total: int) -> None:
        self.total += total
        self.bar.set_total(self.total)

    def advance(self, nbytes: int) -> None:
        self.bar.advance(nbytes)


def _render_run(data: dict) -> None:
    table = Table(title=f"backup run ({data['duration_s']:.1f} s)")
    for col in ("VM", "mode", "consistency", "read", "new", "s", "result"):
        table.add_column(col, justify="right" if col in ("read", "new", "s") else "left", overflow="fold")
    for vm in data["vms"]:
        colour = "green" if vm["result"] == "ok" else "yellow" if vm["snapshot"] else "red"
        table.add_row(vm["name"], vm["mode"], vm["consistency"], human_bytes(vm["bytes_read"]),
                      human_bytes(vm["bytes_new"]), f"{vm['duration_s']:.1f}", f"[{colour}]{vm['result']}[/]")
    stdout.print(table)
    for vm in data["vms"]:
        if vm["message"]:
            stdout.print(f"{vm['name']}: {vm['message']}", highlight=False)
        for warning in vm["warnings"]:
            stdout.print(f"[yellow]{vm['name']}:[/] {warning}")


@handle_errors
def restore_cmd(
    snapshot: Annotated[str, typer.Argument(help="Snapshot ID, unique prefix, or 'latest'.")],
    repo: RepoOpt,
    password_file: PasswordFileOpt = None,
    host: Annotated[Optional[str], typer.Option("--host", "-H", help="Restore as a new VM on this host.")] = None,
    name: Annotated[Optional[str], typer.Option(help="Name of the new VM (default: <name>-restored-<id>).")] = None,
    keep_macs: Annotated[bool, typer.Option(help="Keep the original MAC addresses (only if the original is gone).")] = False,
    no_start: Annotated[bool, typer.Option("--no-start", help="Leave the new VM off.")] = False,
    disk: Annotated[Optional[str], typer.Option(help="Restore only this disk (name or number) to --to.")] = None,
    to: Annotated[Optional[Path], typer.Option("--to", help="Target file for --disk (.vhdx → VHDX, else raw).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Restore a VM snapshot as a new VM, or one of its disks to a file.

    Example: hvbackup restore latest --host lab:/srv/lab --repo /srv/repo --name web-01-test
    Example: hvbackup restore 3f2a9c --disk scsi0-0 --to web-01.vhdx --repo /srv/repo
    """
    from hvbackup.engine.disk_restore import restore_disk
    from hvbackup.errors import UsageError

    with open_repository(repo, password_file) as repository:
        snap = repository.load_snapshot(snapshot)
        if to is not None or disk is not None:
            if to is None:
                raise UsageError("--disk needs --to FILE")
            with progress("restore", None, as_json) as bar:
                result = restore_disk(repository, snap, to, disk_name=disk, progress=bar)
            emit({"snapshot": snap.info.id, **result.to_json()}, as_json,
                 lambda d: stdout.print(f"restored {human_bytes(d['size'])} to {d['path']} ({d['format']})"))
            return
        if host is None:
            raise UsageError("give --host to restore the whole VM, or --disk N --to FILE for one disk")
        from hvbackup.engine.vm_restore import restore_vm
        from hvbackup.hyperv.connect import connect

        with connect(host) as hv, progress("restore", None, as_json) as bar:
            result = restore_vm(hv, repository, snap, name=name, keep_macs=keep_macs, start=not no_start,
                                progress=_Summed(bar))
    emit({"snapshot": snap.info.id, **result.to_json()}, as_json,
         lambda d: stdout.print(f"restored VM {d['name']} ({d['vm_id']}) with {len(d['disks'])} disk(s)"
                                + (", started" if d["started"] else "")))
