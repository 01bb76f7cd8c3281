"""`hvbackup image backup|restore`: disk images and block devices, without Hyper-V."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from hvbackup.cli.common import (
    JsonOpt,
    KeyFileOpt,
    PasswordFileOpt,
    RepoOpt,
    SourceOpt,
    emit,
    handle_errors,
    human_bytes,
    open_repository,
    progress,
    stdout,
)

image_app = typer.Typer(
    help="Back up and restore disk images (VHDX, AVHDX chains, VHD, raw files, block devices).\n\n"
    "Example: hvbackup image backup -r /srv/repo vm.vhdx && hvbackup image restore -r /srv/repo latest --to out.vhdx",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(image_app, name="image")


@image_app.command("backup")
@handle_errors
def backup_cmd(
    image: Annotated[Path, typer.Argument(help="VHDX/AVHDX/VHD file, raw image, or block device.")],
    repo: RepoOpt,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    changed_ranges: Annotated[
        Optional[Path],
        typer.Option(help="JSON list of [offset, length] byte ranges changed since the last snapshot of this source."),
    ] = None,
    source: Annotated[
        Optional[str],
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

    with open_repository(repo, password_file, key_file) as repository:
        with progress("backup", None, as_json) as bar:
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


@image_app.command("restore")
@handle_errors
def restore_cmd(
    snapshot: Annotated[str, typer.Argument(help="Snapshot ID, unique prefix, 'latest' or 'SOURCE:latest'.")],
    to: Annotated[Path, typer.Option("--to", help="Target file (.vhdx → VHDX, else raw) or block device.")],
    repo: RepoOpt,
    source: SourceOpt = None,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    disk: Annotated[Optional[str], typer.Option(help="Disk name or number, for snapshots with several disks.")] = None,
    fmt: Annotated[Optional[str], typer.Option("--format", help="vhdx or raw (default: from the extension).")] = None,
    block_size_mib: Annotated[
        Optional[int], typer.Option("--block-size-mib", help="VHDX block size in MiB (default: the original's, else 1).")
    ] = None,
    verify: Annotated[bool, typer.Option(help="Re-read what was written and compare it with the snapshot.")] = False,
    allow_damaged: Annotated[
        bool, typer.Option(help="Zero-fill damaged or missing chunks instead of failing; lists what was lost.")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing file, or write onto a block device.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Restore a disk of a snapshot to a dynamic VHDX, a sparse raw file, or a block device.

    Example: hvbackup image restore -r /srv/repo latest --to restored.vhdx --verify
    """
    from hvbackup.engine.disk_restore import restore_disk
    from hvbackup.errors import PartialFailure

    with open_repository(repo, password_file, key_file) as repository:
        snap = repository.load_snapshot(snapshot, source)
        with progress("restore", None, as_json) as bar:
            result = restore_disk(
                repository,
                snap,
                to,
                disk_name=disk,
                fmt=fmt,
                block_size=block_size_mib * 1024 * 1024 if block_size_mib else None,
                verify=verify,
                allow_damaged=allow_damaged,
                overwrite=overwrite,
                progress=bar,
            )
    data = {"snapshot": snap.info.id, **result.to_json()}
    emit(data, as_json, _render_restore)
    if result.damaged:
        raise typer.Exit(PartialFailure.exit_code)


def _render_restore(data: dict) -> None:
    stdout.print(
        f"restored {human_bytes(data['size'])} to {data['path']} ({data['format']}) in {data['duration_s']:.2f} s"
        + (", verified" if data["verified"] else "")
    )
    for d in data["damaged"]:
        stdout.print(f"[red]lost[/] {human_bytes(d['length'])} at offset {d['offset']}: {d['error']}")
