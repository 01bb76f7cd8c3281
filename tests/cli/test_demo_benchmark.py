"""`hvbackup demo` and `hvbackup benchmark` given a place or a size they cannot use: one line, exit 1."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hvbackup.errors import EXIT_FAILED

from .cli_fixtures import run_hvbackup


def one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == EXIT_FAILED and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert json.loads(result.stdout)["error"] == {"code": EXIT_FAILED, "message": lines[0].removeprefix("error: ")}
    return lines[0].removeprefix("error: ")


def test_demo_into_a_file_is_refused_naming_it(tmp_path):
    (tmp_path / "a-file").write_text("x")
    result = run_hvbackup("demo", str(tmp_path / "a-file"), "--json")
    assert one_error_line(result) == f"demo folder {tmp_path}/a-file is a file: pass a new folder"


def test_demo_under_a_file_is_refused_naming_the_file(tmp_path):
    (tmp_path / "a-file").write_text("x")
    result = run_hvbackup("demo", str(tmp_path / "a-file" / "demo"), "--json")
    assert one_error_line(result) == f"cannot create demo folder {tmp_path}/a-file/demo: {tmp_path}/a-file is a file"


@pytest.fixture
def unwritable_folder(tmp_path: Path) -> Path:
    """A folder no file can be created in: a mode 555 folder, or (root passes modes) sysfs."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir(mode=0o555)
        return folder
    return Path("/sys")


def test_demo_in_a_folder_that_is_not_writable_is_refused_and_creates_nothing(unwritable_folder):
    before = set(os.listdir(unwritable_folder))
    result = run_hvbackup("demo", str(unwritable_folder / "demo" / "run"), "--json")
    message = one_error_line(result)
    assert message.startswith(
        f"cannot create demo folder {unwritable_folder}/demo/run: {unwritable_folder} is not writable ("
    )
    assert set(os.listdir(unwritable_folder)) == before


@pytest.mark.parametrize("size", ["0", "-5"])
def test_benchmark_with_a_size_below_one_mib_is_refused(size):
    result = run_hvbackup("benchmark", "--size-mib", size, "--json")
    assert one_error_line(result) == f"--size-mib must be at least 1, not {size}"
