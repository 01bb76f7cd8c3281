"""MariaDB / MySQL: FLUSH TABLES WITH READ LOCK in a session held open across the freeze,
UNLOCK TABLES after the thaw. The lock belongs to the session, so it also ends if the agent dies
(docs/GUEST.md §7).

While the lock holds no new writes arrive, so InnoDB is then asked to flush every dirty page
(innodb_max_dirty_pages_pct = 0) and we wait, within the timeout, until its checkpoint has caught
up with the log (the InnoDB LSN check of qemu's mysql-flush.sh sample): a copy taken now starts
without InnoDB crash recovery.
"""

from __future__ import annotations

import re
import time

from hvbackup.guest.config import MariadbConfig
from hvbackup.guest.quiescers.base import ClientSession, Quiescer

# After a checkpoint with nothing else logged, the log ends with the checkpoint's own FILE_CHECKPOINT
# record (16 bytes on MariaDB 10.11), so "caught up" means LSN - checkpoint is at most that much.
CHECKPOINT_RECORD_MAX = 64
_LSN_LINES = {"lsn": "Log sequence number", "flushed": "Pages flushed up to", "checkpoint": "Last checkpoint at"}


class MariadbQuiescer(Quiescer):
    def __init__(self, config: MariadbConfig) -> None:
        super().__init__(name="mariadb")
        self.config = config
        self.session: ClientSession | None = None
        self._old_dirty_pct = "90"

    def _argv(self) -> list[str]:
        c = self.config
        return [
            *c.command,
            "--batch",
            "--skip-column-names",
            "--unbuffered",
            f"--socket={c.socket}",
            f"--user={c.user}",
        ]

    def _prepare(self) -> None:
        self.session = ClientSession(self._argv(), "SELECT '{marker}';", self.config.timeout)
        self.session.run(f"SET SESSION lock_wait_timeout = {int(self.config.timeout)};")
        self.session.run("FLUSH TABLES WITH READ LOCK;")
        self.session.run("FLUSH ENGINE LOGS;")
        self.detail["read_lock"] = True
        self._old_dirty_pct = self.session.run("SELECT @@GLOBAL.innodb_max_dirty_pages_pct;").strip()
        self.session.run("SET GLOBAL innodb_max_dirty_pages_pct = 0;")
        self.detail["innodb_checkpointed"] = self._wait_for_checkpoint()

    def _innodb_lsns(self) -> dict[str, int]:
        assert self.session is not None
        status = self.session.run("SHOW ENGINE INNODB STATUS;").replace("\\n", "\n")
        found = {}
        for key, label in _LSN_LINES.items():
            match = re.search(re.escape(label) + r"\s+(\d+)", status)
            found[key] = int(match.group(1)) if match else -1
        return found

    def _wait_for_checkpoint(self) -> bool:
        """True once all pages are flushed and the checkpoint stops moving (nothing left to redo)."""
        deadline = time.monotonic() + self.config.timeout / 2
        previous: dict[str, int] = {}
        while time.monotonic() < deadline:
            now = self._innodb_lsns()
            caught_up = 0 <= now["lsn"] - now["checkpoint"] <= CHECKPOINT_RECORD_MAX
            if now["lsn"] == now["flushed"] and caught_up and now == previous:
                return True
            previous = now
            time.sleep(0.2)
        return False

    def _release(self) -> None:
        if self.session is None:
            return
        self.session.run(f"SET GLOBAL innodb_max_dirty_pages_pct = {float(self._old_dirty_pct)};")
        self.session.run("UNLOCK TABLES;")
        self._abort()

    def _abort(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None
