"""Restore one disk of a snapshot to a file or block device: the options and the run behind both
`hvbackup restore --disk N --to FILE` and `hvbackup image restore --to FILE`.

Both commands take the same options (declared here once), print the same output and exit the
same way: 0, 3 when --allow-damaged zero-filled something, else the error's code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from hvbackup.cli.common import RepoAccess, emit, human_bytes, progress, stdout

DiskOpt = Annotated[
    str | None,
    typer.Option(help="The disk to restore (name or number); needed when the snapshot has several."),
]
ToOpt = Annotated[Path | None, typer.Option("--to", help="Target file (.vhdx → VHDX, else raw) or block device.")]
FormatOpt = Annotated[str | None, typer.Option("--format", help="vhdx or raw (default: from the extension).")]
BlockSizeOpt = Annotated[
    int | None, typer.Option("--block-size-mib", help="VHDX block size in MiB (default: the original's, else 1).")
]
VerifyOpt = Annotated[bool, typer.Option(help="Re-read what was written and compare it with the snapshot.")]
AllowDamagedOpt = Annotated[
    bool,
    typer.Option(help="Zero-fill chunks that are missing or damaged and list them, instead of restoring nothing."),
]
OverwriteOpt = Annotated[bool, typer.Option(help="Replace an existing --to file, or write onto a block device.")]


@dataclass(frozen=True)
class DiskTarget:
    """Where and how one disk is written: the options of the one-disk restore."""

    to: Path
    disk: str | None = None
    fmt: str | None = None
    block_size_mib: int | None = None
    verify: bool = False
    allow_damaged: bool = False
    overwrite: bool = False

    @property
    def block_size(self) -> int | None:
        return self.block_size_mib * 1024 * 1024 if self.block_size_mib else None


def restore_one_disk(access: RepoAccess, snapshot: str, source: str | None, target: DiskTarget, as_json: bool) -> None:
    """Restore, print the result, and exit 3 when anything was zero-filled."""
    from hvbackup.engine.disk_restore import restore_disk
    from hvbackup.errors import PartialFailure

    with access.open() as repository:
        snap = repository.load_snapshot(snapshot, source)
        with progress("restore", None, as_json) as bar:
            result = restore_disk(
                repository,
                snap,
                target.to,
                disk_name=target.disk,
                fmt=target.fmt,
                block_size=target.block_size,
                verify=target.verify,
                allow_damaged=target.allow_damaged,
                overwrite=target.overwrite,
                progress=bar,
            )
    emit({"snapshot": snap.info.id, "short_id": snap.info.short_id, **result.to_json()}, as_json, _render)
    if result.damaged:
        raise typer.Exit(PartialFailure.exit_code)


def _render(data: dict) -> None:
    stdout.print(
        f"restored {human_bytes(data['size'])} of snapshot {data['short_id']} to {data['path']} "
        f"({data['format']}) in {data['duration_s']:.2f} s" + (", verified" if data["verified"] else ""),
        highlight=False,
    )
    print_damaged(data["damaged"])


def print_damaged(damaged: list[dict]) -> None:
    """The ranges --allow-damaged zero-filled, one line each."""
    for d in damaged:
        stdout.print(
            f"[yellow]zero-filled[/] {human_bytes(d['length'])} at offset {d['offset']}: {d['error']}", highlight=False
        )
