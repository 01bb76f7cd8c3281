"""`hvbackup assess`: arguments, one-line errors with their exit codes, and the documented exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hvbackup.lab import LabHost
from hvbackup.lab.sample import SAMPLE_VMS, build_sample


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
    assert "Example: hvbackup assess -H lab:" in result.stdout
    assert "4 blockers" in result.stdout


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The one line on stderr, after checking the JSON error document on stdout carries the exit code."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert json.loads(result.stdout) == {
        "error": {"code": result.returncode, "message": lines[0].removeprefix("error: ")}
    }
    return lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "no host: pass --host"),
        (("--host", "ftp://x"), "unknown host spec 'ftp://x'"),
        (("--host", "lab:/nonexistent", "--all", "web-01"), "name VMs or pass --all, not both"),
    ],
)
def test_bad_arguments_fail_with_one_line(args, message):
    result = run(*args, "--json", env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 1
    assert message in one_error_line(result)


def test_dash_h_is_short_for_host_as_in_backup():
    result = run("-H", "lab:/nonexistent", "--all", "--json")
    assert result.returncode == 1
    assert one_error_line(result) == (
        "error: /nonexistent is not a lab host (no lab.json): create one with `hvbackup lab create /nonexistent`"
    )


@pytest.mark.parametrize(
    ("option", "typo", "choices"),
    [
        ("--consistency", "aplication", "'application', 'filesystem', 'crash'"),
        ("--allow-downtime", "always", "'never', 'save', 'shutdown'"),
    ],
)
def test_a_policy_typo_is_refused_by_the_parser_with_the_choices(option, typo, choices):
    result = run("-H", "lab:/nonexistent", "--all", option, typo, "--json")
    assert result.returncode == 1  # not the parser's 2: that is assess's "warnings"
    line = one_error_line(result)
    assert line.startswith(f"error: Invalid value for '{option}'") and choices in line, line


def test_unreachable_psrp_host_is_one_line_naming_host_and_port():
    result = run(
        "-H", "psrp://backup@127.0.0.1:1", "--all", "--json", env={**os.environ, "HVBACKUP_HYPERV_PASSWORD": "pw"}
    )
    assert result.returncode == 1
    assert (
        one_error_line(result)
        == "error: connection refused on 127.0.0.1:1 (is the WinRM HTTPS listener on? see docs/HYPERV.md)"
    )


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            "folder",
            "cannot write the HTML report to {tmp}/folder: it is a folder; name a file, e.g. {tmp}/folder/report.html",
        ),
        (
            "missing/report.html",
            "cannot write the HTML report to {tmp}/missing/report.html: folder {tmp}/missing does not exist",
        ),
        (
            "a-file/report.html",
            "cannot write the HTML report to {tmp}/a-file/report.html: {tmp}/a-file is not a folder",
        ),
    ],
)
def test_html_to_a_place_that_cannot_hold_it_is_refused_before_assessing(tmp_path, target, message):
    (tmp_path / "folder").mkdir()
    (tmp_path / "a-file").write_text("x")
    result = run("-H", "lab:/nonexistent", "--all", "--json", "--html", str(tmp_path / target))
    assert result.returncode == 1
    assert one_error_line(result) == "error: " + message.format(tmp=tmp_path)  # not "no lab.json": checked first


@pytest.fixture
def one_vm_lab(tmp_path: Path):
    lab = LabHost.create(tmp_path / "lab")
    build_sample(lab, [spec for spec in SAMPLE_VMS if spec.name == "archive-01"])  # off: no workload to start
    yield lab
    lab.destroy()


@pytest.fixture
def unwritable_folder(tmp_path: Path) -> Path:
    """A folder no file can be created in: a mode 555 folder, or (root passes modes) sysfs."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir(mode=0o555)
        return folder
    return Path("/sys")


def test_html_to_a_folder_that_is_not_writable_is_one_line_and_leaves_nothing(one_vm_lab, unwritable_folder):
    before = set(os.listdir(unwritable_folder))
    result = run(
        "-H", f"lab:{one_vm_lab.directory}", "--all", "--json", "--html", str(unwritable_folder / "report.html")
    )
    assert result.returncode == 1
    assert (
        one_error_line(result)
        == f"error: cannot write the HTML report to {unwritable_folder}/report.html: Permission denied"
    )
    assert set(os.listdir(unwritable_folder)) == before
