"""The `hvbackup` command: the proxy that backs up and restores Linux VMs on Hyper-V.

Each group of commands lives in its own module and is registered here.
"""

from __future__ import annotations

import sys

import typer
from typer._click import exceptions as click_errors

from hvbackup import __version__
from hvbackup.cli.common import fail, register_modules
from hvbackup.errors import EXIT_FAILED, EXIT_INTERRUPTED

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
    args = sys.argv[1:]
    app = build_app(args[0] if args else None)
    try:
        code = app(args=args, prog_name="hvbackup", standalone_mode=False)
    except click_errors.NoArgsIsHelpError as exc:
        exc.show()
        code = exc.exit_code
    except click_errors.UsageError as exc:
        code = _refused(_usage_message(exc), EXIT_FAILED, "--json" in args)
    except typer.Abort:
        code = _refused("interrupted", EXIT_INTERRUPTED, "--json" in args)
    sys.exit(code if isinstance(code, int) else 0)


def _usage_message(exc: click_errors.UsageError) -> str:
    """The parser's complaint on one line, with where to read the command's options."""
    message = " ".join(exc.format_message().split())
    return f"{message} (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else message


def _refused(message: str, code: int, as_json: bool) -> int:
    """A wrong argument is a failure like any other (exit 1, not the parser's 2, which `assess`
    uses for warnings): one line, and the error document with --json."""
    try:
        fail(message, code, as_json)
    except typer.Exit as exit_:
        return exit_.exit_code
    return code
