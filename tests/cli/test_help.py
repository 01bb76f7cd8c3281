"""Every command says how it is used: an `Example:` line in its help, `--json`, and the
repository options, declared once in cli/common.py, wherever it opens a repository."""

from __future__ import annotations

import pytest

from .cli_fixtures import commands

REPOSITORY_OPTIONS = ("--repo", "--password-file", "--key-file")
# `init` makes a repository: there is no key yet to open it with.
CREATES_THE_REPOSITORY = {"init"}


def _options(command) -> dict[str, object]:
    return {opt: param for param in command.params for opt in param.opts if opt.startswith("--")}


def _shape(param) -> tuple:
    return sorted(param.opts + param.secondary_opts), param.help, param.envvar


@pytest.mark.parametrize(("name", "command"), list(commands(groups=True)), ids=[n for n, _ in commands(groups=True)])
def test_every_command_has_an_example_in_its_help(name, command):
    assert "Example:" in (command.help or ""), f"`hvbackup {name} --help` has no Example:"


@pytest.mark.parametrize(("name", "command"), [(n, c) for n, c in commands()], ids=[n for n, _ in commands()])
def test_every_command_takes_json(name, command):
    assert any("--json" in param.opts for param in command.params), f"`hvbackup {name}` has no --json"


def test_json_is_one_option_everywhere():
    shapes = {name: _shape(_options(command)["--json"]) for name, command in commands()}
    assert len(set(map(repr, shapes.values()))) == 1, shapes


@pytest.mark.parametrize(("name", "command"), [(n, c) for n, c in commands()], ids=[n for n, _ in commands()])
def test_a_command_that_opens_a_repository_takes_the_repository_options(name, command):
    options = _options(command)
    if "--repo" not in options:
        return
    expected = REPOSITORY_OPTIONS[:2] if name in CREATES_THE_REPOSITORY else REPOSITORY_OPTIONS
    assert [o for o in REPOSITORY_OPTIONS if o in options] == list(expected), f"`hvbackup {name}`"


@pytest.mark.parametrize("option", REPOSITORY_OPTIONS)
def test_the_repository_options_are_declared_once(option):
    shapes = {name: _shape(_options(command)[option]) for name, command in commands() if option in _options(command)}
    assert len(shapes) > 10
    assert len(set(map(repr, shapes.values()))) == 1, shapes


def test_the_commands_that_open_a_repository_take_repo():
    """The commands that keep data in a repository; a new one belongs here or in the lab/demo rooms."""
    without_repo = {name for name, command in commands() if "--repo" not in _options(command)}
    assert without_repo == {"assess", "benchmark", "demo"} | {n for n, _ in commands() if n.startswith("lab ")}


def _guest_commands():
    import typer.main

    from hvbackup.cli.guest_main import build_app

    return sorted(typer.main.get_command(build_app()).commands.items())


@pytest.mark.parametrize(("name", "command"), _guest_commands(), ids=[n for n, _ in _guest_commands()])
def test_every_guest_agent_command_has_an_example_and_json(name, command):
    assert "Example:" in (command.help or ""), f"`hvbackup-guest {name} --help` has no Example:"
    assert _shape(_options(command)["--json"]) == _shape(_options(dict(commands())["snapshots"])["--json"])
