"""Merging an AVHDX into its parent: what Hyper-V does when a checkpoint is removed.

Every sector the child holds is written into the parent; blocks the child marks as zero become
zero in the parent; blocks the child does not hold are left alone. The parent keeps its
DataWriteGuid until the merge is complete, so an interrupted merge can simply be run again.
"""

from __future__ import annotations

import os
from pathlib import Path

from hvbackup.disk.errors import VhdxError
from hvbackup.disk.image import Run
from hvbackup.disk.opener import open_disk
from hvbackup.disk.source import FileSource
from hvbackup.disk.vhdx import structures as s
from hvbackup.disk.vhdx.reader import VhdxImage
from hvbackup.disk.vhdx.writer import VhdxWriter, open_vhdx_writer

COPY_PIECE = 4 * s.MiB


def merge_differencing(child_path: str | os.PathLike[str], *, remove_child: bool = True, finish: bool = True) -> str:
    """Apply the child AVHDX to its parent; remove the child afterwards unless asked not to. Returns the parent path.

    With `finish=False` only the data moves: the parent keeps its DataWriteGuid, so the child still
    links to it and reads the same, and the child stays; `finish_merge` does the rest. A caller that
    records the chain elsewhere updates its record in between, so a crash at any point leaves a
    chain that opens.
    """
    child_path = os.fspath(child_path)
    with open_disk(child_path) as chain:
        if chain.format != "vhdx" or not chain.is_differencing or chain.parent_path is None:
            raise VhdxError(f"{child_path}: not a differencing VHDX, nothing to merge")
        parent_path = chain.parent_path
    child = VhdxImage(FileSource(child_path))  # its own blocks only: the parent is about to change
    try:
        parent = open_vhdx_writer(parent_path, change_data_write_guid=False)
        try:
            _copy_child_blocks(child, parent)
            parent.flush()
            if finish:
                parent.change_data_write_guid()
        finally:
            parent.close()
    finally:
        child.close()
    if finish and remove_child:
        os.unlink(child_path)
    return parent_path


def finish_merge(child_path: str | os.PathLike[str], parent_path: str | os.PathLike[str]) -> None:
    """The second half of `merge_differencing(finish=False)`: new DataWriteGuid, child removed."""
    parent = open_vhdx_writer(parent_path, change_data_write_guid=False)
    try:
        parent.change_data_write_guid()
    finally:
        parent.close()
    Path(child_path).unlink(missing_ok=True)


def _copy_child_blocks(child: VhdxImage, parent: VhdxWriter) -> None:
    for block, state in list(child.present_blocks()):
        if state in s.ZERO_STATES:
            start = block * child.block_size
            _write_zeros(parent, start, min(child.block_size, child.size - start))
        else:
            _copy(child, parent, child.own_data_runs(block))


def _copy(child: VhdxImage, parent: VhdxWriter, runs: list[Run]) -> None:
    for run in runs:
        for done in range(0, run.length, COPY_PIECE):
            count = min(COPY_PIECE, run.length - done)
            parent.write(run.offset + done, child.source.pread(run.file_offset + done, count))


def _write_zeros(parent: VhdxWriter, offset: int, length: int) -> None:
    zeros = bytes(min(COPY_PIECE, length))
    for done in range(0, length, COPY_PIECE):
        parent.write(offset + done, zeros[: min(COPY_PIECE, length - done)])
