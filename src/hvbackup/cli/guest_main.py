"""The `hvbackup-guest` command: the agent that runs inside each Linux VM.

`thaw` asks the freeze holder to thaw before anything heavy is imported: every millisecond this
process spends starting up is a millisecond the filesystems stay frozen.
"""

from __future__ import annotations

import sys

# The module of each command; any other word (and --help) loads them all.
COMMAND_MODULES = {
    "check": "guestcmd_check",
    "freeze": "guestcmd_freeze",
    "thaw": "guestcmd_freeze",
    "status": "guestcmd_freeze",
    "install": "guestcmd_install",
    "uninstall": "guestcmd_install",
    "vssd": "guestcmd_vssd",
}


def build_app(command: str | None = None):  # -> typer.Typer, imported lazily
    import typer

    from hvbackup import __version__
    from hvbackup.cli.common import register_modules

    def version(value: bool) -> None:
        if value:
            typer.echo(f"hvbackup-guest {__version__}")
            raise typer.Exit()

    app = typer.Typer(
        name="hvbackup-guest",
        help="The hvbackup guest agent: readiness checks, safe freeze/thaw with application hooks, "
        "and a drop-in replacement for hv_vss_daemon.\n\nExample: hvbackup-guest check --json",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    @app.callback()
    def _root(
        _version: bool = typer.Option(False, "--version", callback=version, is_eager=True, help="Print the version."),
    ) -> None:
        """The hvbackup guest agent."""

    register_modules(app, "guestcmd_", only=COMMAND_MODULES.get(command or ""))
    return app


def _early_thaw(args: list[str]) -> None:
    """`thaw`: wake the holder now; the full command then waits for its report and prints it."""
    if args[:1] != ["thaw"] or "--help" in args or "-h" in args:
        return
    from hvbackup.guest.thawrequest import DEFAULT_STATE_DIR, wake_holder

    state_dir = DEFAULT_STATE_DIR
    for i, arg in enumerate(args):
        if arg == "--state-dir" and i + 1 < len(args):
            state_dir = args[i + 1]
        elif arg.startswith("--state-dir="):
            state_dir = arg.split("=", 1)[1]
    wake_holder(state_dir)


def main() -> None:
    args = sys.argv[1:]
    _early_thaw(args)
    build_app(args[0] if args else None)()
