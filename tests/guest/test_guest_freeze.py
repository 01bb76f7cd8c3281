"""`hvbackup-guest freeze | thaw | status` on real loop filesystems."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from guest_helpers import GUEST_CLI, LoopFactory, is_frozen, run, writable_within

from hvbackup.guest.state import pid_alive

pytestmark = [pytest.mark.root, pytest.mark.timeout(240)]


def _freeze(guest_cli, state: Path, *args: object) -> dict:  # type: ignore[no-untyped-def]
    res = guest_cli("freeze", "--json", "--state-dir", state, "--hooks-dir", state.parent / "no-hooks", *args)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def _thaw(guest_cli, state: Path) -> dict:  # type: ignore[no-untyped-def]
    res = guest_cli("thaw", "--json", "--state-dir", state)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def _copy_is_clean(fs_type: str, copy: Path) -> None:
    if fs_type == "ext4":
        header = run("dumpe2fs", "-h", copy).stdout
        features = next(line for line in header.splitlines() if line.startswith("Filesystem features"))
        assert "needs_recovery" not in features
        assert run("e2fsck", "-fn", copy, check=False).returncode == 0
    elif fs_type == "xfs":
        assert _xfs_log_has_only_cover_records(copy)
    else:
        res = run("btrfs", "check", "--readonly", copy, check=False)
        assert res.returncode == 0, res.stderr


def _xfs_log_has_only_cover_records(copy: Path) -> bool:
    """XFS (6.x) leaves a *covered* log on freeze: its active part holds only the dummy superblock
    transactions that cover it, so replaying it changes no metadata. xfs_repair -n still calls such a
    log dirty, so we read the log itself (docs/GUEST.md, "XFS and the covered log")."""
    log = run("xfs_logprint", "-t", copy).stdout
    blocks = re.findall(r"start blkno:(0x[0-9a-f]+)", log)
    others = re.findall(r"^\s*(INO|INODE|EFI|EFD|RUI|RUD|CUI|CUD|BUI|BUD|ICR|DQUOT|QOFF)\b", log, re.M)
    return not others and all(int(b, 16) == 0 for b in blocks)


@pytest.mark.slow
@pytest.mark.parametrize("fs_type", ["ext4", "xfs", "btrfs"])
def test_frozen_copy_under_a_writer_needs_no_recovery(
    fs_type: str, loops: LoopFactory, tmp_path: Path, guest_cli
) -> None:  # type: ignore[no-untyped-def]
    fs = loops.make(fs_type)
    writer = subprocess.Popen(
        [
            "sh",
            "-c",
            f"i=0; while true; do i=$((i+1)); "
            f"dd if=/dev/urandom of={fs.mountpoint}/f$((i % 8)) bs=64k count=4 "
            f"conv=fsync status=none; done",
        ]
    )
    try:
        state = tmp_path / "state"
        summary = _freeze(guest_cli, state, "--mount", fs.mountpoint, "--max-seconds", 60)
        assert summary["frozen"] == [str(fs.mountpoint)]
        copy = tmp_path / "copy.img"
        shutil.copyfile(fs.image, copy)  # the image as a host snapshot would see it
        report = _thaw(guest_cli, state)
        assert report["consistency"] == "filesystem" and not report["watchdog_fired"]
        print(f"{fs_type}: frozen {report['frozen_seconds']} s (copy of {fs.image.stat().st_size >> 20} MiB)")
    finally:
        writer.kill()
        writer.wait()
    assert writable_within(fs.mountpoint, 10)
    _copy_is_clean(fs_type, copy)


@pytest.mark.parametrize("fs_type", ["ext4", "xfs"])
def test_copy_taken_without_freeze_is_caught_needing_recovery(fs_type: str, loops: LoopFactory, tmp_path: Path) -> None:
    """The control for the test above: the same checks reject an image copied while mounted, unfrozen."""
    fs = loops.make(fs_type)
    for i in range(4):
        (fs.mountpoint / f"f{i}").write_bytes(os.urandom(256 << 10))
    run("sync", "-f", fs.mountpoint)
    (fs.mountpoint / "late").write_bytes(os.urandom(64 << 10))
    copy = tmp_path / "copy.img"
    shutil.copyfile(fs.image, copy)
    with pytest.raises(AssertionError):
        _copy_is_clean(fs_type, copy)


def test_bind_mounts_of_sockets_fifos_files_and_dirs_neither_abort_nor_hang(
    loops: LoopFactory, tmp_path: Path, guest_cli
) -> None:  # type: ignore[no-untyped-def]
    fs = loops.make("ext4")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(fs.mountpoint / "app.sock"))
    os.mkfifo(fs.mountpoint / "app.fifo")
    (fs.mountpoint / "file").write_text("x")
    (fs.mountpoint / "dir").mkdir()
    targets = {}
    for name, make in (
        ("sock", lambda p: p.touch()),
        ("fifo", lambda p: p.touch()),
        ("file", lambda p: p.touch()),
        ("dir", lambda p: p.mkdir()),
    ):
        target = tmp_path / f"bind-{name}"
        make(target)
        targets[name] = target
    loops.bind(fs.mountpoint / "app.sock", targets["sock"])
    loops.bind(fs.mountpoint / "app.fifo", targets["fifo"])
    loops.bind(fs.mountpoint / "file", targets["file"])
    loops.bind(fs.mountpoint / "dir", targets["dir"])
    state = tmp_path / "state"
    summary = _freeze(
        guest_cli, state, "--mount", fs.mountpoint, *[a for t in targets.values() for a in ("--mount", t)]
    )
    try:
        assert summary["frozen"] == [str(fs.mountpoint)]
        reasons = {s["mountpoint"]: s["reason"] for s in summary["skipped"]}
        assert "socket" in reasons[str(targets["sock"])]
        assert "FIFO" in reasons[str(targets["fifo"])]
        assert "file" in reasons[str(targets["file"])]
        assert "same filesystem" in reasons[str(targets["dir"])]
        assert is_frozen(fs.mountpoint)
    finally:
        report = _thaw(guest_cli, state)
        sock.close()
    assert report["thaw_errors"] == {}
    assert not is_frozen(fs.mountpoint)


def test_same_filesystem_mounted_twice_is_frozen_once(loops: LoopFactory, tmp_path: Path, guest_cli) -> None:  # type: ignore[no-untyped-def]
    fs = loops.make("btrfs")
    second = tmp_path / "second"
    second.mkdir()
    run("mount", fs.device, second)
    loops.extra_mounts.append(second)
    state = tmp_path / "state"
    summary = _freeze(guest_cli, state, "--mount", fs.mountpoint, "--mount", second)
    report = _thaw(guest_cli, state)
    assert summary["frozen"] == [str(fs.mountpoint)]
    assert [s["mountpoint"] for s in summary["skipped"]] == [str(second)]
    assert report["thaw_errors"] == {} and report["already_thawed"] == []
    assert not is_frozen(second)


def test_filesystem_someone_else_froze_is_reported_and_never_thawed(
    loops: LoopFactory, tmp_path: Path, guest_cli
) -> None:  # type: ignore[no-untyped-def]
    ours, theirs = loops.make("ext4"), loops.make("xfs")
    run("fsfreeze", "-f", theirs.mountpoint)
    state = tmp_path / "state"
    summary = _freeze(guest_cli, state, "--mount", ours.mountpoint, "--mount", theirs.mountpoint)
    assert summary["frozen"] == [str(ours.mountpoint)]
    assert summary["foreign_frozen"] == [str(theirs.mountpoint)]
    report = _thaw(guest_cli, state)
    assert report["consistency"] == "filesystem"
    assert not is_frozen(ours.mountpoint)
    assert is_frozen(theirs.mountpoint)  # still frozen: its owner thaws it
    run("fsfreeze", "-u", theirs.mountpoint)


def test_loop_filesystem_inside_a_loop_filesystem_is_frozen_first(
    loops: LoopFactory, tmp_path: Path, guest_cli
) -> None:  # type: ignore[no-untyped-def]
    outer = loops.make("ext4", size_mb=128)
    inner = loops.make("ext4", name="inner", where=outer.mountpoint, size_mb=32)
    (inner.mountpoint / "dirty").write_bytes(os.urandom(4 << 20))  # unsynced data the inner freeze must flush
    state = tmp_path / "state"
    # named outer first: the agent must still freeze the inner one first, or the inner freeze hangs
    summary = _freeze(guest_cli, state, "--mount", outer.mountpoint, "--mount", inner.mountpoint)
    report = _thaw(guest_cli, state)
    assert summary["frozen"] == [str(inner.mountpoint), str(outer.mountpoint)]
    assert report["thaw_errors"] == {}
    assert writable_within(inner.mountpoint, 10)


def test_status_says_what_is_frozen_by_whom(loops: LoopFactory, tmp_path: Path, guest_cli) -> None:  # type: ignore[no-untyped-def]
    fs = loops.make("ext4")
    state = tmp_path / "state"
    idle = json.loads(guest_cli("status", "--json", "--state-dir", state).stdout)
    assert idle["frozen"] is False
    _freeze(guest_cli, state, "--mount", fs.mountpoint, "--backup-id", "b-42")
    try:
        status = json.loads(guest_cli("status", "--json", "--state-dir", state).stdout)
        assert status["frozen"] and status["by"] == "freeze" and status["backup_id"] == "b-42"
        assert status["mounts"] == [str(fs.mountpoint)] and status["holder_alive"] and status["watchdog_alive"]
        second = guest_cli("freeze", "--state-dir", state, "--mount", fs.mountpoint)
        assert second.returncode == 1 and "already frozen" in second.stderr
    finally:
        _thaw(guest_cli, state)
    assert json.loads(guest_cli("status", "--json", "--state-dir", state).stdout)["frozen"] is False


def test_bad_mount_argument_is_a_one_line_error(tmp_path: Path, guest_cli) -> None:  # type: ignore[no-untyped-def]
    res = guest_cli("freeze", "--state-dir", tmp_path / "state", "--mount", tmp_path)
    assert res.returncode == 1
    assert "not a mount point" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "state" / "state.json").exists()


def test_thaw_with_nothing_frozen_says_so(tmp_path: Path, guest_cli) -> None:  # type: ignore[no-untyped-def]
    res = guest_cli("thaw", "--state-dir", tmp_path / "state")
    assert res.returncode == 0 and "nothing is frozen" in res.stdout


def test_state_directory_on_a_filesystem_to_freeze_is_refused(loops: LoopFactory, guest_cli) -> None:  # type: ignore[no-untyped-def]
    fs = loops.make("ext4")
    res = guest_cli("freeze", "--state-dir", fs.mountpoint / "state", "--mount", fs.mountpoint)
    assert res.returncode == 1 and "state directory" in res.stderr
    assert not is_frozen(fs.mountpoint)


@pytest.mark.parametrize("value", ["1e12", "-5", "nan", "inf", "0"])
def test_freeze_with_an_unbounded_max_seconds_is_refused(value: str, tmp_path: Path, guest_cli) -> None:  # type: ignore[no-untyped-def]
    """Issue 11 item 10: `--max-seconds 1e12` (also -5, nan) was accepted and turned the watchdog's thaw off."""
    state = tmp_path / "state"
    # not a mount point: even a build without the bound fails before freezing anything
    res = guest_cli("freeze", "--state-dir", state, "--mount", tmp_path / "nowhere", "--max-seconds", value)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "--max-seconds must be between 1 and 900 seconds" in res.stderr
    assert not (state / "state.json").exists()


