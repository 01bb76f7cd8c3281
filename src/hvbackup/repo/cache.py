"""The local chunk cache: which chunk ids the repository holds, kept in SQLite between runs.

It is only a cache. It records the repository generation it was built for; prune bumps the
generation before deleting anything, so a cache of another generation is rebuilt by listing
the repository's chunks. Losing the file costs one listing, nothing else.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger("hvbackup.repo")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (id BLOB PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS damaged (id BLOB PRIMARY KEY) WITHOUT ROWID;
"""


def default_cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hvbackup"


class ChunkCache:
    """SQLite file with the chunk ids and the generation they belong to; thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=60, check_same_thread=False, isolation_level=None)
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            log.warning("chunk cache %s unusable (%s); working without it", path, exc)
            self._db = None

    def load(self, generation: int) -> set[bytes] | None:
        """The cached ids if the cache is complete and of this generation, else None."""
        if self._db is None:
            return None
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
            if row is None or int(row[0]) != generation:
                return None
            return {r[0] for r in self._db.execute("SELECT id FROM chunks")}

    def replace(self, ids: Iterable[bytes], generation: int) -> None:
        if self._db is None:
            return
        with self._lock, self._transaction():
            self._db.execute("DELETE FROM meta WHERE key = 'generation'")
            self._db.execute("DELETE FROM chunks")
            self._db.executemany("INSERT OR IGNORE INTO chunks VALUES (?)", ((i,) for i in ids))
            self._db.execute("INSERT INTO meta VALUES ('generation', ?)", (str(generation),))

    def damaged(self) -> set[bytes]:
        """Ids `check` found missing or damaged: the next backup must store them again."""
        if self._db is None:
            return set()
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT id FROM damaged")}

    def mark_damaged(self, ids: Iterable[bytes]) -> None:
        ids = list(ids)
        self._change("DELETE FROM chunks WHERE id = ?", ids)
        self._change("INSERT OR IGNORE INTO damaged VALUES (?)", ids)

    def unmark_damaged(self, ids: Iterable[bytes]) -> None:
        self._change("DELETE FROM damaged WHERE id = ?", ids)

    def add(self, ids: Iterable[bytes]) -> None:
        self._change("INSERT OR IGNORE INTO chunks VALUES (?)", ids)

    def _change(self, sql: str, ids: Iterable[bytes]) -> None:
        if self._db is None:
            return
        with self._lock, self._transaction():
            self._db.executemany(sql, ((i,) for i in ids))

    def _transaction(self) -> _Transaction:
        assert self._db is not None
        return _Transaction(self._db)

    def close(self) -> None:
        if self._db is not None:
            with self._lock:
                self._db.close()
                self._db = None


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
