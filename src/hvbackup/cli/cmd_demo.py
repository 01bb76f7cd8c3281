"""`hvbackup demo`: a complete backup and restore on the built-in default, in a fresh folder."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from hvbackup.cli.common import JsonOpt, emit, handle_errors, human_bytes, stderr, stdout
from hvbackup.errors import EXIT_FAILED


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_cmd)


@handle_errors
def demo_cmd(
    folder: Annotated[Optional[Path], typer.Argument(help="A new folder for the demo (default: ./demo-run/<time>).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a full backup, an incremental and a verified restore of a generated Linux disk.

    Example: hvbackup demo /tmp/hvbackup-demo
    """
    from hvbackup.engine.demo import run_demo

    folder = folder or Path("demo-run") / datetime.now().strftime("%Y%m%d-%H%M%S")

    def show(step) -> None:
        if not as_json:
            stderr.print(f"[green]✓[/] {step.name}: {step.detail} ({step.seconds:.2f} s)")

    result = run_demo(folder, show)
    emit(result.to_json(), as_json, _render)
    if not result.identical:
        raise typer.Exit(EXIT_FAILED)


def _render(data: dict) -> None:
    table = Table(title=f"hvbackup demo in {data['folder']}")
    for col in ("step", "result", "read", "new", "seconds"):
        table.add_column(col, justify="right" if col in ("read", "new", "seconds") else "left")
    for s in data["steps"]:
        d = s["data"]
        table.add_row(s["name"], s["detail"], human_bytes(d["bytes_read"]) if "bytes_read" in d else "",
                      human_bytes(d["bytes_new"]) if "bytes_new" in d else "", f"{s['seconds']:.2f}")
    stdout.print(table)
