"""`hvbackup files ls|cat|extract|find|volumes`: single files straight out of a snapshot."""

from __future__ import annotations

import base64
import fnmatch
import json
import os
import stat as st
import sys
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from hvbackup.cli.common import (
    JsonOpt,
    KeyFileOpt,
    PasswordFileOpt,
    RepoOpt,
    SourceOpt,
    add_group,
    emit,
    handle_errors,
    open_repository,
    progress,
    stdout,
)

HELP = (
    "Read files straight out of a snapshot: no restore of the disk, no helper VM.\n\n"
    "Example: hvbackup files cat -r /srv/repo latest /etc/fstab --volume vg0/root"
)

SnapshotArg = Annotated[str, typer.Argument(help="Snapshot ID, unique prefix, 'latest' or 'SOURCE:latest'.")]
DiskOpt = Annotated[str | None, typer.Option("--disk", help="Disk name or number (default: the only disk).")]
VolumeOpt = Annotated[
    str | None,
    typer.Option("--volume", help="Volume: p2 (partition), vg0/root (LVM), disk (whole disk). Default: the only one."),
]


@contextmanager
def _filesystem(
    repo: Path,
    password_file: Path | None,
    key_file: Path | None,
    snapshot: str,
    source: str | None,
    disk: str | None,
    volume: str | None,
):
    from hvbackup.engine.files.opening import open_filesystem

    with (
        open_repository(repo, password_file, key_file) as repository,
        open_filesystem(
            repository, repository.load_snapshot(snapshot, source), disk_name=disk, volume_name=volume
        ) as fs,
    ):
        yield fs


def register(app: typer.Typer) -> None:
    add_group(
        app,
        "files",
        HELP,
        {
            "volumes": volumes_cmd,
            "ls": ls_cmd,
            "cat": cat_cmd,
            "extract": extract_cmd,
            "find": find_cmd,
        },
    )


def _path_bytes(path: str) -> bytes:
    return os.fsencode(path)


def show(name: bytes) -> str:
    """A name for people: UTF-8 as is, other bytes as \\x escapes."""
    return name.decode("utf-8", "backslashreplace")


def name_json(name: bytes) -> dict:
    try:
        return {"name": name.decode("utf-8")}
    except UnicodeDecodeError:
        return {"name": show(name), "name_base64": base64.b64encode(name).decode()}


