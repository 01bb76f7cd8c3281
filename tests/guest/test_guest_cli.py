"""What every `hvbackup-guest` command offers: an `Example:` in its help and `--json`."""

from __future__ import annotations

import pytest

COMMANDS = ["check", "freeze", "thaw", "status", "vssd", "install", "uninstall"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_guest_command_has_an_example_and_json(command: str, guest_cli) -> None:  # type: ignore[no-untyped-def]
    res = guest_cli(command, "--help")
    assert res.returncode == 0, res.stderr
    assert "Example:" in res.stdout and "--json" in res.stdout


def test_the_command_list_is_complete(guest_cli) -> None:  # type: ignore[no-untyped-def]
    listed = guest_cli("--help").stdout
    for command in COMMANDS:
        assert command in listed
    assert "--version" in listed
