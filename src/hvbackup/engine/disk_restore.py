"""Restore one disk of a snapshot to a dynamic VHDX, a sparse raw file, or a block device.

Chunks are fetched, decrypted and checked by a pool of threads; the writer takes them in order.
Zero chunks are never fetched: they stay holes in a raw file and unallocated blocks in a VHDX.
A new file is written under a temporary name and renamed into place only when complete, so a
failed restore leaves nothing half-written behind.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from hvbackup import directio
from hvbackup.atomic import rename_into_place
from hvbackup.directio import DirectWriter
from hvbackup.disk import create_vhdx, open_disk
from hvbackup.engine.manifest import DiskEntry, manifest_of
from hvbackup.engine.pipeline import ordered_map
from hvbackup.errors import HvBackupError, UsageError
from hvbackup.progress import NoProgress, Progress
from hvbackup.repo import ZERO_CHUNK_ID, DiskIndex, Repository, Snapshot
from hvbackup.repo.errors import ChunkError

MIB = 1024 * 1024
FORMATS = ("vhdx", "raw")
DEFAULT_VHDX_BLOCK = 1 * MIB  # what Microsoft recommends for Linux guests


class RestoreDamaged(HvBackupError):
    """The snapshot refers to chunks that are missing or damaged."""


class RestoreWriteFailed(HvBackupError):
    """The target could not be written (a full disk, a read-only folder, an I/O error)."""


class VerifyFailed(HvBackupError):
    """What was written does not read back as the snapshot."""


@dataclass
class DamagedRange:
    offset: int
    length: int
    chunk: str
    error: str


@dataclass
class RestoreResult:
    path: str
    format: str
    size: int
    bytes_written: int = 0
    bytes_zero: int = 0
    duration_s: float = 0.0
    verified: bool | None = None
    damaged: list[DamagedRange] = field(default_factory=list)

    def to_json(self) -> dict:
        data = asdict(self)
        data["throughput_bytes_per_s"] = round(self.size / self.duration_s) if self.duration_s else 0
        return data


class _Target(Protocol):
    def write(self, offset: int, data: bytes | memoryview) -> None:
        """Thread-safe for writes that share no sector."""

    def finish(self) -> None: ...
    def abort(self) -> None: ...


def infer_format(target: Path, requested: str | None) -> str:
    if requested is not None:
        if requested not in FORMATS:
            raise UsageError(f"unknown format {requested!r}: use one of {', '.join(FORMATS)}")
        return requested
    if _is_block_device(target):
        return "raw"
    return "vhdx" if target.suffix.lower() in (".vhdx", ".avhdx") else "raw"


def _is_block_device(path: Path) -> bool:
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except OSError:
        return False


def _partial_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.hvbackup-partial")


class _RawFileTarget:
    def __init__(self, target: Path, size: int) -> None:
        self.target = target
        self.tmp = _partial_name(target)
        self.fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self.direct = None
        try:
            os.ftruncate(self.fd, size)
            self.direct = DirectWriter.open(str(self.tmp))
        except BaseException:
            self.abort()
            raise

    def write(self, offset: int, data: bytes | memoryview) -> None:
        if self.direct is not None and self.direct.fits(offset, len(data)):
            self.direct.pwrite(offset, data)
        else:
            os.pwrite(self.fd, data, offset)

    def finish(self) -> None:
        os.fsync(self.fd)
        self._close()
        rename_into_place(self.tmp, self.target)

    def _close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.direct is not None:
            self.direct.close()
            self.direct = None

    def abort(self) -> None:
        self._close()
        self.tmp.unlink(missing_ok=True)


class _BlockDeviceTarget:
    """A block device gets every chunk, zeros included: it may hold old data."""

    def __init__(self, target: Path, size: int) -> None:
        self.fd = os.open(target, os.O_WRONLY)
        device_size = os.lseek(self.fd, 0, os.SEEK_END)
        if device_size < size:
            os.close(self.fd)
            raise UsageError(f"{target} holds {device_size} bytes, the disk needs {size}")
        self.direct = DirectWriter.open(str(target))

    def write(self, offset: int, data: bytes | memoryview) -> None:
        if self.direct is not None and self.direct.fits(offset, len(data)):
            self.direct.pwrite(offset, data)
        else:
            os.pwrite(self.fd, data, offset)

    def finish(self) -> None:
        os.fsync(self.fd)
        self.abort()

    def abort(self) -> None:
        os.close(self.fd)
        if self.direct is not None:
            self.direct.close()


class _VhdxTarget:
    def __init__(self, target: Path, disk: DiskEntry, block_size: int | None) -> None:
        self.target = target
        self.tmp = _partial_name(target)
        self.tmp.unlink(missing_ok=True)
        try:
            self.writer = create_vhdx(
                self.tmp,
                disk.size,
                block_size=block_size or _original_vhdx_block(disk),
                logical_sector_size=disk.logical_sector_size or 512,
                physical_sector_size=disk.physical_sector_size or 4096,
            )
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise

    def write(self, offset: int, data: bytes | memoryview) -> None:
        self.writer.write(offset, data)

    def finish(self) -> None:
        self.writer.flush()
        self.writer.close()
        rename_into_place(self.tmp, self.target)

    def abort(self) -> None:
        try:
            self.writer.close()  # flushes: on a full disk this fails again
        except OSError:
            pass
        finally:
            self.tmp.unlink(missing_ok=True)


def _original_vhdx_block(disk: DiskEntry) -> int:
    if disk.format in ("vhdx", "vhd") and disk.block_size:
        return int(disk.block_size)
    return DEFAULT_VHDX_BLOCK


def _open_target(target: Path, fmt: str, disk: DiskEntry, block_size: int | None, overwrite: bool) -> _Target:
    if _is_block_device(target):
        if fmt != "raw":
            raise UsageError(f"{target} is a block device: only --format raw can be written to it")
        if not overwrite:
            raise UsageError(f"{target} is a block device: pass --overwrite to write the disk onto it")
        return _BlockDeviceTarget(target, disk.size)
    if target.exists() and not overwrite:
        raise UsageError(f"{target} exists: choose another path or pass --overwrite")
    if not target.parent.is_dir():
        raise UsageError(f"cannot restore to {target}: folder {target.parent} does not exist")
    if fmt == "vhdx":
        return _VhdxTarget(target, disk, block_size)
    return _RawFileTarget(target, disk.size)


def find_disk(snapshot: Snapshot, name: str | None) -> DiskEntry:
    manifest = manifest_of(snapshot)
    disks = manifest.disks
    if name is None:
        # The captured configuration files (config.vmcx, ...) are entries too, but not virtual disks.
        config = {c.disk for c in getattr(manifest, "config_files", None) or ()}
        virtual = [d for d in disks if d.name not in config]
        if len(virtual) != 1:
            names = ", ".join(d.name for d in virtual)
            raise UsageError(
                f"snapshot {snapshot.info.id[:12]} has {len(virtual)} disks ({names}): choose one with --disk"
            )
        return virtual[0]
    for n, disk in enumerate(disks):
        if name in (disk.name, str(n)):
            return disk
    raise UsageError(f"snapshot {snapshot.info.id[:12]} has no disk {name!r}")


class DiskRestore:
    def __init__(self, repo: Repository, index: DiskIndex, *, workers: int | None = None) -> None:
        self.repo = repo
        self.index = index
        self.workers = workers or 8

    def chunk_len(self, i: int) -> int:
        return min(self.index.chunk_size, self.index.size - i * self.index.chunk_size)

    def data_chunks(self) -> list[int]:
        return [i for i in range(len(self.index)) if self.index[i] != ZERO_CHUNK_ID]

    def _restore_chunk(self, i: int, target: _Target) -> ChunkError | None:
        """Fetch chunk i straight into this thread's aligned buffer and write it; a fetch error is
        returned, not written, for the caller to handle in order."""
        data = directio.scratch("restore-chunk", self.chunk_len(i))
        try:
            self.repo.read_chunk_into(self.index[i], data)
        except ChunkError as exc:
            return exc
        target.write(i * self.index.chunk_size, data)
        return None

    def write_to(
        self, target: _Target, result: RestoreResult, *, allow_damaged: bool, holes_are_zero: bool, progress: Progress
    ) -> None:
        """Write every data chunk, from the worker threads; zero chunks (and zero-filled damaged
        ones) are written only where the target's unwritten space does not already read as zeros."""
        wanted = self.data_chunks()
        zero_chunks = sorted(set(range(len(self.index))) - set(wanted))
        result.bytes_zero = sum(self.chunk_len(i) for i in zero_chunks)
        progress.set_total(sum(self.chunk_len(i) for i in wanted))
        if not holes_are_zero:
            for i in zero_chunks:
                target.write(i * self.index.chunk_size, bytes(self.chunk_len(i)))
        restored = ordered_map(lambda i: self._restore_chunk(i, target), wanted, workers=self.workers)
        for i, error in zip(wanted, restored, strict=False):
            length = self.chunk_len(i)
            if error is not None:
                if not allow_damaged:
                    raise RestoreDamaged(
                        f"{error}; nothing was restored (--allow-damaged zero-fills damaged chunks and lists them)"
                    )
                offset = i * self.index.chunk_size
                result.damaged.append(DamagedRange(offset, length, self.index[i].hex(), str(error)))
                if holes_are_zero:
                    progress.advance(length)
                    continue
                target.write(offset, bytes(length))
            result.bytes_written += length
            progress.advance(length)

    def verify(self, path: Path, damaged: list[DamagedRange]) -> None:
        skip = {d.offset // self.index.chunk_size for d in damaged}
        check = [i for i in range(len(self.index)) if i not in skip]
        zero = bytes(self.index.chunk_size)
        with open_disk(path) as disk:

            def matches(i: int) -> bool:
                data = disk.read(i * self.index.chunk_size, self.chunk_len(i))
                if self.index[i] == ZERO_CHUNK_ID:
                    return data == zero[: len(data)]
                return self.repo.chunk_id(data) == self.index[i]

            for i, ok in zip(check, ordered_map(matches, check, workers=self.workers), strict=False):
                if not ok:
                    raise VerifyFailed(
                        f"{path} does not read back as the snapshot at offset {i * self.index.chunk_size}"
                    )


def restore_disk(
    repo: Repository,
    snapshot: Snapshot,
    target: Path,
    *,
    disk_name: str | None = None,
    fmt: str | None = None,
    block_size: int | None = None,
    verify: bool = False,
    allow_damaged: bool = False,
    overwrite: bool = False,
    workers: int | None = None,
    progress: Progress | None = None,
) -> RestoreResult:
    started = time.monotonic()
    disk = find_disk(snapshot, disk_name)
    index = snapshot.index(disk.name)
    fmt = infer_format(target, fmt)
    restore = DiskRestore(repo, index, workers=workers)
    result = RestoreResult(path=str(target), format=fmt, size=index.size)
    is_device = _is_block_device(target)
    with repo.read_lease(f"restore of {snapshot.info.id[:12]} to {target}"):
        with _write_errors_named(target, is_device):
            out = _open_target(target, fmt, disk, block_size, overwrite)
            try:
                restore.write_to(
                    out,
                    result,
                    allow_damaged=allow_damaged,
                    holes_are_zero=not is_device,
                    progress=progress or NoProgress(),
                )
                out.finish()
            except BaseException:
                out.abort()
                raise
        if verify:
            restore.verify(target, result.damaged)
            result.verified = True
    result.duration_s = time.monotonic() - started
    return result


@contextmanager
def _write_errors_named(target: Path, is_device: bool) -> Iterator[None]:
    """An OSError while writing becomes one line naming the target and what was left of it."""
    try:
        yield
    except OSError as exc:
        left = "the device holds a partial disk" if is_device else "no file was left under that name"
        raise RestoreWriteFailed(f"cannot restore to {target}: {exc.strerror or exc}; {left}") from exc
