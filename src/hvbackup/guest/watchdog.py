"""The watchdog: a separate, detached process that thaws our filesystems at the bound.

It is started before the first FIFREEZE with the planned targets; after the freeze the agent sends
it the targets actually frozen (foreign-frozen ones excluded) on its stdin. It survives the agent
(own session; SIGKILL of the agent does not reach it), sleeps until the deadline and then thaws in
reverse order, unless it is cancelled first with SIGTERM. It writes nothing until it has thawed.

Run as `python -m hvbackup.guest.watchdog --deadline SECONDS --state-dir DIR TARGETS_JSON`; the deadline
is on CLOCK_BOOTTIME (shared by all processes, not moved by time sync stepping the wall clock).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from hvbackup.guest import freeze as fz


def boottime() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


class Watchdog:
    """Handle on a running watchdog process, from the agent's side."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc

    @property
    def pid(self) -> int:
        return self.proc.pid

    @classmethod
    def start(cls, targets: list[fz.Target], seconds: float, state_dir: Path) -> Watchdog:
        """Start a watchdog that thaws `targets` `seconds` from now."""
        deadline = boottime() + seconds
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        argv = [
            sys.executable,
            "-m",
            "hvbackup.guest.watchdog",
            "--deadline",
            repr(deadline),
            "--state-dir",
            str(state_dir),
            json.dumps([t.to_json() for t in targets]),
        ]
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
            close_fds=True,
        )
        return cls(proc)

    def confirm(self, frozen: list[fz.Target]) -> None:
        """Tell the watchdog which targets were really frozen by us."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps([t.to_json() for t in frozen]).encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass

    def fired(self) -> bool:
        """True if the watchdog thawed (it exits 2 after a thaw)."""
        return self.proc.poll() == 2

    def cancel(self) -> bool:
        """Stop the watchdog; returns True if it had already fired."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait()
        if self.proc.stdin:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        return rc == 2


def cancel_pid(pid: int | None) -> None:
    """Stop a watchdog started by another process (the CLI `thaw`, the agent restart)."""
    if not pid:
        return
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            if b"hvbackup.guest.watchdog" not in fh.read():
                return
        os.kill(pid, signal.SIGTERM)
    except (OSError, ProcessLookupError):
        return


def _wait(deadline: float, targets: list[fz.Target]) -> list[fz.Target] | None:
    """Sleep until the deadline, reading confirmed targets; None if cancelled."""
    stdin_open = True
    while True:
        left = deadline - boottime()
        if left <= 0:
            return targets
        if not stdin_open:
            time.sleep(min(left, 0.5))
            continue
        ready, _, _ = select.select([0], [], [], min(left, 0.5))
        if ready:
            line = os.read(0, 65536)
            if not line:
                stdin_open = False
            elif line.strip():
                targets = [fz.Target.from_json(t) for t in json.loads(line)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hvbackup-guest-watchdog")
    parser.add_argument("--deadline", type=float, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("targets")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    targets = [fz.Target.from_json(t) for t in json.loads(args.targets)]
    targets = _wait(args.deadline, targets) or []
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # never stop half-way through a thaw
    result = fz.thaw(list(reversed(targets)))
    _note(args.state_dir, result)
    return 2


def _note(state_dir: Path, result: fz.ThawResult) -> None:
    message = f"hvbackup-guest watchdog: freeze bound reached, thawed {len(result.thawed)} filesystem(s)"
    try:
        with open("/dev/kmsg", "w") as kmsg:
            kmsg.write(message + "\n")
    except OSError:
        pass
    try:
        (state_dir / "watchdog.json").write_text(
            json.dumps(
                {
                    "fired_at": time.time(),
                    "thawed": result.thawed,
                    "already_thawed": result.already_thawed,
                    "errors": result.errors,
                }
            )
        )
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main())
