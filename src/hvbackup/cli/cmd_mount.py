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

from hvbackup.cli.common import JsonOpt, PasswordFileOpt, RepoOpt, emit, handle_errors, read_password
from hvbackup.errors import HvBackupError, UsageError

MOUNT_WAIT_S = 30.0


class MountFailed(HvBackupError):
    """The FUSE mount did not come up."""


def register(app: typer.Typer) -> None:
    app.command("mount")(mount_cmd)


@handle_errors
def mount_cmd(
    snapshot: Annotated[str, typer.Argument(help="Snapshot ID, unique prefix, or 'latest'.")],
    mountpoint: Annotated[Path, typer.Argument(help="Empty folder to mount on.")],
    repo: RepoOpt,
    password_file: PasswordFileOpt = None,
    foreground: Annotated[bool, typer.Option(help="Serve in this process until unmounted.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Mount a snapshot read-only: one raw image file per disk (disk0.raw, ...). Unmount with `fusermount -u DIR`.

    Example: hvbackup mount -r /srv/repo latest /mnt/snap && losetup -r -f -P --show /mnt/snap/disk0.raw
    """
    from hvbackup.engine.files.mount import image_names, serve

    if not mountpoint.is_dir():
        raise UsageError(f"{mountpoint} is not a folder")
    if os.path.ismount(mountpoint):
        raise UsageError(f"{mountpoint} is already a mount point")
    password = read_password(password_file)
    with open_repository_with(repo, password) as repository:
        snap = repository.load_snapshot(snapshot)
        files = sorted(image_names(snap))
        if foreground:
            serve(repository, snap, mountpoint)
            return
    _serve_in_background(snap.info.id, mountpoint, repo, password)
    emit(
        {"snapshot": snap.info.id, "mountpoint": str(mountpoint.resolve()), "files": files},
        as_json,
        lambda d: print(
            f"mounted snapshot {d['snapshot'][:12]} on {d['mountpoint']}: {', '.join(d['files'])}\n"
            f"unmount with: fusermount -u {d['mountpoint']}"
        ),
    )


def open_repository_with(repo: Path, password: str):
    from hvbackup.repo import Repository

    return Repository.open(repo, password)


def _serve_in_background(snapshot_id: str, mountpoint: Path, repo: Path, password: str) -> None:
    """Start `hvbackup mount --foreground` detached, and return once the mount is there.

    The server's stderr goes to an unlinked temporary file: read here if it fails to start,
    and never a pipe that would break once this process exits.
    """
    env = {**os.environ, "HVBACKUP_PASSWORD": password}
    cmd = [
        sys.executable, "-c", "from hvbackup.cli.main import main; main()",
        "mount", snapshot_id, str(mountpoint), "--repo", str(repo), "--foreground",
    ]  # fmt: skip
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
                raise MountFailed(f"mount failed: {lines[-1] if lines else f'exit code {proc.returncode}'}")
            time.sleep(0.1)
        proc.terminate()
    raise MountFailed(f"mount of {mountpoint} did not appear within {MOUNT_WAIT_S:.0f} s")
