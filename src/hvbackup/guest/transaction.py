"""One freeze from start to report: hooks, quiescers, watchdog, FIFREEZE ... FITHAW, hooks, report.

Between the first FIFREEZE and the last FITHAW nothing here touches a disk: the log is a list in
memory, the state file was written before (on /run), and the report is written after.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hvbackup.errors import HvBackupError, UsageError
from hvbackup.guest import freeze as fz
from hvbackup.guest.config import GuestConfig
from hvbackup.guest.hooks import HookRunner
from hvbackup.guest.mounts import FreezePlan, Topology, plan_freeze, read_mounts
from hvbackup.guest.quiescers import Quiescer, enabled_quiescers
from hvbackup.guest.state import FreezeState, StateDir, pid_alive
from hvbackup.guest.watchdog import Watchdog, cancel_pid

APPLICATION, FILESYSTEM, FAILED = "application", "filesystem", "failed"


class AlreadyFrozen(HvBackupError):
    """Another freeze by hvbackup-guest is still in progress."""


@dataclass
class MemoryLog:
    """Log lines kept in memory while frozen; they go into the report after the thaw."""

    lines: list[str] = field(default_factory=list)

    def __call__(self, message: str) -> None:
        self.lines.append(f"{time.strftime('%H:%M:%S')} {message}")


@dataclass
class FreezeOptions:
    config: GuestConfig
    state_dir: StateDir
    only: list[Path] | None = None
    backup_id: str | None = None
    by: str = "freeze"


class FreezeTransaction:
    def __init__(self, options: FreezeOptions) -> None:
        self.opts = options
        self.config = options.config
        self.backup_id = options.backup_id or uuid.uuid4().hex[:12]
        self.log = MemoryLog()
        self.hooks = HookRunner(self.config.hooks_dir, self.config.hook_timeout, self.backup_id)
        self.quiescers: list[Quiescer] = enabled_quiescers(self.config)
        self.plan = FreezePlan()
        self.result = fz.FreezeResult()
        self.thaw_result: fz.ThawResult | None = None
        self.watchdog: Watchdog | None = None
        self.watchdog_fired = False
        self.app_ok = True
        self.error: str | None = None
        self.frozen_at: float | None = None
        self.frozen_seconds = 0.0
        self.started = time.time()

    # -- before the freeze -------------------------------------------------------------------
    def begin(self) -> bool:
        """Prepare the applications and freeze; False (with nothing left frozen) on failure."""
        self._settle_previous_freeze()
        self.plan = plan_freeze(read_mounts(), self.opts.only, Topology())
        targets = [fz.target_of(m.mountpoint) for m in self.plan.covers]
        self._refuse_state_dir_on(targets)
        if not self._prepare_applications():
            return False
        self.watchdog = Watchdog.start(targets, self.config.max_seconds, self.opts.state_dir.path)
        self._save_state(targets, time.time() + self.config.max_seconds)
        return self._freeze(targets)

    def _settle_previous_freeze(self) -> None:
        """Refuse while another freeze is held; thaw what a dead holder's state file lists."""
        current = self.opts.state_dir.load()
        if current is None:
            return
        if pid_alive(current.pid):
            raise AlreadyFrozen(
                f"already frozen by {current.by} (pid {current.pid}) since "
                f"{time.strftime('%H:%M:%S', time.localtime(current.started))}"
            )
        recover(self.opts.state_dir)

    def _refuse_state_dir_on(self, targets: list[fz.Target]) -> None:
        self.opts.state_dir.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        state_dev = os.stat(self.opts.state_dir.path).st_dev
        if any(t.dev == state_dev for t in targets):
            raise UsageError(
                f"the state directory {self.opts.state_dir.path} is on a filesystem to be frozen; "
                "use a tmpfs such as /run/hvbackup"
            )

    def _prepare_applications(self) -> bool:
        hooks_ok = self.hooks.freeze()
        apps_ok = all([q.prepare() for q in self.quiescers])
        self.app_ok = hooks_ok and apps_ok
        if self.app_ok or self.config.on_hook_failure == "continue":
            if not self.app_ok:
                self.log("a pre-freeze hook or quiescer failed: continuing filesystem-consistent")
            return True
        self.error = 'a pre-freeze hook or quiescer failed and hooks.on_failure = "fail"'
        self._release_applications(phase="freezeFail")
        return False

    def _save_state(self, targets: list[fz.Target], deadline: float) -> None:
        assert self.watchdog is not None
        self.opts.state_dir.save(
            FreezeState(
                self.backup_id,
                self.opts.by,
                os.getpid(),
                time.time(),
                deadline,
                [t.to_json() for t in targets],
                self.watchdog.pid,
            )
        )

    def _freeze(self, targets: list[fz.Target]) -> bool:
        assert self.watchdog is not None
        self.frozen_at = time.monotonic()
        try:
            self.result = fz.freeze(targets, fail_on_foreign=self.config.foreign_frozen == "fail")
        except fz.FreezeFailed as exc:
            self.error = str(exc)
            self.frozen_at = None
            self.watchdog.cancel()
            self.opts.state_dir.clear()
            self._release_applications(phase="freezeFail")
            return False
        self.watchdog.confirm(self.result.frozen)
        self.log(f"froze {len(self.result.frozen)} filesystem(s)")
        return True

    # -- after the freeze --------------------------------------------------------------------
    def thaw(self) -> bool:
        """FITHAW what we froze (reverse order) and stop the watchdog; True if every thaw worked."""
        if self.frozen_at is None:
            return False
        self.thaw_result = fz.thaw(list(reversed(self.result.frozen)))
        self.frozen_seconds = time.monotonic() - self.frozen_at
        assert self.watchdog is not None
        self.watchdog_fired = self.watchdog.cancel()
        self.frozen_at = None
        return self.thaw_result.ok and not self.watchdog_fired

    def finish(self) -> dict[str, Any]:
        """After the thaw: release applications, run thaw hooks, write and return the report."""
        self.opts.state_dir.clear()
        if self.error is None:
            self._release_applications(phase="thaw")
        report = self.report()
        self.opts.state_dir.save_report(report)
        return report

    def _release_applications(self, phase: str) -> None:
        for q in reversed(self.quiescers):
            q.release()
        self.hooks.thaw(phase)

    # -- the verdict -------------------------------------------------------------------------
    def consistency(self) -> str:
        if self.error or self.watchdog_fired or (self.thaw_result is not None and not self.thaw_result.ok):
            return FAILED
        participants = bool(self.hooks.hooks or self.quiescers)
        if participants and self.app_ok and not self.result.foreign:
            return APPLICATION
        return FILESYSTEM

    def report(self) -> dict[str, Any]:
        thawed = self.thaw_result or fz.ThawResult()
        return {
            "backup_id": self.backup_id,
            "by": self.opts.by,
            "consistency": self.consistency(),
            "frozen_seconds": round(self.frozen_seconds, 4),
            "started": self.started,
            "error": self.error,
            "watchdog_fired": self.watchdog_fired,
            "frozen": [t.path for t in self.result.frozen],
            "foreign_frozen": [t.path for t in self.result.foreign],
            "not_freezable": [t.path for t in self.result.unsupported],
            "skipped": [s.to_json() for s in self.plan.skips],
            "thaw_errors": thawed.errors,
            "already_thawed": thawed.already_thawed,
            "hooks": [h.to_json() for h in self.hooks.results],
            "quiescers": [q.to_json() for q in self.quiescers],
            "log": self.log.lines,
        }

    def frozen_summary(self) -> dict[str, Any]:
        """What `freeze` prints while the filesystems stay frozen."""
        return {
            "backup_id": self.backup_id,
            "frozen": [t.path for t in self.result.frozen],
            "foreign_frozen": [t.path for t in self.result.foreign],
            "skipped": [s.to_json() for s in self.plan.skips],
            "application_prepared": self.app_ok and bool(self.hooks.hooks or self.quiescers),
            "max_seconds": self.config.max_seconds,
            "error": self.error,
            "hooks": [h.to_json() for h in self.hooks.results],
            "quiescers": [q.to_json() for q in self.quiescers],
        }


def recover(state_dir: StateDir) -> dict[str, Any] | None:
    """Thaw what a dead agent's state file says it froze (agent restart, `thaw` after a crash)."""
    state = state_dir.load()
    if state is None:
        return None
    cancel_pid(state.watchdog_pid)
    result = fz.thaw(list(reversed(state.target_list())))
    state_dir.clear()
    report = {
        "backup_id": state.backup_id,
        "by": state.by,
        "consistency": FAILED,
        "recovered": True,
        "thawed": result.thawed,
        "already_thawed": result.already_thawed,
        "thaw_errors": result.errors,
        "frozen_seconds": round(time.time() - state.started, 3),
    }
    state_dir.save_report(report)
    return report
