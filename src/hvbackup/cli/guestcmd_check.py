"""`hvbackup-guest check`: the guest's readiness for live, application-consistent backups."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from hvbackup.cli.common import JsonOpt, emit, handle_errors, stdout
from hvbackup.errors import UsageError
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
    as_json: JsonOpt = False,
) -> None:
    """Check this guest: Hyper-V, hv modules, VSS daemon, NICs, I/O schedulers, fstab, freeze coverage, TRIM, time.

    Example: hvbackup-guest check --json
    """
    if not root.is_dir():
        raise UsageError(f"--root {root} is not a directory")
    emit(run_checks(root), as_json, _render)
