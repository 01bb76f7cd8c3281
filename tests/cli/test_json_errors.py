"""Every command with --json and an input that must fail prints exactly one JSON document on
stdout, {"error": {"code": N, "message": "..."}}, with N its exit code (README: "Every command
takes --json and then prints exactly one JSON document on stdout")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hvbackup.cli.main import build_app
from hvbackup.errors import EXIT_FAILED, EXIT_NO_REPOSITORY

from .cli_fixtures import commands

app = build_app()
runner = CliRunner()


def failing_arguments(name: str, command, tmp: Path) -> tuple[list[str], set[int]]:
    """Arguments that must make `name` fail, and the exit codes it may fail with: a repository
    path that does not exist (10), a lab or host folder that does not exist (1)."""
    missing_repo, missing_lab, a_file = tmp / "no-repo", tmp / "no-lab", tmp / "a-file"
    a_file.write_text("not a folder")
    if name == "init":
        return ["--repo", str(a_file / "repo")], {EXIT_FAILED}
    if name == "demo":
        return [str(a_file)], {EXIT_FAILED}
    if name == "benchmark":
        return ["--size-mib", "0"], {EXIT_FAILED}
    if name == "assess":
        return ["--host", f"lab:{missing_lab}", "--all"], {EXIT_FAILED}
    if name == "lab create":
        return [str(a_file / "lab")], {EXIT_FAILED}
    if name == "restore":  # --host or --disk N --to FILE: neither is required on its own
        return ["--repo", str(missing_repo), "latest", "--host", f"lab:{missing_lab}"], {EXIT_NO_REPOSITORY}
    empty_folder = tmp / "empty"
    empty_folder.mkdir()
    values = {
        "repo": ["--repo", str(missing_repo)],
        "host": ["--host", f"lab:{missing_lab}"],
        "directory": [str(missing_lab)],
        "snapshot": ["latest"],
        "vm": ["web-01"],
        "path": ["/etc/hostname"],
        "pattern": ["*.conf"],
        "to": ["--to", str(tmp / "out")],
        "mountpoint": [str(empty_folder)],
        "slot": ["1"],
        "image": [str(tmp / "no-disk.raw")],
        "text": ["--text", "x"],
    }
    arguments = []
    for param in command.params:
        if not param.required:
            continue
        assert param.name in values, f"no failing input known for {param.name!r} of `hvbackup {name}`: add one here"
        arguments += values[param.name]
    required = {param.name for param in command.params if param.required}
    return arguments, ({EXIT_NO_REPOSITORY} if "repo" in required else set()) | (
        {EXIT_FAILED} if required & {"host", "image"} or "repo" not in required else set()
    )


@pytest.mark.parametrize(("name", "command"), list(commands()), ids=[name for name, _ in commands()])
def test_a_failing_command_with_json_prints_one_error_document(name, command, tmp_path):
    arguments, expected = failing_arguments(name, command, tmp_path)
    result = runner.invoke(
        app, [*name.split(), *arguments, "--json"], env={"HVBACKUP_PASSWORD": "pw", "COLUMNS": "200"}
    )
    assert result.exit_code in expected, (result.stdout, result.stderr)
    document = json.loads(result.stdout)  # exactly one JSON document, nothing else
    assert set(document) == {"error"} and set(document["error"]) == {"code", "message"}
    assert document["error"]["code"] == result.exit_code and document["error"]["message"].strip()
    assert "Traceback" not in result.stderr
