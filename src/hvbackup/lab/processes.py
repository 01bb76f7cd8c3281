"""Starting and stopping a VM's workload process, and telling whether one is alive (pid reuse included)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hvbackup.hyperv.errors import HyperVError
from hvbackup.lab.workload import MODULE

STOP_WAIT = 5.0


def workload_alive(pid: int | None) -> bool:
    """True if `pid` is a live (not zombie) workload process."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return MODULE.encode() in cmdline and state not in ("Z", "X")


def start_workload(vm_folder: Path) -> int:
    """Start the detached workload for a VM folder; returns its pid (call with the I/O lock held)."""
    done = subprocess.run(
        [sys.executable, "-m", MODULE, "--detach", str(vm_folder)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    pid_text = done.stdout.strip()
    if done.returncode != 0 or not pid_text.isdigit():
        raise HyperVError(f"cannot start the workload of {vm_folder.name}: {done.stderr.strip() or 'no pid'}")
    return int(pid_text)


def wait_stopped(pid: int | None, timeout: float = STOP_WAIT) -> None:
    """Wait until the workload has seen vm.json and left; kill it if it does not."""
    deadline = time.monotonic() + timeout
    while workload_alive(pid):
        if time.monotonic() >= deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # type: ignore[arg-type]
            return
        time.sleep(0.02)


def workload_pids(under: Path | None = None) -> list[int]:
    """Live workload processes (of VM folders under `under`, if given): for cleanup checks."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if MODULE.encode() not in args or not workload_alive(int(entry.name)):
            continue
        if under is None or any(a.startswith(str(under).encode()) for a in args):
            found.append(int(entry.name))
    return found
