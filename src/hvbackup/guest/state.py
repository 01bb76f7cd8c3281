"""The record of a freeze in progress, kept on /run (tmpfs) so writing it never touches a frozen disk.

state.json is written atomically before the first FIFREEZE and removed after the last FITHAW;
last.json holds the report of the most recent freeze, written after the thaw.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hvbackup.atomic import atomic_write
from hvbackup.guest import thawrequest
from hvbackup.guest.freeze import Target

DEFAULT_STATE_DIR = Path(thawrequest.DEFAULT_STATE_DIR)


@dataclass
class FreezeState:
    backup_id: str
    by: str  # "freeze" (the CLI) or "vssd"
    pid: int  # the process holding the freeze (it thaws on request)
    started: float  # wall clock
    deadline: float  # wall clock: the watchdog thaws then
    targets: list[dict[str, Any]] = field(default_factory=list)
    watchdog_pid: int | None = None

    def target_list(self) -> list[Target]:
        return [Target.from_json(t) for t in self.targets]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class StateDir:
    def __init__(self, path: Path = DEFAULT_STATE_DIR) -> None:
        self.path = path

    @property
    def state_file(self) -> Path:
        return self.path / "state.json"

    @property
    def control_socket(self) -> Path:
        return self.path / thawrequest.CONTROL_SOCKET

    @property
    def report_file(self) -> Path:
        return self.path / "last.json"

    def _write(self, target: Path, data: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(target, json.dumps(data, indent=1, default=str))

    def save(self, state: FreezeState) -> None:
        self._write(self.state_file, state.to_json())

    def load(self) -> FreezeState | None:
        try:
            return FreezeState(**json.loads(self.state_file.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError):
            return None

    def clear(self) -> None:
        self.state_file.unlink(missing_ok=True)

    def save_report(self, report: dict[str, Any]) -> None:
        self._write(self.report_file, report)

    def load_report(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.report_file.read_text())
        except (FileNotFoundError, ValueError):
            return None


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def now() -> float:
    return time.time()
