"""Every command says how it is used: an `Example:` line in its help, and `--json`."""

from __future__ import annotations

import pytest

from .cli_fixtures import commands

# Commands allowed to lack an example: none.
MISSING_EXAMPLE_ON_MAIN: set[str] = set()


def _cases():
    for name, command in commands(groups=True):
        marks = ()
        if name in MISSING_EXAMPLE_ON_MAIN:
            marks = (pytest.mark.xfail(reason=f"`hvbackup {name} --help` has no Example: on main", strict=False),)
        yield pytest.param(command, id=name, marks=marks)


@pytest.mark.parametrize("command", list(_cases()))
def test_every_command_has_an_example_in_its_help(command):
    assert "Example:" in (command.help or "")


@pytest.mark.parametrize(("name", "command"), [(n, c) for n, c in commands()], ids=[n for n, _ in commands()])
def test_every_command_takes_json(name, command):
    assert any("--json" in param.opts for param in command.params), f"`hvbackup {name}` has no --json"
