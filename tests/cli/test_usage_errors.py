"""A wrong argument is refused like any other failure: one line, exit 1, and with --json the error
document, instead of the parser's usage box and exit 2 (which `assess` means as "warnings")."""

from __future__ import annotations

import json

import pytest

from hvbackup.errors import EXIT_FAILED

from .cli_fixtures import run_hvbackup


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("assess", "--consistency", "perfect"),
            "Invalid value for '--consistency': Value error, 'perfect' is not one of 'application', 'filesystem', 'crash'."
            " (see `hvbackup assess --help`)",
        ),
        (("backup", "--no-such-option"), "No such option: --no-such-option"),
        (("restore",), "Missing argument 'snapshot'. (see `hvbackup restore --help`)"),
        (("no-such-command",), "No such command 'no-such-command'. (see `hvbackup --help`)"),
        (("lab", "create"), "give the lab folder: DIR or --host lab:DIR"),
    ],
)
def test_a_wrong_argument_is_one_line_exit_1_and_one_json_document(args, message):
    result = run_hvbackup(*args, "--json")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == EXIT_FAILED and len(lines) == 1, result.stderr
    assert message in lines[0]
    assert json.loads(result.stdout) == {"error": {"code": EXIT_FAILED, "message": lines[0].removeprefix("error: ")}}


def test_help_and_version_still_exit_0():
    assert run_hvbackup("assess", "--help").returncode == 0
    version = run_hvbackup("--version")
    assert version.returncode == 0 and version.stdout.startswith("hvbackup ")
