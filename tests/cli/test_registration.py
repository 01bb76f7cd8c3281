"""One way of registering commands: every `cli/cmd_*` and `cli/guestcmd_*` module adds its commands in `register(app)`,
`app.command(NAME)(function)` or `add_group(app, NAME, HELP, {...})`; no module keeps a typer app
that commands attach themselves to at import."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
import typer
import typer.main

import hvbackup.cli as cli_package
from hvbackup.cli.main import COMMAND_MODULES, build_app

from .cli_fixtures import commands

MODULES = sorted(
    info.name for info in pkgutil.iter_modules(cli_package.__path__) if info.name.startswith(("cmd_", "guestcmd_"))
)


@pytest.mark.parametrize("name", MODULES)
def test_a_command_module_registers_in_register_and_holds_no_app(name):
    module = importlib.import_module(f"hvbackup.cli.{name}")
    assert callable(module.register)
    assert not [attr for attr, value in vars(module).items() if isinstance(value, typer.Typer)]


def test_building_the_app_twice_gives_the_same_commands():
    first = [name for name, _ in commands(groups=True)]
    assert first == [name for name, _ in commands(groups=True)]


@pytest.mark.parametrize("command", sorted(COMMAND_MODULES))
def test_a_command_built_alone_is_the_command_of_the_whole_app(command):
    alone = typer.main.get_command(build_app(command)).commands[command]
    whole = typer.main.get_command(build_app()).commands[command]
    assert [p.opts for p in alone.params] == [p.opts for p in whole.params]
    assert sorted(getattr(alone, "commands", {})) == sorted(getattr(whole, "commands", {}))
