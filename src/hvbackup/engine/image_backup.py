"""`hvbackup image backup`: one disk image file or block device into one snapshot."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hvbackup.disk import DiskImage, open_named_disk
from hvbackup.engine.disk_backup import DiskBackup, DiskBackupResult
from hvbackup.engine.manifest import DiskEntry, ImageManifest
from hvbackup.engine.ranges import Range, load_changed_ranges
from hvbackup.errors import HvBackupError
from hvbackup.progress import Progress
from hvbackup.repo import Repository, SnapshotInfo
from hvbackup.repo.errors import with_kept_chunks_note
from hvbackup.vocabulary import Consistency

DISK_NAME = "disk0"


class ImageBackupFailed(HvBackupError):
    """An image backup stopped after it began storing chunks; the exit code is the cause's."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class ImageBackupResult:
    snapshot: SnapshotInfo
    disk: DiskBackupResult
    parent: str | None
    format: str

    def to_json(self) -> dict:
        return {
            "snapshot": self.snapshot.id,
            "parent": self.parent,
            "source": self.snapshot.source,
            "format": self.format,
            "mode": self.disk.mode,
            "reason": self.disk.reason,
            "sampled_chunks": self.disk.sampled_chunks,
            **self.disk.stats.to_json(),
        }


def disk_description(disk: DiskImage) -> dict:
    """What a restore needs to rebuild a disk of the same shape."""
    return {
        "format": disk.format,
        "size": disk.size,
        "logical_sector_size": disk.logical_sector_size,
        "physical_sector_size": disk.physical_sector_size,
        "block_size": disk.block_size,
        "is_fixed": disk.is_fixed,
        "is_differencing": disk.is_differencing,
    }


def disk_entry(name: str, path: str, disk: DiskImage, result: DiskBackupResult) -> DiskEntry:
    return DiskEntry(
        name=name,
        path=path,
        **disk_description(disk),
        chunk_size=result.index.chunk_size,
        mode=result.mode,
        reason=result.reason,
        stats=result.stats.to_json(),
    )


def backup_image(
    repo: Repository,
    path: Path,
    *,
    source: str | None = None,
    changed_ranges_file: Path | None = None,
    sample_fraction: float = 0.005,
    workers: int | None = None,
    progress: Progress | None = None,
) -> ImageBackupResult:
    """Back up the image at `path`; incremental from the latest snapshot of the same source when
    changed ranges are given, otherwise a full read deduplicated against the repository."""
    source = source or str(path.resolve())
    started = datetime.now(UTC)
    t0 = time.monotonic()
    with repo.backup_lease(f"image backup of {source}"), open_named_disk(path) as disk:
        changed: list[Range] | None = None
        if changed_ranges_file is not None:
            changed = load_changed_ranges(changed_ranges_file, disk.size)
        parent = repo.latest_snapshot(source)
        previous = parent.index(DISK_NAME) if parent is not None else None
        backup = DiskBackup(repo, disk, previous=previous, changed=changed, workers=workers)
        with _note_kept_chunks():
            result = backup.run(sample_fraction=sample_fraction, progress=progress)
            manifest = ImageManifest(
                source=source,
                parent=parent.info.id if parent is not None else None,
                consistency=Consistency.crash,
                consistency_note="an image file read as it was; hvbackup did not quiesce its writer",
                started=started.isoformat(),
                duration_s=round(time.monotonic() - t0, 3),
                disks=(disk_entry(DISK_NAME, str(path), disk, result),),
            )
            info = repo.commit_snapshot(manifest.to_json(), {DISK_NAME: result.index})
    return ImageBackupResult(snapshot=info, disk=result, parent=manifest.parent, format=disk.format)


@contextmanager
def _note_kept_chunks() -> Iterator[None]:
    """A failure once chunks may have been stored says what becomes of them."""
    try:
        yield
    except HvBackupError as exc:
        raise ImageBackupFailed(with_kept_chunks_note(str(exc)), exc.exit_code) from exc
    except OSError as exc:
        reason = exc.strerror or str(exc)
        where = f": {exc.filename}" if exc.filename else ""
        raise ImageBackupFailed(with_kept_chunks_note(f"{reason}{where}"), 1) from exc
