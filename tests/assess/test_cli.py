"""`hvbackup assess`: arguments, one-line errors with their exit codes, and the documented exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from hvbackup.cli.main import main; main()", "assess", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_help_shows_an_example_and_the_exit_codes():
    result = run("--help")
    assert result.returncode == 0
    assert "Example: hvbackup assess --host lab:" in result.stdout
    assert "4 blockers" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "no host: pass --host"),
        (("--host", "ftp://x"), "unknown host spec 'ftp://x'"),
        (("--host", "lab:/nonexistent", "--consistency", "perfect"), "unknown consistency 'perfect'"),
        (("--host", "lab:/nonexistent", "--allow-downtime", "always"), "unknown downtime setting 'always'"),
        (("--host", "lab:/nonexistent", "--all", "web-01"), "name VMs or pass --all, not both"),
    ],
)
def test_bad_arguments_fail_with_one_line(args, message):
    result = run(*args, "--json", env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 1
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr
