"""What reaches a terminal and a pipe: Ctrl-C at the passphrase prompt, and unwrapped lines in logs."""

from __future__ import annotations

import os
import pty
import select
import time

import pytest

from hvbackup.errors import EXIT_INTERRUPTED, EXIT_NO_REPOSITORY

from .cli_fixtures import HVBACKUP, run_hvbackup


def read_until(fd: int, wanted: bytes, timeout: float = 60) -> bytes:
    """What the terminal showed, up to and including `wanted`."""
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {wanted!r} on the terminal; it showed {seen!r}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                chunk = b""
            assert chunk, f"the terminal closed before {wanted!r}; it showed {seen!r}"
            seen += chunk
    return seen


def exit_status_of(pid: int, fd: int, timeout: float = 60) -> tuple[int, bytes]:
    """The child's exit code, draining the terminal so it cannot block on a full buffer."""
    shown = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status), shown
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                shown += os.read(fd, 4096)
            except OSError:
                pass
    os.kill(pid, 9)
    pytest.fail(f"still running after {timeout} s; the terminal showed {shown!r}")


@pytest.fixture
def repository(tmp_path):
    path = tmp_path / "repo"
    result = run_hvbackup("init", "--repo", str(path), "--json", env={**os.environ, "HVBACKUP_PASSWORD": "pw"})
    assert result.returncode == 0, result.stderr
    return path


def test_ctrl_c_at_the_passphrase_prompt_exits_130(repository):
    env = {key: value for key, value in os.environ.items() if key != "HVBACKUP_PASSWORD"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: the pty is its controlling terminal
        os.execve(HVBACKUP[0], [*HVBACKUP, "snapshots", "--repo", str(repository)], env)
    try:
        read_until(fd, b"Repository passphrase:")
        os.write(fd, b"\x03")
        code, shown = exit_status_of(pid, fd)
    finally:
        os.close(fd)
    assert code == EXIT_INTERRUPTED, shown
    assert b"interrupted" in shown and b"Traceback" not in shown


def test_a_long_error_line_reaches_a_pipe_as_one_line(tmp_path):
    missing = tmp_path / ("a-folder-with-a-long-name-" * 8) / "repo"
    result = run_hvbackup("snapshots", "--repo", str(missing), env={**os.environ, "COLUMNS": "80"})
    assert result.returncode == EXIT_NO_REPOSITORY
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(missing) in lines[0] and len(lines[0]) > 200, result.stderr
