"""The `hvbackup-guest` command: the agent that runs inside each Linux VM."""

from __future__ import annotations

import typer

from hvbackup.cli.common import register_modules

guest_app = typer.Typer(
    name="hvbackup-guest",
    help="The hvbackup guest agent: readiness checks, safe freeze/thaw with application hooks, "
    "and a drop-in replacement for hv_vss_daemon.\n\nExample: hvbackup-guest check --json",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@guest_app.callback()
def _root() -> None:
    """The hvbackup guest agent."""


register_modules(guest_app, "guestcmd_")


def main() -> None:
    guest_app()
