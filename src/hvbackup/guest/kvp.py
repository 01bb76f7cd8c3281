"""The KVP pool files that the stock hv_kvp_daemon serves to the host (docs/GUEST.md §15).

/var/lib/hyperv/.kvp_pool_<N> is an array of records: a 512-byte key and a 2048-byte value, each
NUL padded, nothing else in the file. Pool 0 holds what the host added for the guest (AddKvpItems),
pool 1 what the guest publishes for the host (GuestExchangeItems). The daemon takes a whole-file
fcntl write lock on the descriptor it opened at start, for reading as for writing, and re-reads
the file before every request; so a writer takes the same kind of lock on the same file and
rewrites it in place (a rename would leave the daemon locking the old file).
"""

from __future__ import annotations

import fcntl
import os
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hvbackup import kvpreport
from hvbackup.errors import HvBackupError

DEFAULT_KVP_DIR = Path("/var/lib/hyperv")
POOL_EXTERNAL = 0  # host -> guest: items the host added (Msvm_VirtualSystemManagementService.AddKvpItems)
POOL_GUEST = 1  # guest -> host: Msvm_KvpExchangeComponent.GuestExchangeItems
POOL_AUTO = 2  # intrinsic items: the daemon answers them itself
POOL_AUTO_EXTERNAL = 3  # host -> guest: what the host says about itself
KEY_SIZE = 512  # HV_KVP_EXCHANGE_MAX_KEY_SIZE
VALUE_SIZE = 2048  # HV_KVP_EXCHANGE_MAX_VALUE_SIZE
RECORD = struct.Struct(f"{KEY_SIZE}s{VALUE_SIZE}s")


class PoolError(HvBackupError):
    """A KVP pool file cannot be read or written, or an item does not fit a record."""


def pool_path(kvp_dir: Path, pool: int) -> Path:
    return kvp_dir / f".kvp_pool_{pool}"


def decode_records(data: bytes) -> list[tuple[str, str]]:
    """(key, value) of each whole record; a trailing partial record is ignored, as the daemon's fread does."""
    records = []
    for offset in range(0, len(data) - RECORD.size + 1, RECORD.size):
        key, value = RECORD.unpack_from(data, offset)
        records.append((_text(key), _text(value)))
    return records


def encode_records(records: Iterable[tuple[str, str]]) -> bytes:
    return b"".join(RECORD.pack(*_fields(key, value)) for key, value in records)


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", errors="replace")


def _fields(key: str, value: str) -> tuple[bytes, bytes]:
    k, v = key.encode("utf-8"), value.encode("utf-8")
    if not k or len(k) >= KEY_SIZE or b"\0" in k:
        raise PoolError(f"KVP key {key[:40]!r}: 1 to {KEY_SIZE - 1} bytes without NUL")
    if len(v) >= VALUE_SIZE or b"\0" in v:
        raise PoolError(f"KVP value of {key!r}: at most {VALUE_SIZE - 1} bytes without NUL")
    return k, v


@contextmanager
def _locked(path: Path, writing: bool) -> Iterator[int]:
    flags = (os.O_RDWR | os.O_CREAT) if writing else os.O_RDONLY
    try:
        fd = os.open(path, flags | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise PoolError(f"cannot open {path}: {exc.strerror}") from None
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX if writing else fcntl.LOCK_SH)  # fcntl F_SETLKW, whole file
        yield fd
    finally:
        os.close(fd)  # closing drops the lock


def _read_all(fd: int) -> bytes:
    chunks = []
    os.lseek(fd, 0, os.SEEK_SET)
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def read_pool(kvp_dir: Path, pool: int) -> dict[str, str]:
    """The items of one pool (an absent file is an empty pool); a later duplicate key wins."""
    path = pool_path(kvp_dir, pool)
    if not path.exists():
        return {}
    with _locked(path, writing=False) as fd:
        return dict(decode_records(_read_all(fd)))


def update_pool(kvp_dir: Path, pool: int, items: Mapping[str, str], delete: Iterable[str] = ()) -> None:
    """Set `items` and remove `delete` in one locked rewrite; existing records keep their place."""
    gone = set(delete)
    _rewrite(kvp_dir, pool, items, lambda current: [k for k in current if k in gone])


def _rewrite(
    kvp_dir: Path, pool: int, items: Mapping[str, str], doomed: Callable[[dict[str, str]], Iterable[str]]
) -> None:
    for key, value in items.items():  # refuse before touching the file
        _fields(key, value)
    try:
        kvp_dir.mkdir(parents=True, exist_ok=True, mode=0o755)
    except OSError as exc:
        raise PoolError(f"cannot create {kvp_dir}: {exc.strerror}") from None
    with _locked(pool_path(kvp_dir, pool), writing=True) as fd:
        current = dict(decode_records(_read_all(fd)))
        for key in list(doomed(current)):
            current.pop(key, None)
        current.update(items)
        data = encode_records(current.items())
        os.lseek(fd, 0, os.SEEK_SET)
        _write_all(fd, data)
        os.ftruncate(fd, len(data))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def host_item(kvp_dir: Path, name: str) -> str | None:
    """An item the host added for this guest (pool 0), or None."""
    return read_pool(kvp_dir, POOL_EXTERNAL).get(name)


def publish(kvp_dir: Path, kind: str, report: dict[str, Any], token: str | None = None) -> None:
    """Publish a report for the host as KVP items of pool 1 (kvpreport), dropping parts left from a larger one."""
    items = kvpreport.split(kind, report, token)
    parts = len(items) - 1
    _rewrite(kvp_dir, POOL_GUEST, items, lambda current: kvpreport.stale_keys(kind, current, parts))


def published(kvp_dir: Path, kind: str) -> kvpreport.Published | None:
    """What this guest has published of `kind` (TornReport if it is not intact)."""
    return kvpreport.reassemble(kind, read_pool(kvp_dir, POOL_GUEST))
