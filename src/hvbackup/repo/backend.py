"""Where repository objects live: the Backend interface and the local directory backend.

An object name is a relative path with `/` separators ("chunks/ab/cd/abcd…"). A put is atomic:
a reader sees either no object or the whole object, never a part of it, even after a crash.
The local backend gets that by writing a temporary file in the target directory, fsyncing it,
renaming it over the final name and fsyncing the directory. Temporary files start with
`.tmp-`; listings never show them.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from hvbackup import directio
from hvbackup.atomic import fsync_dir, publishing
from hvbackup.errors import HvBackupError
from hvbackup.repo import layout
from hvbackup.repo.errors import KEPT_CHUNKS_NOTE, ObjectNotFound, RepositoryFull, RepositoryReadOnly

TEMP_PREFIX = ".tmp-"
# A temporary file this old belongs to a writer that died: no live write takes a day.
STALE_TEMPORARY_AGE = 24 * 3600.0


@dataclass(frozen=True)
class ObjectStat:
    name: str
    size: int
    mtime: float


class Backend(Protocol):
    def put(self, name: str, data: bytes | memoryview) -> None:
        """Store an object atomically, replacing any object of the same name."""

    def get(self, name: str) -> bytes:
        """The object's bytes; ObjectNotFound if there is none."""

    def get_view(self, name: str) -> memoryview:
        """Like get, but the bytes may sit in a buffer this thread reuses at its next get_view."""

    def exists(self, name: str) -> bool: ...

    def delete(self, name: str) -> None:
        """Remove an object; no error if it is already gone."""

    def list(self, prefix: str) -> Iterator[str]:
        """Names of all objects under the folder `prefix`, at any depth, in no particular order."""

    def stat(self, name: str) -> ObjectStat:
        """Size and modification time; ObjectNotFound if there is none."""

    def remove_temporary(self, older_than: float) -> int:
        """Delete temporary files left by crashed writers, older than `older_than` (epoch s)."""

    def location(self, name: str) -> str:
        """Where the object is, for messages: a path or a URL."""


class LocalBackend:
    """Objects as files under a root directory; crash-safe puts."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._direct = hasattr(os, "O_DIRECT")

    @staticmethod
    def _open_new(path: Path, flags: int) -> int:
        return os.open(path, flags, 0o600)

    def location(self, name: str) -> str:
        return str(self._path(name))

    def _path(self, name: str) -> Path:
        if name.startswith("/") or ".." in name.split("/"):
            raise ValueError(f"bad object name {name!r}")
        return self.root / name

    def put(self, name: str, data: bytes | memoryview) -> None:
        with self._writing(name):
            self._put(name, data)

    def _put(self, name: str, data: bytes | memoryview) -> None:
        final = self._path(name)
        tmp = final.parent / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
        direct = self._direct and len(data) >= DIRECT_MIN
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | (os.O_DIRECT if direct else 0)
        try:
            fd = self._open_new(tmp, flags)
        except FileNotFoundError:
            self._make_dirs(final.parent)
            fd = self._open_new(tmp, flags)
        except OSError as exc:
            if not direct or exc.errno != errno.EINVAL:
                raise
            self._direct = direct = False  # this filesystem (e.g. tmpfs) has no O_DIRECT
            fd = self._open_new(tmp, flags & ~os.O_DIRECT)
        with publishing(fd, tmp, final):
            if direct:
                _write_direct(fd, data)
            else:
                directio.write_full(fd, memoryview(data))

    @contextmanager
    def _writing(self, name: str) -> Iterator[None]:
        """A full or read-only repository is an HvBackupError that says so and names the repository."""
        try:
            yield
        except OSError as exc:
            error = _write_error(self.root, name, exc)
            if error is None:
                raise
            raise error from None

    def make_folders(self, names: tuple[str, ...]) -> None:
        for name in names:
            with self._writing(name):
                self._make_dirs(self._path(name))

    def _make_dirs(self, directory: Path) -> None:
        """Create missing directories, each made durable in its parent."""
        missing = []
        while not directory.exists():
            missing.append(directory)
            directory = directory.parent
        for d in reversed(missing):
            try:
                d.mkdir()
            except FileExistsError:
                continue
            fsync_dir(d.parent)

    def get(self, name: str) -> bytes:
        try:
            with open(self._path(name), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise ObjectNotFound(name) from None

    def get_view(self, name: str) -> memoryview:
        """Large objects are read with O_DIRECT into this thread's scratch buffer."""
        fd = None
        if self._direct:
            try:
                fd = directio.open_direct(self._path(name), os.O_RDONLY)
            except FileNotFoundError:
                raise ObjectNotFound(name) from None
            self._direct = fd is not None
        if fd is None:
            return memoryview(self.get(name))
        try:
            size = os.fstat(fd).st_size
            if size < DIRECT_MIN:
                return memoryview(self.get(name))
            view = directio.scratch("object-read", directio.round_up(size))
            got = directio.pread_full(fd, view, 0)
        finally:
            os.close(fd)
        return view[:got]

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def delete(self, name: str) -> None:
        path = self._path(name)
        with self._writing(name):
            try:
                path.unlink()
            except FileNotFoundError:
                return
            fsync_dir(path.parent)

    def stat(self, name: str) -> ObjectStat:
        try:
            st = self._path(name).stat()
        except FileNotFoundError:
            raise ObjectNotFound(name) from None
        return ObjectStat(name, st.st_size, st.st_mtime)

    def list(self, prefix: str) -> Iterator[str]:
        base = self._path(prefix.rstrip("/"))
        yield from self._walk(base, prefix.rstrip("/"))

    def _walk(self, directory: Path, name: str) -> Iterator[str]:
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            return
        for entry in entries:
            if entry.name.startswith(TEMP_PREFIX):
                continue
            child = f"{name}/{entry.name}" if name else entry.name
            if entry.is_dir(follow_symlinks=False):
                yield from self._walk(Path(entry.path), child)
            else:
                yield child

    def remove_temporary(self, older_than: float) -> int:
        removed = 0
        for dirpath, _dirs, files in os.walk(self.root):
            for fname in files:
                if not fname.startswith(TEMP_PREFIX):
                    continue
                path = Path(dirpath) / fname
                try:
                    if path.stat().st_mtime < older_than:
                        path.unlink()
                        removed += 1
                except FileNotFoundError:
                    continue
        return removed


DIRECT_MIN = directio.MIN_DIRECT
"""Objects this large (chunks) bypass the page cache (hvbackup.directio says why)."""


def _write_direct(fd: int, data: bytes | memoryview) -> None:
    """O_DIRECT needs a block-aligned buffer and length: copy into a page-aligned per-thread buffer,
    write whole blocks, then cut the file back to the object's length."""
    size = len(data)
    padded = directio.round_up(size)
    buffer = directio.scratch("object-write", padded)
    buffer[:size] = data
    buffer[size:] = bytes(padded - size)
    directio.write_full(fd, buffer)
    os.ftruncate(fd, size)


_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}
_FULL = {errno.ENOSPC, errno.EDQUOT}


def _write_error(root: Path, name: str, exc: OSError) -> HvBackupError | None:
    reason = f"{(exc.strerror or str(exc)).lower()} writing {layout.kind(name)}"
    if exc.errno in _READ_ONLY:
        return RepositoryReadOnly(
            f"the repository at {root} is read-only ({reason}): this command writes to it; "
            "snapshots, check, restore and mount work on a read-only repository"
        )
    if exc.errno in _FULL:
        return RepositoryFull(f"the repository at {root} is full ({reason}): {KEPT_CHUNKS_NOTE}")
    return None
