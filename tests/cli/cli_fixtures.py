"""Helpers for the command-level tests: every command of the `hvbackup` app, and running it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import typer.main

from hvbackup.cli.main import build_app

HVBACKUP = [sys.executable, "-c", "from hvbackup.cli.main import main; main()"]


def commands(*, groups: bool = False) -> Iterator[tuple[str, object]]:
    """("lab create", click command) for every command of the app (and each group, with groups=True)."""

    def walk(command, path: list[str]):
        subcommands = getattr(command, "commands", None)
        if subcommands is None:
            yield " ".join(path), command
            return
        if groups and path:
            yield " ".join(path), command
        for name, sub in sorted(subcommands.items()):
            yield from walk(sub, [*path, name])

    yield from walk(typer.main.get_command(build_app()), [])


def run_hvbackup(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """The installed CLI in a child process, its stdout and stderr on pipes."""
    return subprocess.run(
        [*HVBACKUP, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
    )
