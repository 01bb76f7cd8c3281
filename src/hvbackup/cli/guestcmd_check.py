"""`hvbackup-guest check`: the guest's readiness for live, application-consistent backups."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from hvbackup.cli.common import JsonOpt, emit, handle_errors, stdout
from hvbackup.errors import UsageError
from hvbackup.guest.readiness import run_checks

COLOURS = {"blocker": "bold red", "warning": "yellow", "advice": "cyan", "info": "dim"}


def _render(data: dict[str, Any]) -> None:
    stdout.print(f"Hyper-V guest: [bold]{'yes' if data['hyperv'] else 'no'}[/] ({data['hyperv_evidence']})")
    table = Table("severity", "id", "finding", "remedy", show_lines=True)
    for f in data["findings"]:
        table.add_row(
            f"[{COLOURS[f['severity']]}]{f['severity']}[/]",
            f["id"],
            f"{f['title']}\n[dim]{f['evidence']}[/]",
            f["remedy"],
        )
    stdout.print(table)
    stdout.print("freeze covers: " + (", ".join(m["mountpoint"] for m in data["freeze_covers"]) or "(nothing)"))


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def check(
        root: Annotated[Path, typer.Option("--root", help="Read /sys, /proc and /etc under this directory.")] = Path(
            "/"
        ),
        json_out: JsonOpt = False,
    ) -> None:
        """Check this guest: Hyper-V, hv modules, VSS daemon, NICs, I/O schedulers, fstab, freeze coverage, TRIM, time.

        Example: hvbackup-guest check --json
        """
        if not root.is_dir():
            raise UsageError(f"--root {root} is not a directory")
        emit(run_checks(root), json_out, _render)
