"""`hvbackup-guest install | uninstall`: replace the stock VSS daemon, or restore it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hvbackup.cli.common import JsonOpt, emit, handle_errors, stdout
from hvbackup.guest.systemd import install as do_install
from hvbackup.guest.systemd import uninstall as do_uninstall

RootOpt = Annotated[Path, typer.Option("--root", help="Install into this tree (image building, tests).")]


def register(app: typer.Typer) -> None:
    app.command("install")(install_cmd)
    app.command("uninstall")(uninstall_cmd)


@handle_errors
def install_cmd(root: RootOpt = Path("/"), as_json: JsonOpt = False) -> None:
    """Install the hvbackup-guest.service unit and mask hv-vss-daemon / hypervvssd.

    Example: sudo hvbackup-guest install
    """
    result = do_install(root)
    emit(
        result,
        as_json,
        lambda r: stdout.print(f"installed {r['unit']}; masked: {', '.join(r['masked']) or 'none'}"),
    )


@handle_errors
def uninstall_cmd(root: RootOpt = Path("/"), as_json: JsonOpt = False) -> None:
    """Remove hvbackup-guest.service and give the stock VSS daemon back.

    Example: sudo hvbackup-guest uninstall
    """
    result = do_uninstall(root)
    emit(
        result,
        as_json,
        lambda r: stdout.print(f"removed {r['removed']}; unmasked: {', '.join(r['unmasked']) or 'none'}"),
    )
