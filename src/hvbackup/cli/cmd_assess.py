"""`hvbackup assess`: per Linux VM, will a live backup work, how consistent will it be, and what to fix."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from hvbackup.atomic import atomic_write
from hvbackup.cli.common import (
    Consistency,
    ConsistencyOpt,
    Downtime,
    DowntimeOpt,
    HostOpt,
    JsonOpt,
    emit,
    handle_errors,
    stderr,
    stdout,
)
from hvbackup.errors import UsageError

SEVERITY_STYLES = {
    "blocker": "bold white on red",
    "warning": "bold black on yellow",
    "advice": "bold white on blue",
    "info": "dim",
}

HELP = """Assess Linux VMs for live backup: per VM the backup it will get under the policy, and every finding with its cause and the exact command that fixes it.

Exit codes: 0 nothing above advice, 2 warnings, 4 blockers (1 when the host cannot be reached or an argument is wrong).

Example: hvbackup assess -H lab:/srv/lab --all --consistency application --html report.html
"""


def register(app: typer.Typer) -> None:
    app.command("assess", help=HELP)(assess_cmd)


@handle_errors
def assess_cmd(
    vms: Annotated[
        list[str] | None, typer.Argument(help="VM names or ids (default: every VM).", show_default=False)
    ] = None,
    host: HostOpt = "",
    all_vms: Annotated[bool, typer.Option("--all", help="Assess every VM on the host.")] = False,
    consistency: ConsistencyOpt = Consistency.filesystem,
    allow_downtime: DowntimeOpt = Downtime.never,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML report to FILE.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    from hvbackup.assess import Policy, assess_host
    from hvbackup.assess.html import render_html
    from hvbackup.connect import connect

    if not host:
        raise UsageError("no host: pass --host lab:DIR|psrp://user@host|local or set HVBACKUP_HOST")
    if all_vms and vms:
        raise UsageError("name VMs or pass --all, not both")
    policy = Policy(consistency=consistency, allow_downtime=allow_downtime)
    if html is not None:
        _check_html_target(html)  # before the inventory, which takes seconds on a real host
    with connect(host) as hyperv, _status(f"assessing the VMs on {host}", as_json):
        report = assess_host(hyperv, policy, vms or ())
    if html is not None:
        _write_atomically(html, render_html(report))
        if not as_json:
            stderr.print(f"HTML report written to {html}")
    emit(report.to_json(), as_json, _render)
    raise typer.Exit(report.exit_code)


def _status(message: str, as_json: bool) -> AbstractContextManager:
    """A spinner on stderr while the host answers (a remote inventory takes seconds)."""
    return stderr.status(message) if stderr.is_terminal and not as_json else nullcontext()


def _check_html_target(path: Path) -> None:
    folder = path.parent
    if path.is_dir():
        raise UsageError(
            f"cannot write the HTML report to {path}: it is a folder; name a file, e.g. {path / 'report.html'}"
        )
    if not folder.exists():
        raise UsageError(f"cannot write the HTML report to {path}: folder {folder} does not exist")
    if not folder.is_dir():
        raise UsageError(f"cannot write the HTML report to {path}: {folder} is not a folder")


def _write_atomically(path: Path, text: str) -> None:
    try:
        atomic_write(path, text, mode=0o600)
    except OSError as exc:
        raise UsageError(f"cannot write the HTML report to {path}: {exc.strerror}") from None


def _badge(severity: str | None) -> Text:
    if severity is None:
        return Text(" ok ", style="bold white on green")
    return Text(f" {severity} ", style=SEVERITY_STYLES[severity])


def _render(data: dict) -> None:
    stdout.print(_summary_table(data))
    for vm in data["vms"]:
        stdout.print(_vm_panel(vm))


def _summary_table(data: dict) -> Table:
    policy = data["policy"]
    table = Table(
        title=f"{data['host']}: policy {policy['consistency']}-consistent or better, downtime {policy['allow_downtime']}",
        title_justify="left",
    )
    for column in ("VM", "state", "backup will be", "meets policy", "worst"):
        table.add_column(column, overflow="fold")
    for vm in data["vms"]:
        verdict = vm["verdict"]
        meets = Text("yes", style="green") if verdict["meets_policy"] else Text("no", style="bold red")
        table.add_row(vm["vm"], vm["state"], verdict["summary"], meets, _badge(vm["worst"]))
    return table


def _vm_panel(vm: dict) -> Panel:
    verdict = vm["verdict"]
    parts: list = [Text(verdict["summary"], style="bold" if verdict["meets_policy"] else "bold red")]
    for improvement in verdict["improvements"]:
        parts.append(Text(f"  → {improvement}", style="cyan"))
    if vm["findings"]:
        table = Table(show_header=False, expand=True, box=None, padding=(0, 1))
        table.add_column("severity", no_wrap=True)
        table.add_column("finding", overflow="fold")
        for finding in vm["findings"]:
            table.add_row(_badge(finding["severity"]), _finding_text(finding))
        parts.append(table)
    title = Text(f"{vm['vm']} ({vm['state']}) ")
    title.append_text(_badge(vm["worst"]))
    return Panel(Group(*parts), title=title, title_align="left")


def _finding_text(finding: dict) -> Text:
    where = "in the guest" if finding["run_on"] == "guest" else "on the host"
    text = Text(finding["title"], style="bold")
    text.append(f"  [{finding['id']}]", style="dim")
    text.append(f"\nseen: {finding['evidence']}", style="dim")
    text.append(f"\nfix {where}: ", style="dim")
    text.append(finding["remedy"], style="cyan")
    return text
