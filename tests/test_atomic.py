"""hvbackup.atomic: a writer killed between writing and renaming leaves the old file whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hvbackup.atomic import atomic_write, fsync_dir, replacing

# Writes the new content into the temporary file, says so, then waits to be killed before the rename.
_KILLED_BEFORE_RENAME = """
import os, sys
from hvbackup.atomic import replacing
with replacing(sys.argv[1]) as fd:
    os.write(fd, b"new content, never renamed into place")
    os.fsync(fd)
    print("written", flush=True)
    sys.stdin.read()
"""


def test_a_writer_killed_before_the_rename_leaves_the_old_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_bytes(b"old content")
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_BEFORE_RENAME, str(target)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == "written\n"
    child.send_signal(signal.SIGKILL)
    child.communicate()
    assert child.returncode == -signal.SIGKILL
    assert target.read_bytes() == b"old content"
    [temporary] = [p for p in tmp_path.iterdir() if p != target]
    assert temporary.name.startswith(".state.json.tmp-")


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("old")
    atomic_write(target, "new ✓")
    assert target.read_text(encoding="utf-8") == "new ✓"
    assert list(tmp_path.iterdir()) == [target]


def test_a_failure_in_the_block_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "vm.json"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), replacing(target) as fd:
        os.write(fd, b"half")
        raise RuntimeError("the writer failed")
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]


def test_the_mode_is_that_of_the_new_file(tmp_path: Path) -> None:
    target = tmp_path / "key"
    atomic_write(target, b"secret", mode=0o600)
    assert target.stat().st_mode & 0o777 == 0o600


def test_fsync_dir_accepts_a_folder(tmp_path: Path) -> None:
    fsync_dir(tmp_path)
