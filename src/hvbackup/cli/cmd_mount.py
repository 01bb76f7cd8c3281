"""`hvbackup mount SNAPSHOT DIR`: each disk of a snapshot as a read-only raw image, through FUSE."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

from hvbackup.cli.common import (
    JsonOpt,
    KeyFileOpt,
    PasswordFileOpt,
    RepoOpt,
    SourceOpt,
    emit,
    handle_errors,
    open_repository,
    read_password,
)
from hvbackup.errors import HvBackupError

MOUNT_WAIT_S = 30.0


class MountFailed(HvBackupError):
    """The FUSE mount did not come up."""


def register(app: typer.Typer) -> None:
    app.command("mount")(mount_cmd)


@handle_errors
def mount_cmd(
    snapshot: Annotated[str, typer.Argument(help="Snapshot ID, unique prefix, 'latest' or 'SOURCE:latest'.")],
    mountpoint: Annotated[Path, typer.Argument(help="Empty folder to mount on.")],
    repo: RepoOpt,
    source: SourceOpt = None,
    password_file: PasswordFileOpt = None,
    key_file: KeyFileOpt = None,
    foreground: Annotated[bool, typer.Option(help="Serve in this process until unmounted.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Mount a snapshot read-only: one raw image file per disk, named after the disk (disk0.raw
    for an image backup, e.g. scsi0-0.raw for a VM; `hvbackup snapshots` shows the disk names).
    Unmount with `fusermount -u DIR`.

    Example: hvbackup mount -r /srv/repo web-01:latest /mnt/snap && losetup -r -f -P --show /mnt/snap/scsi0-0.raw
    """
    from hvbackup.engine.files.mount import check_fuse, check_mountpoint, image_names, serve

    check_mountpoint(mountpoint)
    check_fuse()
    password = None if key_file else _read_password(repo, password_file)
    with _open(repo, password, key_file) as repository:
        snap = repository.load_snapshot(snapshot, source)
        files = sorted(image_names(snap))
        if foreground:
            serve(repository, snap, mountpoint)
            return
    _serve_in_background(snap.info.id, mountpoint, repo, password, key_file)
    emit(
        {"snapshot": snap.info.id, "mountpoint": str(mountpoint.resolve()), "files": files},
        as_json,
        lambda d: print(
            f"mounted snapshot {d['snapshot'][:8]} on {d['mountpoint']}: {', '.join(d['files'])}\n"
            f"unmount with: fusermount -u {d['mountpoint']}"
        ),
    )


def _read_password(repo: Path, password_file: Path | None) -> str:
    """The passphrase, read once: the background server gets it too (a prompt cannot be repeated there)."""
    from hvbackup.repo import Repository

    Repository.read_config(repo)  # a missing repository is reported before asking for a passphrase
    return read_password(password_file)


def _open(repo: Path, password: str | None, key_file: Path | None):
    from hvbackup.repo import Repository

    return open_repository(repo, None, key_file) if key_file else Repository.open(repo, password)


def _serve_in_background(
    snapshot_id: str, mountpoint: Path, repo: Path, password: str | None, key_file: Path | None
) -> None:
    """Start `hvbackup mount --foreground` detached, and return once the mount is there.

    The server's stderr goes to an unlinked temporary file: read here if it fails to start,
    and never a pipe that would break once this process exits.
    """
    env = {k: v for k, v in os.environ.items() if k != "HVBACKUP_PASSWORD"}
    cmd = [
        sys.executable, "-c", "from hvbackup.cli.main import main; main()",
        "mount", snapshot_id, str(mountpoint), "--repo", str(repo), "--foreground",
    ]  # fmt: skip
    if key_file is not None:
        cmd += ["--key-file", str(key_file.resolve())]
    else:
        env["HVBACKUP_PASSWORD"] = password or ""
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors, start_new_session=True
        )
        deadline = time.monotonic() + MOUNT_WAIT_S
        while time.monotonic() < deadline:
            if os.path.ismount(mountpoint):
                return
            if proc.poll() is not None:
                errors.seek(0)
                lines = errors.read().decode(errors="replace").strip().splitlines()
                reason = lines[-1].removeprefix("error: ") if lines else f"exit code {proc.returncode}"
                raise MountFailed(f"mount failed: {reason}")
            time.sleep(0.1)
        proc.terminate()
    raise MountFailed(f"mount of {mountpoint} did not appear within {MOUNT_WAIT_S:.0f} s")
