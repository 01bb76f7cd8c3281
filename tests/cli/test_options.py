"""The same option means the same thing in every command that takes it."""

from __future__ import annotations

from enum import Enum

import pytest

from hvbackup.assess.policy import CONSISTENCY_CHOICES, DOWNTIME_CHOICES
from hvbackup.cli.common import Consistency, Downtime

from .cli_fixtures import commands


def test_the_policy_options_offer_exactly_the_policy_choices():
    assert tuple(c.value for c in Consistency) == CONSISTENCY_CHOICES
    assert tuple(d.value for d in Downtime) == DOWNTIME_CHOICES


@pytest.mark.parametrize("option", ["--host", "--consistency", "--allow-downtime"])
def test_an_option_has_the_same_names_and_choices_in_every_command(option):
    shapes = {}
    for name, command in commands():
        for param in command.params:
            if option in param.opts:
                shapes[name] = (sorted(param.opts + param.secondary_opts), _choices(param.type_descriptor.annotation))
    assert {"assess", "backup"} <= set(shapes)
    assert len({repr(shape) for shape in shapes.values()}) == 1, shapes


def _choices(annotation) -> list[str] | None:
    return (
        [member.value for member in annotation]
        if isinstance(annotation, type) and issubclass(annotation, Enum)
        else None
    )
