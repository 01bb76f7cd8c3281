"""Hook executables in /etc/hvbackup/hooks.d: `freeze` in name order before the freeze, `thaw` in
reverse order after it (the order VMware Tools uses, docs/GUEST.md §6).

A hook gets argv [path, phase] and the environment HVBACKUP_PHASE, HVBACKUP_BACKUP_ID,
HVBACKUP_TIMEOUT; stdin is /dev/null, stdout/stderr are captured in memory. A hook that runs past
its timeout gets SIGTERM, then SIGKILL: this only happens outside the freeze window.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SKIPPED_SUFFIXES = ("~", ".bak", ".sample", ".dpkg-old", ".dpkg-new", ".dpkg-dist", ".rpmnew", ".rpmsave", ".disabled")
OUTPUT_LIMIT = 4096
KILL_GRACE = 2.0


@dataclass
class HookResult:
    name: str
    phase: str
    returncode: int | None
    seconds: float
    stdout: str = ""
    stderr: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.returncode == 0

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "phase": self.phase,
            "ok": self.ok,
            "returncode": self.returncode,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "stdout": self.stdout,
            "stderr": self.stderr,
        }


def discover(hooks_dir: Path) -> list[Path]:
    """Executable regular files in name order, skipping editor/package leftovers."""
    if not hooks_dir.is_dir():
        return []
    found = []
    for path in sorted(hooks_dir.iterdir(), key=lambda p: p.name):
        if path.name.startswith(".") or path.name.endswith(SKIPPED_SUFFIXES):
            continue
        if path.is_file() and os.access(path, os.X_OK):
            found.append(path)
    return found


def unsafe_reason(path: Path) -> str | None:
    """Why a hook must not be run as root: writable by others, or not owned by root."""
    st = path.stat()
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "writable by group or others"
    if st.st_uid != 0 and os.geteuid() == 0:
        return "not owned by root"
    return None


def _text(data: bytes) -> str:
    return data[:OUTPUT_LIMIT].decode(errors="replace")


def run_hook(path: Path, phase: str, backup_id: str, timeout: float) -> HookResult:
    reason = unsafe_reason(path)
    if reason:
        return HookResult(path.name, phase, None, 0.0, error=f"refused: {reason}")
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HVBACKUP_PHASE": phase,
        "HVBACKUP_BACKUP_ID": backup_id,
        "HVBACKUP_TIMEOUT": str(int(timeout)),
        "LANG": "C.UTF-8",
    }
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            [str(path), phase],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
            cwd="/",
        )
    except OSError as exc:
        return HookResult(path.name, phase, None, 0.0, error=f"cannot run: {exc.strerror}")
    try:
        out, err = proc.communicate(timeout=timeout)
        return HookResult(
            path.name,
            phase,
            proc.returncode,
            time.monotonic() - start,
            _text(out),
            _text(err),
            None if proc.returncode == 0 else f"exited with status {proc.returncode}",
        )
    except subprocess.TimeoutExpired:
        out, err = _stop(proc)
        return HookResult(
            path.name,
            phase,
            proc.returncode,
            time.monotonic() - start,
            _text(out),
            _text(err),
            f"timed out after {timeout:g} s",
        )


def _stop(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    for sig, grace in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            return proc.communicate(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
    return b"", b""


class HookRunner:
    """Runs the freeze hooks, remembers which ran, and runs `thaw` for those in reverse order."""

    def __init__(self, hooks_dir: Path, timeout: float, backup_id: str) -> None:
        self.hooks = discover(hooks_dir)
        self.timeout = timeout
        self.backup_id = backup_id
        self.ran: list[Path] = []
        self.results: list[HookResult] = []

    def freeze(self) -> bool:
        """Run every freeze hook; True if all succeeded."""
        ok = True
        for path in self.hooks:
            result = run_hook(path, "freeze", self.backup_id, self.timeout)
            self.results.append(result)
            if result.error is None or result.returncode is not None:
                self.ran.append(path)
            ok = ok and result.ok
        return ok

    def thaw(self, phase: str = "thaw") -> bool:
        ok = True
        for path in reversed(self.ran):
            result = run_hook(path, phase, self.backup_id, self.timeout)
            self.results.append(result)
            ok = ok and result.ok
        return ok
