"""`hvbackup-guest freeze` / `thaw`: a freeze that outlives the command that asked for it.

`freeze` forks a detached holder (double fork, new session) that prepares the applications, freezes,
hands its summary back through a pipe and then waits for `thaw` (SIGUSR1). The holder keeps the
database sessions open; the separate watchdog thaws at the bound even if the holder is killed.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

from hvbackup.errors import HvBackupError, UsageError
from hvbackup.guest.state import StateDir, pid_alive
from hvbackup.guest.transaction import FreezeOptions, FreezeTransaction, recover

THAW_SIGNALS = {signal.SIGUSR1, signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


def freeze_detached(options: FreezeOptions) -> dict[str, Any]:
    """Start a holder, wait until it has frozen (or failed), and return its summary."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            data = pipe.read()
        os.waitpid(pid, 0)
        if not data:
            raise HvBackupError("the freeze holder ended without an answer")
        return json.loads(data)
    os.close(read_end)
    os.setsid()
    if os.fork():
        os._exit(0)
    _detach_stdio()
    try:
        _hold(options, write_end)
    finally:
        os._exit(0)


def _detach_stdio() -> None:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def _answer(fd: int, data: dict[str, Any]) -> None:
    os.write(fd, json.dumps(data, default=str).encode())
    os.close(fd)


def _hold(options: FreezeOptions, answer_fd: int) -> None:
    asked: list[int] = []
    for sig in THAW_SIGNALS:  # a handler, not a blocked mask: hooks and the watchdog must not inherit a mask
        signal.signal(sig, lambda signum, _frame: asked.append(signum))
    txn = FreezeTransaction(options)
    try:
        frozen = txn.begin()
    except HvBackupError as exc:
        _answer(answer_fd, {"ok": False, "error": str(exc)})
        return
    except Exception as exc:  # the holder has no terminal: every failure goes back through the pipe
        _answer(answer_fd, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        return
    if not frozen:
        report = txn.finish()
        _answer(answer_fd, {"ok": False, "error": txn.error, "report": report})
        return
    _answer(answer_fd, {"ok": True, **txn.frozen_summary()})
    # wait a little past the bound so the watchdog's thaw is the one that happens (and is reported)
    signal.pthread_sigmask(signal.SIG_BLOCK, THAW_SIGNALS)
    if not asked:
        signal.sigtimedwait(THAW_SIGNALS, txn.config.max_seconds + 1.0)
    txn.thaw()
    txn.finish()


def request_thaw(state_dir: StateDir, force: bool = False, wait_seconds: float = 300.0) -> dict[str, Any] | None:
    """Ask the holder to thaw and return its report; thaw from the state file if the holder died."""
    state = state_dir.load()
    if state is None:
        return None
    if pid_alive(state.pid) and state.by != "freeze" and not force:
        raise UsageError(
            f"frozen by the {state.by} daemon (pid {state.pid}); it thaws on the host's THAW "
            "or at the bound (use --force to thaw now)"
        )
    if not pid_alive(state.pid) or state.by != "freeze":
        return recover(state_dir)
    os.kill(state.pid, signal.SIGUSR1)
    deadline = time.monotonic() + wait_seconds
    while pid_alive(state.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(state.pid):
        raise HvBackupError(f"the freeze holder (pid {state.pid}) did not finish within {wait_seconds:g} s")
    return state_dir.load_report()


def status(state_dir: StateDir) -> dict[str, Any]:
    state = state_dir.load()
    if state is None:
        return {"frozen": False, "last": state_dir.load_report()}
    now = time.time()
    return {
        "frozen": True,
        "backup_id": state.backup_id,
        "by": state.by,
        "pid": state.pid,
        "holder_alive": pid_alive(state.pid),
        "watchdog_pid": state.watchdog_pid,
        "watchdog_alive": pid_alive(state.watchdog_pid),
        "since": state.started,
        "stale": not pid_alive(state.pid) and not pid_alive(state.watchdog_pid),
        "frozen_seconds": round(now - state.started, 3),
        "thaw_in_seconds": round(max(0.0, state.deadline - now), 3),
        "mounts": [t["path"] for t in state.targets],
    }
