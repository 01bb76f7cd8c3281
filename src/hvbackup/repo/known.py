"""Which chunks the repository holds, as far as this process knows, backed by the local cache.

The set may only err by missing ids, never by holding ids of deleted chunks: it is reloaded
whenever the repository's generation (bumped by prune before it deletes anything) differs
from the one it was built for, and a miss is confirmed with the backend, because a killed
writer may have stored chunks its cache never recorded. Chunks `check` found damaged count as
absent until they are stored again. Thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from hvbackup.repo import layout
from hvbackup.repo.backend import Backend
from hvbackup.repo.cache import ChunkCache
from hvbackup.repo.errors import DamagedObject, ObjectNotFound

_SAVE_EVERY = 256


class KnownChunks:
    def __init__(self, backend: Backend, cache: ChunkCache) -> None:
        self.backend = backend
        self.cache = cache
        self._lock = threading.Lock()
        self._ids: set[bytes] | None = None
        self._generation = -1
        self._unsaved: list[bytes] = []
        self._damaged = cache.damaged()
        try:
            generation = self.generation()
        except DamagedObject:
            return  # readers need no generation; writers (sync, prune) meet the error
        cached = cache.load(generation)
        if cached is not None:
            self._ids, self._generation = cached, generation

    def generation(self) -> int:
        try:
            raw = self.backend.get(layout.GENERATION)
        except ObjectNotFound:
            return 0
        try:
            return int(raw.strip() or b"0")
        except ValueError:
            where = self.backend.location(layout.GENERATION)
            raise DamagedObject(
                f"the generation file {where} is damaged (it holds {raw[:20]!r}, not a number); write a number "
                f"larger than any it held before into it, e.g. `date +%s > {where}` (FORMAT.md §9)"
            ) from None

    def bump_generation(self) -> int:
        new = self.generation() + 1
        self.backend.put(layout.GENERATION, f"{new}\n".encode())
        return new

    def listed(self) -> Iterator[bytes]:
        """Every chunk id in the repository, by listing the backend."""
        for name in self.backend.list(layout.CHUNKS):
            cid = layout.chunk_id_of(name)
            if cid is not None:
                yield cid

    def sync(self, force: bool = False) -> set[bytes]:
        """Reload by listing if forced, never loaded, or of another generation."""
        generation = self.generation()
        with self._lock:
            if force or self._ids is None or self._generation != generation:
                self._unsaved.clear()
                self._ids = set(self.listed())
                self._generation = generation
                self.cache.replace(self._ids, generation)
            return self._ids

    def __contains__(self, cid: bytes) -> bool:
        if cid in self._damaged:
            return False
        ids = self._ids if self._ids is not None else self.sync()
        if cid in ids:
            return True
        if not self.backend.exists(layout.chunk(cid)):
            return False
        self.add(cid)
        return True

    def is_damaged(self, cid: bytes) -> bool:
        return cid in self._damaged

    def add(self, cid: bytes) -> None:
        with self._lock:
            if self._ids is not None:
                self._ids.add(cid)
            if cid in self._damaged:
                self._damaged.discard(cid)
                self.cache.unmark_damaged([cid])
            self._unsaved.append(cid)
            save = len(self._unsaved) >= _SAVE_EVERY
        if save:
            self.save()

    def mark_damaged(self, cids: set[bytes]) -> None:
        with self._lock:
            if self._ids is not None:
                self._ids -= cids
            self._damaged |= cids
        self.cache.mark_damaged(cids)

    def save(self) -> None:
        with self._lock:
            pending, self._unsaved = self._unsaved, []
        if pending:
            self.cache.add(pending)

    def close(self) -> None:
        self.save()
        self.cache.close()
