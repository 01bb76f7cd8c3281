"""`hvbackup demo`: a complete backup and restore on the built-in lab host, in a fresh folder."""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hvbackup.cli.common import JsonOpt, emit, handle_errors, stderr, stdout
from hvbackup.errors import EXIT_FAILED, UsageError


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_cmd)


@handle_errors
def demo_cmd(
    folder: Annotated[
        Path | None, typer.Argument(help="A new folder for the demo (default: ./demo-run/<time>).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Back up the lab's sample Linux VMs, change a file in one, back up again, restore it as a new VM, prove it.

    Example: hvbackup demo /tmp/hvbackup-demo
    """
    from hvbackup.apps.demo import run_demo

    folder = folder or Path("demo-run") / datetime.now().strftime("%Y%m%d-%H%M%S")
    _check_folder(folder)
    result = run_demo(folder, (lambda s: None) if as_json else (lambda s: stderr.print(s, highlight=False)))
    emit(result.to_json(), as_json, _render)
    if not result.ok:
        raise typer.Exit(EXIT_FAILED)


def _check_folder(folder: Path) -> None:
    """The demo folder must be a folder, or creatable: refused before the lab is half built."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"demo folder {folder} is a file: pass a new folder")
    existing = next(p for p in (folder, *folder.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise UsageError(f"cannot create demo folder {folder}: {existing} is a file")
    try:  # a real attempt: root passes os.access on folders that refuse files (sysfs, read-only mounts)
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".hvbackup-demo-"))
    except OSError as exc:
        raise UsageError(f"cannot create demo folder {folder}: {existing} is not writable ({exc.strerror})") from None


def _render(data: dict) -> None:
    table = Table(title="hvbackup demo: full, then incremental backup of every lab VM")
    for col in ("VM", "mode", "consistency", "full: read/new", "incr: read/new", "result"):
        table.add_column(col, justify="right" if ":" in col else "left")
    full = {vm["name"]: vm for vm in data["runs"]["full"]["vms"]}
    for vm in data["runs"]["incremental"]["vms"]:
        first = full[vm["name"]]
        table.add_row(vm["name"], vm["mode"], vm["consistency"], _read_new(first), _read_new(vm), vm["result"])
    stdout.print(table)
    for label in ("full", "incremental"):
        for vm in data["runs"][label]["vms"]:
            if vm["message"]:
                stdout.print(f"{label} {vm['name']}: {vm['message']}", highlight=False)
    stdout.print(f"restored {data['restore'].get('name')} ({data['restore'].get('vm_id')})", highlight=False)
    for check in data["checks"]:
        stdout.print(("[green]✓[/] " if check["ok"] else "[red]✗[/] ") + check["check"], highlight=False)
    stdout.print(
        f"everything is in {data['folder']}: try `hvbackup snapshots -r {data['folder']}/repo` "
        "(passphrase: hvbackup-demo)",
        highlight=False,
    )


def _read_new(vm: dict) -> str:
    return f"{vm['bytes_read'] / 2**20:.0f}/{vm['bytes_new'] / 2**20:.0f} MiB"
