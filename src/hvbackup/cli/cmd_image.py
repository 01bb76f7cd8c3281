"""`hvbackup image backup|restore`: disk images and block devices, without Hyper-V."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hvbackup.cli.common import (
    JsonOpt,
    KeyFileOpt,
    PasswordFileOpt,
    RepoAccess,
    RepoOpt,
    SourceOpt,
    add_group,
    emit,
    handle_errors,
    human_bytes,
    open_repository,
    progress,
    stdout,
)
from hvbackup.cli.one_disk_restore import (
    AllowDamagedOpt,
    BlockSizeOpt,
    DiskOpt,
    DiskTarget,
    FormatOpt,
    OverwriteOpt,
    ToOpt,
    VerifyOpt,
    restore_one_disk,
)

HELP = (
    "Back up and restore disk images (VHDX, AVHDX chains, VHD, raw files, block devices).\n\n"
    "Example: hvbackup image backup -r /srv/repo vm.vhdx && hvbackup image restore -r /srv/repo latest --to out.vhdx"
)


def register(app: typer.Typer) -> None:
    add_group(
        app,
        "image",
        HELP,
        {
            "backup": backup_cmd,
            "restore": restore_cmd,
        },
    )


@handle_errors
def backup_cmd(
    image: Annotated[Path, typer.Argument(help="VHDX/AVHDX/VHD file, raw image, or block device.")],
    repo: RepoOpt,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    changed_ranges: Annotated[
        Path | None,
        typer.Option(help="JSON list of [offset, length] byte ranges changed since the last snapshot of this source."),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option("--source", "-s", help="Name that groups snapshots of this image (default: its path)."),
    ] = None,
    sample_percent: Annotated[
        float, typer.Option(help="Percentage of 'unchanged' chunks re-read to check the changed ranges.")
    ] = 0.5,
    as_json: JsonOpt = False,
) -> None:
    """Back up a disk image: only allocated data is read; zero chunks are never stored.

    The format comes from the content; a .vhdx, .avhdx or .vhd file must carry that format's
    signature (anything else, e.g. .raw, .img or a block device, is read as it is).

    Example: hvbackup image backup -r /srv/repo --changed-ranges changes.json disk.vhdx
    """
    from hvbackup.engine.image_backup import backup_image

    with open_repository(repo, password_file, key_file) as repository, progress("backup", None, as_json) as bar:
        result = backup_image(
            repository,
            image,
            source=source,
            changed_ranges_file=changed_ranges,
            sample_fraction=sample_percent / 100,
            progress=bar,
        )
    emit(result.to_json(), as_json, _render_backup)


def _render_backup(data: dict) -> None:
    table = Table(title=f"snapshot {data['snapshot'][:8]}", show_header=False)
    table.add_row("source", data["source"])
    table.add_row("format", data["format"])
    table.add_row("mode", f"{data['mode']} ({data['reason']})")
    table.add_row("disk size", human_bytes(data["size"]))
    table.add_row("read", human_bytes(data["bytes_read"]))
    table.add_row("new", human_bytes(data["bytes_new"]))
    table.add_row("deduplicated", human_bytes(data["bytes_deduplicated"]))
    table.add_row("zero (not stored)", human_bytes(data["bytes_zero"]))
    table.add_row("unchanged (not read)", human_bytes(data["bytes_unchanged"]))
    table.add_row("stored", human_bytes(data["stored_bytes"]))
    table.add_row("duration", f"{data['duration_s']:.2f} s ({human_bytes(data['throughput_bytes_per_s'])}/s)")
    stdout.print(table)


@handle_errors
def restore_cmd(
    snapshot: Annotated[str, typer.Argument(help="Snapshot ID, unique prefix, 'latest' or 'SOURCE:latest'.")],
    to: ToOpt,
    repo: RepoOpt,
    source: SourceOpt = None,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    disk: DiskOpt = None,
    fmt: FormatOpt = None,
    block_size_mib: BlockSizeOpt = None,
    verify: VerifyOpt = False,
    allow_damaged: AllowDamagedOpt = False,
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Restore a disk of a snapshot to a dynamic VHDX, a sparse raw file, or a block device.

    The same as `hvbackup restore --disk N --to FILE`. Exit code 3 when --allow-damaged
    zero-filled damaged or missing data.

    Example: hvbackup image restore -r /srv/repo latest --to restored.vhdx --verify
    """
    if to is None:
        from hvbackup.errors import UsageError

        raise UsageError("give the file or block device to restore to: --to TARGET")
    target = DiskTarget(
        to=to,
        disk=disk,
        fmt=fmt,
        block_size_mib=block_size_mib,
        verify=verify,
        allow_damaged=allow_damaged,
        overwrite=overwrite,
    )
    restore_one_disk(RepoAccess(repo, password_file, key_file), snapshot, source, target, as_json)
