"""The `hvbackup` command: the proxy that backs up and restores Linux VMs on Hyper-V.

Each group of commands lives in its own module and is registered here.
"""

from __future__ import annotations

import typer

from hvbackup.cli.common import register_modules

from hvbackup import __version__

app = typer.Typer(
    name="hvbackup",
    help="Backup and restore for Linux virtual machines on Microsoft Hyper-V.\n\n"
    "Example: hvbackup init --repo /srv/hvbackup && hvbackup image backup --repo /srv/hvbackup disk.raw",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hvbackup {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Backup and restore for Linux virtual machines on Microsoft Hyper-V."""


register_modules(app, "cmd_")


def main() -> None:
    app()
