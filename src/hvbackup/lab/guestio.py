"""Writes the guest makes: bytes of a file inside the guest filesystem, overwritten in place on the
virtual disk through the top of the drive's chain, each range recorded in change tracking first.

Callers hold the VM's I/O lock. The workload keeps its writers open between batches (`Writers`);
anyone else who writes bumps the record's generation so the workload reopens them.
"""

from __future__ import annotations

from pathlib import Path

from hvbackup.disk import VhdxWriter, open_vhdx_writer
from hvbackup.errors import UsageError
from hvbackup.lab.folder import VmFolder
from hvbackup.lab.record import VmRecord, WritableFile


class GuestWriteError(UsageError):
    """A guest write the lab cannot make (file not writable in place, write past its end)."""


class Writers:
    """Open writers on the top file of each drive, valid while the top and the generation stay the same."""

    def __init__(self) -> None:
        self._open: dict[str, tuple[Path, int, VhdxWriter]] = {}

    def get(self, record: VmRecord, drive: str) -> VhdxWriter:
        top = record.top(drive)
        cached = self._open.get(drive)
        if cached is not None and cached[0] == top and cached[1] == record.generation:
            return cached[2]
        if cached is not None:
            cached[2].close()
        writer = open_vhdx_writer(top)
        self._open[drive] = (top, record.generation, writer)
        return writer

    def flush(self) -> None:
        for _, _, writer in self._open.values():
            writer.flush()

    def close(self) -> None:
        for _, _, writer in self._open.values():
            writer.close()
        self._open.clear()


def check_write(record: VmRecord, guest_path: str, length: int, offset: int) -> WritableFile:
    target = record.writable_file(guest_path)
    if target is None:
        known = ", ".join(w.path for w in record.writable) or "none"
        raise GuestWriteError(
            f"{record.name}: {guest_path} is not a file the lab can write in place (writable: {known})"
        )
    if offset < 0 or offset + length > target.size:
        raise GuestWriteError(
            f"{record.name}: writing {length} bytes at {offset} would grow {guest_path} "
            f"({target.size} bytes); the lab overwrites files in place only"
        )
    return target


def write_file(
    folder: VmFolder, record: VmRecord, target: WritableFile, offset: int, data: bytes, writers: Writers
) -> None:
    """Overwrite `data` at `offset` of a guest file (already checked) on the top of its drive's chain."""
    pieces = target.disk_pieces(offset, len(data))
    folder.change_log(target.drive, record).record([(disk_off, length) for disk_off, _, length in pieces])
    writer = writers.get(record, target.drive)
    for disk_off, data_off, length in pieces:
        writer.write(disk_off, data[data_off : data_off + length])
