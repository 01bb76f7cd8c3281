"""`hvbackup-guest freeze` / `thaw`: a freeze that outlives the command that asked for it.

`freeze` forks a detached holder (double fork, new session) that prepares the applications, freezes,
hands its summary back through a pipe and then waits for `thaw`: the message `thaw` on its control
socket (state dir/control.sock, see thawrequest.py), or SIGUSR1, SIGTERM, SIGINT, SIGHUP. The holder
keeps the database sessions open; the separate watchdog thaws at the bound even if the holder is killed.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

from hvbackup.errors import HvBackupError, UsageError
from hvbackup.guest.state import StateDir, pid_alive
from hvbackup.guest.thawrequest import THAW_MESSAGE
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
    control = _listen(options.state_dir, txn.log)  # the state dir is on no frozen filesystem (begin checked)
    socket_path = str(options.state_dir.control_socket) if control is not None else None
    _answer(answer_fd, {"ok": True, **txn.frozen_summary(), "control_socket": socket_path})
    try:
        # wait a little past the bound so the watchdog's thaw is the one that happens (and is reported)
        _wait_for_thaw(control, asked, txn.config.max_seconds + 1.0)
        txn.thaw()
    finally:
        if control is not None:
            control.close()
            options.state_dir.control_socket.unlink(missing_ok=True)
    txn.finish()


def _listen(state_dir: StateDir, log: Callable[[str], None]) -> socket.socket | None:
    """The control socket, or None (then only the signals thaw) if it cannot be made."""
    path = state_dir.control_socket
    control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        path.unlink(missing_ok=True)
        control.bind(str(path))
        control.listen(4)
        return control
    except OSError as exc:  # e.g. a path longer than a socket address holds (108 bytes)
        control.close()
        log(f"no control socket at {path}: {exc}; thaw through SIGUSR1 only")
        return None
    finally:
        os.umask(old_umask)


def _wait_for_thaw(control: socket.socket | None, asked: list[int], seconds: float) -> None:
    """Return on a thaw signal, a `thaw` message on `control`, or after `seconds`."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)  # a signal between the check of `asked` and select() still wakes select()
    watched: list[socket.socket | int] = [wake_r] if control is None else [control, wake_r]
    deadline = time.monotonic() + seconds
    try:
        while not asked:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select(watched, [], [], left)
            if wake_r in ready:
                os.read(wake_r, 64)
            if control is not None and control in ready and _thaw_message(control):
                return
    finally:
        signal.set_wakeup_fd(-1)
        os.close(wake_r)
        os.close(wake_w)


def _thaw_message(control: socket.socket) -> bool:
    conn, _addr = control.accept()
    with conn:
        conn.settimeout(1.0)
        try:
            return conn.recv(64) == THAW_MESSAGE
        except OSError:
            return False


def request_thaw(
    state_dir: StateDir, force: bool = False, wait_seconds: float = 300.0, woken_pid: int | None = None
) -> dict[str, Any] | None:
    """Ask the holder to thaw and return its report; thaw from the state file if the holder died.

    `woken_pid`: a holder this process already woke through its control socket (it may be done by now).
    """
    state = state_dir.load()
    if state is None:
        return _await_report(state_dir, woken_pid, wait_seconds) if woken_pid else None
    if pid_alive(state.pid) and state.by != "freeze" and not force:
        raise UsageError(
            f"frozen by the {state.by} daemon (pid {state.pid}); it thaws on the host's THAW "
            "or at the bound (use --force to thaw now)"
        )
    if not pid_alive(state.pid) or state.by != "freeze":
        return recover(state_dir) or state_dir.load_report()  # the holder may have finished just now
    if state.pid != woken_pid:
        os.kill(state.pid, signal.SIGUSR1)
    return _await_report(state_dir, state.pid, wait_seconds)


def _await_report(state_dir: StateDir, holder_pid: int, wait_seconds: float) -> dict[str, Any] | None:
    """The report, once the holder (which writes it after the thaw hooks) has ended."""
    deadline = time.monotonic() + wait_seconds
    while pid_alive(holder_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(holder_pid):
        raise HvBackupError(f"the freeze holder (pid {holder_pid}) did not finish within {wait_seconds:g} s")
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
