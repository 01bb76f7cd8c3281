"""`hvbackup-guest check`: the guest's readiness for live, application-consistent backups."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from hvbackup import kvpreport
from hvbackup.cli.common import JsonOpt, emit, handle_errors, stdout
from hvbackup.cli.guestcmd_options import KvpDirOpt
from hvbackup.errors import UsageError
from hvbackup.guest import kvp
from hvbackup.guest.readiness import run_checks

COLOURS = {"blocker": "bold red", "warning": "yellow", "advice": "cyan", "info": "dim"}


def _render(data: dict[str, Any]) -> None:
    stdout.print(f"Hyper-V guest: [bold]{'yes' if data['hyperv'] else 'no'}[/] ({escape(data['hyperv_evidence'])})")
    for f in data["findings"]:
        stdout.print()
        stdout.print(f"[{COLOURS[f['severity']]}]{f['severity']}[/]  [bold]{f['id']}[/]  {escape(f['title'])}")
        stdout.print(f"  [dim]{escape(f['evidence'])}[/]")
        # one line however narrow the terminal: a command cut or broken over lines cannot be pasted
        stdout.print(f"  fix: {f['remedy']}", markup=False, highlight=False, soft_wrap=True)
    stdout.print()
    stdout.print("freeze covers: " + (", ".join(m["mountpoint"] for m in data["freeze_covers"]) or "(nothing)"))


def register(app: typer.Typer) -> None:
    app.command("check")(check_cmd)


@handle_errors
def check_cmd(
    root: Annotated[Path, typer.Option("--root", help="Read /sys, /proc and /etc under this directory.")] = Path("/"),
    publish: Annotated[
        bool, typer.Option("--publish", help="Also publish the report for the host as KVP items (docs/GUEST.md §15).")
    ] = False,
    kvp_dir: KvpDirOpt = kvp.DEFAULT_KVP_DIR,
    as_json: JsonOpt = False,
) -> None:
    """Check this guest: Hyper-V, hv modules, VSS daemon, NICs, I/O schedulers, fstab, freeze coverage, TRIM, time.

    Example: hvbackup-guest check --publish --json
    """
    if not root.is_dir():
        raise UsageError(f"--root {root} is not a directory")
    report = run_checks(root)
    if publish:
        kvp.publish(kvp_dir, kvpreport.READINESS, report)
    emit(report, as_json, _render)
