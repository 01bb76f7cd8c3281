"""The `hvbackup` command: the proxy that backs up and restores Linux VMs on Hyper-V.

Each group of commands lives in its own module and is registered here.
"""

from __future__ import annotations

import sys

import typer

from hvbackup import __version__
from hvbackup.cli.common import register_modules

# The module of each command that has one to itself; any other word (and --help) loads them all.
COMMAND_MODULES = {
    "assess": "cmd_assess",
    "backup": "cmd_backup",
    "restore": "cmd_backup",
    "benchmark": "cmd_benchmark",
    "demo": "cmd_demo",
    "files": "cmd_files",
    "image": "cmd_image",
    "lab": "cmd_lab",
    "mount": "cmd_mount",
}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hvbackup {__version__}")
        raise typer.Exit()


def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Backup and restore for Linux virtual machines on Microsoft Hyper-V."""


def build_app(command: str | None = None) -> typer.Typer:
    """The CLI with every command, or only the module that serves `command`."""
    app = typer.Typer(
        name="hvbackup",
        help="Backup and restore for Linux virtual machines on Microsoft Hyper-V.\n\n"
        "Example: hvbackup init --repo /srv/hvbackup && hvbackup image backup --repo /srv/hvbackup disk.raw",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(_root)
    register_modules(app, "cmd_", only=COMMAND_MODULES.get(command or ""))
    return app


def main() -> None:
    build_app(sys.argv[1] if len(sys.argv) > 1 else None)()
