"""PostgreSQL: CHECKPOINT before the freeze, so the frozen image needs no redo beyond it
(backup.sgml, "File System Level Backup"); in "backup" mode pg_backup_start (PG 15+) or
pg_start_backup(label, true, false) (9.6-14) instead, which takes that checkpoint itself, with the
session held across the freeze, and pg_backup_stop after the thaw, whose backup_label goes into the
report (docs/GUEST.md §7).

`checkpoint_redo_lsn` is read after the checkpoint the copy will recover from, so it is where the
copy's redo starts: in backup mode that is pg_backup_start's checkpoint, equal to `start_lsn`.
"""

from __future__ import annotations

from hvbackup.guest.config import PostgresConfig
from hvbackup.guest.quiescers.base import ClientSession, QuiesceError, Quiescer


class PostgresQuiescer(Quiescer):
    def __init__(self, config: PostgresConfig) -> None:
        super().__init__(name="postgresql")
        self.config = config
        self.session: ClientSession | None = None
        self.version = 0

    def _argv(self) -> list[str]:
        c = self.config
        return [
            *c.command,
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            c.host,
            "-p",
            str(c.port),
            "-d",
            c.dbname,
        ]

    def _prepare(self) -> None:
        self.session = ClientSession(self._argv(), "\\echo {marker}", self.config.timeout)
        self.version = int(self.session.run("SHOW server_version_num;").strip())
        if self.config.mode == "backup":
            start = (
                "pg_backup_start('hvbackup', true)"
                if self.version >= 150000
                else "pg_start_backup('hvbackup', true, false)"
            )
            self.detail["start_lsn"] = self.session.run(f"SELECT {start};").strip()
        else:
            self.session.run("CHECKPOINT;")
        self.detail["checkpoint_redo_lsn"] = self.session.run("SELECT redo_lsn FROM pg_control_checkpoint();").strip()
        if self.config.mode != "backup":
            self._close()

    def _release(self) -> None:
        if self.config.mode != "backup" or self.session is None:
            return
        stop = "pg_backup_stop(false)" if self.version >= 150000 else "pg_stop_backup(false, false)"
        out = self.session.run(f"SELECT lsn || E'\\n' || labelfile FROM {stop};")
        stop_lsn, _, label = out.strip().partition("\n")
        self.detail["stop_lsn"] = stop_lsn
        self.detail["backup_label"] = label
        self._close()

    def _abort(self) -> None:
        self._close()

    def _close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None


__all__ = ["PostgresQuiescer", "QuiesceError"]