def test_version_is_printed(guest_cli) -> None:  # type: ignore[no-untyped-def]
    from hvbackup import __version__

    res = guest_cli("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"hvbackup-guest {__version__}"


def test_failed_freeze_with_json_prints_an_error_document(tmp_path: Path, guest_cli) -> None:  # type: ignore[no-untyped-def]
    res = guest_cli("freeze", "--json", "--state-dir", tmp_path / "state", "--mount", tmp_path)
    assert res.returncode == 1
    error = json.loads(res.stdout)["error"]
    assert error["code"] == 1 and "not a mount point" in error["message"]


def _frozen_holder(guest_cli, loops: LoopFactory, tmp_path: Path) -> tuple[Path, Path, int]:  # type: ignore[no-untyped-def]
    fs = loops.make("ext4")
    state = tmp_path / "state"
    _freeze(guest_cli, state, "--mount", fs.mountpoint)
    assert is_frozen(fs.mountpoint)
    return fs.mountpoint, state, json.loads((state / "state.json").read_text())["pid"]


def _wait_until_gone(pid: int, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while pid_alive(pid):
        assert time.monotonic() < deadline, f"holder {pid} still running"
        time.sleep(0.02)


def test_holder_thaws_on_a_thaw_message_on_its_control_socket(loops: LoopFactory, tmp_path: Path, guest_cli) -> None:  # type: ignore[no-untyped-def]
    """Issue 11 item 13: a script can thaw without starting a Python process."""
    mountpoint, state, holder = _frozen_holder(guest_cli, loops, tmp_path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(state / "control.sock"))
        sock.sendall(b"thaw\n")
    _wait_until_gone(holder)
    assert not is_frozen(mountpoint)
    report = json.loads((state / "last.json").read_text())
    assert report["consistency"] == "filesystem" and not report["watchdog_fired"]
    assert not (state / "control.sock").exists()


def test_holder_ignores_other_messages_on_its_control_socket(loops: LoopFactory, tmp_path: Path, guest_cli) -> None:  # type: ignore[no-untyped-def]
    mountpoint, state, holder = _frozen_holder(guest_cli, loops, tmp_path)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(state / "control.sock"))
            sock.sendall(b"status\n")
            assert sock.recv(16) == b""  # the holder closed the connection and went on waiting
        assert pid_alive(holder) and is_frozen(mountpoint)
    finally:
        _thaw(guest_cli, state)
    assert not is_frozen(mountpoint)


def test_holder_thaws_on_sigterm(loops: LoopFactory, tmp_path: Path, guest_cli) -> None:  # type: ignore[no-untyped-def]
    mountpoint, state, holder = _frozen_holder(guest_cli, loops, tmp_path)
    os.kill(holder, signal.SIGTERM)
    _wait_until_gone(holder)
    assert not is_frozen(mountpoint)
    assert json.loads((state / "last.json").read_text())["watchdog_fired"] is False


def test_thaw_wakes_the_holder_before_loading_the_cli(loops: LoopFactory, tmp_path: Path) -> None:
    """Issue 11 item 13: `thaw` kept the filesystems frozen while it imported typer, rich and the agent."""
    mountpoint, state, holder = _frozen_holder(_plain_guest_cli, loops, tmp_path)
    probe = (
        "import sys; from hvbackup.cli.guest_main import _early_thaw; "
        f"_early_thaw(['thaw', '--state-dir', {str(state)!r}]); "
        "print(' '.join(m for m in ('typer', 'rich', 'click', 'pathlib', 'socket', 'enum', 'hvbackup.guest.holder') "
        "if m in sys.modules))"
    )
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == ""  # none of the heavy modules was loaded to wake the holder
    _wait_until_gone(holder)
    assert not is_frozen(mountpoint)


def _plain_guest_cli(*args: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([*GUEST_CLI, *map(str, args)], capture_output=True, text=True, timeout=120, env=env)


def test_thaw_prints_the_report_when_the_holder_finished_before_it_looked(
    loops: LoopFactory, tmp_path: Path, guest_cli
) -> None:  # type: ignore[no-untyped-def]
    """The early wake races the full command: the holder may be done before `thaw` reads the state file."""
    from hvbackup.guest.holder import request_thaw
    from hvbackup.guest.state import StateDir
    from hvbackup.guest.thawrequest import wake_holder

    mountpoint, state, holder = _frozen_holder(guest_cli, loops, tmp_path)
    assert wake_holder(state) == holder
    _wait_until_gone(holder)
    report = request_thaw(StateDir(state), woken_pid=holder)
    assert report is not None and report["frozen"] == [str(mountpoint)]
