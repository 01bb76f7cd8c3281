"""MariaDB / MySQL: FLUSH TABLES WITH READ LOCK in a session held open across the freeze,
UNLOCK TABLES after the thaw. The lock belongs to the session, so it also ends if the agent dies
(reference guest.md §4.3).
"""

from __future__ import annotations

from hvbackup.guest.config import MariadbConfig
from hvbackup.guest.quiescers.base import ClientSession, Quiescer


class MariadbQuiescer(Quiescer):
    def __init__(self, config: MariadbConfig) -> None:
        super().__init__(name="mariadb")
        self.config = config
        self.session: ClientSession | None = None

    def _argv(self) -> list[str]:
        c = self.config
        return [*c.command, "--batch", "--skip-column-names", "--unbuffered", f"--socket={c.socket}",
                f"--user={c.user}"]

    def _prepare(self) -> None:
        self.session = ClientSession(self._argv(), "SELECT '{marker}';", self.config.timeout)
        self.session.run("SET SESSION lock_wait_timeout = %d;" % int(self.config.timeout))
        self.session.run("FLUSH TABLES WITH READ LOCK;")
        self.session.run("FLUSH ENGINE LOGS;")
        self.detail["read_lock"] = True

    def _release(self) -> None:
        if self.session is None:
            return
        self.session.run("UNLOCK TABLES;")
        self._abort()

    def _abort(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None