@handle_errors
def volumes_cmd(
    snapshot: SnapshotArg,
    repo: RepoOpt,
    source: SourceOpt = None,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    disk: DiskOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the partitions, logical volumes and filesystems on a disk of a snapshot.

    Example: hvbackup files volumes -r /srv/repo latest
    """
    from hvbackup.engine.files.opening import open_snapshot_disk

    with (
        open_repository(repo, password_file, key_file) as repository,
        open_snapshot_disk(repository, repository.load_snapshot(snapshot, source), disk) as opened,
    ):
        data = {"disk": opened.disk.name, "volumes": [v.to_json() for v in opened.volumes]}
    emit(data, as_json, _render_volumes)


def _render_volumes(data: dict) -> None:
    for v in data["volumes"]:
        stdout.print(f"{v['name']:<20} {v['kind']:<8} {v['size']:>14}  {v['note']}", highlight=False, markup=False)


def _entry_json(name: bytes, entry) -> dict:
    s = entry.stat()
    data = {
        **name_json(name),
        "type": s.kind,
        "size": s.size,
        "mode": st.S_IMODE(s.mode),
        "uid": s.uid,
        "gid": s.gid,
        "mtime": datetime.fromtimestamp(s.mtime_ns / 1e9, UTC).isoformat(),
    }
    if s.kind == "symlink":
        data["target"] = show(entry.fs.readlink(entry))
    return data


def _ls_line(item: dict) -> str:
    mode = st.filemode(item["mode"] | _TYPE_BITS.get(item["type"], 0))
    when = item["mtime"][:19].replace("T", " ")
    link = f" -> {item['target']}" if "target" in item else ""
    return f"{mode} {item['uid']:>5} {item['gid']:>5} {item['size']:>12} {when} {item['name']}{link}"


_TYPE_BITS = {
    "file": st.S_IFREG,
    "dir": st.S_IFDIR,
    "symlink": st.S_IFLNK,
    "char": st.S_IFCHR,
    "block": st.S_IFBLK,
    "fifo": st.S_IFIFO,
    "socket": st.S_IFSOCK,
}


@handle_errors
def ls_cmd(
    snapshot: SnapshotArg,
    repo: RepoOpt,
    source: SourceOpt = None,
    path: Annotated[str, typer.Argument(help="Absolute path in the filesystem.")] = "/",
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    disk: DiskOpt = None,
    volume: VolumeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List a directory (or show one file) of a snapshot, like `ls -l`.

    Example: hvbackup files ls -r /srv/repo latest /etc --volume vg0/root
    """
    with _filesystem(repo, password_file, key_file, snapshot, source, disk, volume) as fs:
        entry = fs.get(_path_bytes(path))
        if entry.is_dir:
            items = [_entry_json(name, child) for name, child in fs.iterdir(entry)]
            items.sort(key=lambda i: i["name"])
        else:
            items = [_entry_json(entry.name, entry)]
    if as_json:  # compact: the indenting encoder is pure Python, seconds for a 100,000-entry directory
        sys.stdout.write(json.dumps(items, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write("".join(_ls_line(i) + "\n" for i in items))


@handle_errors
def cat_cmd(
    snapshot: SnapshotArg,
    path: Annotated[str, typer.Argument(help="Absolute path of a file in the filesystem.")],
    repo: RepoOpt,
    source: SourceOpt = None,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    disk: DiskOpt = None,
    volume: VolumeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a file of a snapshot to stdout (with --json: base64 in a JSON document).

    Example: hvbackup files cat -r /srv/repo latest /etc/fstab > fstab
    """
    with _filesystem(repo, password_file, key_file, snapshot, source, disk, volume) as fs:
        entry = fs.resolve(fs.get(_path_bytes(path)))
        with fs.open(entry) as src:
            if as_json:
                data = src.read()
                emit({"path": path, "size": len(data), "content_base64": base64.b64encode(data).decode()}, True)
                return
            while block := src.read(4 * 1024 * 1024):
                sys.stdout.buffer.write(block)
    sys.stdout.buffer.flush()


@handle_errors
def extract_cmd(
    snapshot: SnapshotArg,
    path: Annotated[str, typer.Argument(help="File or directory to extract ('/' for everything).")],
    to: Annotated[
        Path,
        typer.Option(
            "--to", help="Folder to extract into (created if missing); nothing is written if a file is in the way."
        ),
    ],
    repo: RepoOpt,
    source: SourceOpt = None,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    disk: DiskOpt = None,
    volume: VolumeOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Replace files that already exist in the folder.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Extract a file or a whole tree, keeping modes, owners (as root), times, symlinks, hard links and holes.

    Example: hvbackup files extract -r /srv/repo latest /etc --to ./restored --volume vg0/root
    """
    from hvbackup.engine.files.extract import extract

    with (
        _filesystem(repo, password_file, key_file, snapshot, source, disk, volume) as fs,
        progress("extract", None, as_json) as bar,
    ):
        result = extract(fs, _path_bytes(path), to, overwrite=overwrite, on_bytes=bar.advance)
    emit(result.to_json(), as_json, _render_extract)


def _render_extract(data: dict) -> None:
    stdout.print(
        f"extracted {data['files']} files, {data['dirs']} directories, {data['symlinks']} symlinks, "
        f"{data['hardlinks']} hard links ({data['bytes']} bytes) to {data['target']} in {data['seconds']:.2f} s",
        highlight=False,
        markup=False,
    )
    for line in data["skipped"]:
        stdout.print(f"skipped {line}", highlight=False, markup=False)


@handle_errors
def find_cmd(
    snapshot: SnapshotArg,
    pattern: Annotated[str, typer.Argument(help="Shell pattern matched against full paths, e.g. '*/nginx/*.conf'.")],
    repo: RepoOpt,
    source: SourceOpt = None,
    under: Annotated[str, typer.Option("--under", help="Search below this directory only.")] = "/",
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    disk: DiskOpt = None,
    volume: VolumeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Find files whose full path matches a shell pattern ('*' also matches '/').

    Example: hvbackup files find -r /srv/repo latest '*.conf' --under /etc
    """

    wanted = _path_bytes(pattern)
    with _filesystem(repo, password_file, key_file, snapshot, source, disk, volume) as fs:
        found = [
            {**name_json(e.path), "type": e.stat().kind, "size": e.stat().size}
            for e in fs.walk(fs.get(_path_bytes(under)))
            if fnmatch.fnmatchcase(e.path, wanted)
        ]
    for item in found:
        item["path"] = item.pop("name")
        if "name_base64" in item:
            item["path_base64"] = item.pop("name_base64")

    def render(data: list[dict]) -> None:
        sys.stdout.write("".join(i["path"] + "\n" for i in data))

    emit(found, as_json, render)
