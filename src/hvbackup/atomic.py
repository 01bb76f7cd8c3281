"""Replacing a file so that a reader, even after a crash, finds the old file or the new one whole.

The new content goes to a temporary file in the same folder, is fsynced, renamed over the target,
and the folder is fsynced so the rename itself survives a power cut.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hvbackup import directio

_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC


def atomic_write(path: str | os.PathLike[str], data: bytes | str, *, mode: int = 0o666) -> None:
    """Replace `path` with `data` (a str is written as UTF-8); `mode` is masked by the umask."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with replacing(path, mode=mode) as fd:
        directio.write_full(fd, memoryview(payload))


@contextmanager
def replacing(path: str | os.PathLike[str], *, mode: int = 0o666) -> Iterator[int]:
    """A descriptor of a new temporary file that replaces `path` when the block ends without error."""
    target = Path(path)
    temporary = temporary_beside(target)
    fd = os.open(temporary, _NEW_FILE, mode)
    with publishing(fd, temporary, target):
        yield fd


@contextmanager
def publishing(fd: int, temporary: Path, path: Path) -> Iterator[None]:
    """Once the block has filled `fd` (the new file at `temporary`), make it the file at `path`.

    The descriptor is closed either way; on any failure the temporary file is removed and `path`
    is left as it was.
    """
    try:
        yield
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        temporary.unlink(missing_ok=True)
        raise
    os.close(fd)
    try:
        rename_into_place(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def rename_into_place(temporary: Path, path: Path) -> None:
    """Rename a finished and fsynced file over `path`, durably (for writers that hold their
    temporary file longer than one block, like a restore's target)."""
    os.replace(temporary, path)
    fsync_dir(path.parent)


def temporary_beside(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Make the entries of `folder` (a rename, a new file) durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as exc:  # some filesystems refuse fsync on directories
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)
