"""`hvbackup-guest vssd` against a harness playing the kernel's side of /dev/vmbus/hv_vss."""

from __future__ import annotations

import json
import os
import signal
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from guest_helpers import GUEST_CLI, LoopFactory, is_frozen, writable_within
from guest_kernel import FakeKernel, start_vssd

from hvbackup.guest import protocol as p

pytestmark = [pytest.mark.root, pytest.mark.timeout(180)]

OK = bytes(12)
FAIL = struct.pack("<I", p.HV_E_FAIL) + bytes(8)


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[FakeKernel]:
    k = FakeKernel(tmp_path / "vss.sock")
    yield k
    k.shutdown()


def _stop(proc) -> None:  # type: ignore[no-untyped-def]
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_every_operation_gets_the_reply_the_kernel_expects(
    kernel: FakeKernel, loops: LoopFactory, tmp_path: Path
) -> None:
    fs = loops.make("ext4")
    proc = start_vssd(
        GUEST_CLI, kernel.path, tmp_path / "state", tmp_path / "hooks", "--mount", fs.mountpoint, "--json"
    )
    try:
        assert kernel.accept() == p.encode_register()
        for op in (
            p.VSS_OP_CREATE,
            p.VSS_OP_DELETE,
            p.VSS_OP_GET_DM_INFO,
            p.VSS_OP_BU_COMPLETE,
            p.VSS_OP_AUTO_RECOVER,
            42,
            p.VSS_OP_HOT_BACKUP,
        ):
            assert kernel.request(op) == OK, p.op_name(op)
        assert kernel.request(p.VSS_OP_FREEZE) == OK
        assert is_frozen(fs.mountpoint)
        assert kernel.request(p.VSS_OP_THAW) == OK
        report = kernel.report()
        assert not is_frozen(fs.mountpoint)
        assert report["consistency"] == "filesystem"  # no hooks: filesystem-consistent
        assert report["frozen"] == [str(fs.mountpoint)]
        assert report["frozen_seconds"] > 0
    finally:
        kernel.close()
        assert proc.wait(timeout=30) == 0  # the lab closing the socket ends the daemon
        summary = json.loads(proc.stdout.read())  # type: ignore[union-attr]
        assert summary["transactions"] == 1 and summary["reports"][0]["consistency"] == "filesystem"
        _stop(proc)


def test_failed_freeze_answers_hv_e_fail_and_leaves_nothing_frozen(
    kernel: FakeKernel, loops: LoopFactory, tmp_path: Path
) -> None:
    a, b = loops.make("ext4"), loops.make("ext4")
    config = tmp_path / "guest.toml"
    config.write_text('[freeze]\nforeign_frozen = "fail"\n')
    os.system(f"fsfreeze -f {b.mountpoint}")  # someone else's freeze
    proc = start_vssd(
        GUEST_CLI,
        kernel.path,
        tmp_path / "state",
        tmp_path / "hooks",
        "--config",
        config,
        "--mount",
        a.mountpoint,
        "--mount",
        b.mountpoint,
    )
    try:
        kernel.accept()
        assert kernel.request(p.VSS_OP_FREEZE) == FAIL
        report = kernel.report()
        assert report["consistency"] == "failed" and "already frozen" in report["error"]
        assert not is_frozen(a.mountpoint)  # rolled back
        assert is_frozen(b.mountpoint)  # the other freeze is not ours to thaw
    finally:
        os.system(f"fsfreeze -u {b.mountpoint}")
        kernel.close()
        _stop(proc)


def test_host_that_never_sends_thaw_is_thawed_by_the_watchdog(
    kernel: FakeKernel, loops: LoopFactory, tmp_path: Path
) -> None:
    fs = loops.make("xfs")
    proc = start_vssd(
        GUEST_CLI, kernel.path, tmp_path / "state", tmp_path / "hooks", "--mount", fs.mountpoint, max_seconds=2
    )
    try:
        kernel.accept()
        assert kernel.request(p.VSS_OP_FREEZE) == OK
        assert writable_within(fs.mountpoint, 15)  # blocks until the watchdog thaws at ~2 s
        assert kernel.request(p.VSS_OP_THAW) == FAIL  # too late: the snapshot would not be consistent
        report = kernel.report()
        assert report["watchdog_fired"] and report["consistency"] == "failed"
    finally:
        kernel.close()
        _stop(proc)


def test_agent_killed_while_frozen_is_thawed_by_watchdog_and_restart(
    kernel: FakeKernel, loops: LoopFactory, tmp_path: Path
) -> None:
    fs = loops.make("ext4")
    state = tmp_path / "state"
    proc = start_vssd(GUEST_CLI, kernel.path, state, tmp_path / "hooks", "--mount", fs.mountpoint, max_seconds=3)
    kernel.accept()
    assert kernel.request(p.VSS_OP_FREEZE) == OK
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kernel.close()
    assert writable_within(fs.mountpoint, 20)
    # the state file still says "frozen by vssd": a restart thaws (harmlessly) and clears it
    proc = start_vssd(GUEST_CLI, kernel.path, state, tmp_path / "hooks", "--mount", fs.mountpoint)
    try:
        kernel.accept()
        assert not (state / "state.json").exists()
    finally:
        kernel.close()
        _stop(proc)


def test_restart_thaws_when_agent_and_watchdog_both_died(
    kernel: FakeKernel, loops: LoopFactory, tmp_path: Path
) -> None:
    fs = loops.make("ext4")
    state = tmp_path / "state"
    proc = start_vssd(GUEST_CLI, kernel.path, state, tmp_path / "hooks", "--mount", fs.mountpoint, max_seconds=600)
    kernel.accept()
    assert kernel.request(p.VSS_OP_FREEZE) == OK
    watchdog_pid = json.loads((state / "state.json").read_text())["watchdog_pid"]
    os.kill(watchdog_pid, signal.SIGKILL)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kernel.close()
    time.sleep(0.2)
    assert is_frozen(fs.mountpoint)  # nothing else would ever thaw it
    proc = start_vssd(GUEST_CLI, kernel.path, state, tmp_path / "hooks", "--mount", fs.mountpoint)
    try:
        kernel.accept()  # the daemon registers only after thawing what its state file lists
        assert not is_frozen(fs.mountpoint)
        assert json.loads((state / "last.json").read_text())["recovered"] is True
    finally:
        kernel.close()
        _stop(proc)


def test_wrong_length_request_drops_the_channel(kernel: FakeKernel, tmp_path: Path) -> None:
    proc = start_vssd(GUEST_CLI, kernel.path, tmp_path / "state", tmp_path / "hooks", "--no-freeze")
    try:
        kernel.accept()
        kernel.send_raw(bytes(11))
        assert proc.wait(timeout=30) == 0
    finally:
        kernel.close()
        _stop(proc)


def test_hooks_run_around_the_freeze_and_make_it_application_consistent(
    kernel: FakeKernel, loops: LoopFactory, tmp_path: Path
) -> None:
    fs = loops.make("btrfs")
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    calls = tmp_path / "calls"  # outside the frozen filesystem: hooks must not write to it while frozen
    hook = hooks / "10-app"
    hook.write_text(f'#!/bin/sh\necho "$1 $HVBACKUP_PHASE" >> {calls}\n')
    hook.chmod(0o755)
    proc = start_vssd(GUEST_CLI, kernel.path, tmp_path / "state", hooks, "--mount", fs.mountpoint)
    try:
        kernel.accept()
        assert kernel.request(p.VSS_OP_HOT_BACKUP) == OK
        assert kernel.request(p.VSS_OP_FREEZE) == OK
        assert calls.read_text() == "freeze freeze\n"  # before FIFREEZE
        assert kernel.request(p.VSS_OP_THAW) == OK
        report = kernel.report()  # sent after the thaw hooks ran
        assert calls.read_text() == "freeze freeze\nthaw thaw\n"
        assert report["consistency"] == "application"
        assert [h["phase"] for h in report["hooks"]] == ["freeze", "thaw"]
    finally:
        kernel.close()
        _stop(proc)


def test_channel_lost_while_frozen_thaws_at_once(kernel: FakeKernel, loops: LoopFactory, tmp_path: Path) -> None:
    """Like the kernel's reset (module unload, hibernation): the daemon thaws without waiting for the bound."""
    fs = loops.make("ext4")
    proc = start_vssd(
        GUEST_CLI, kernel.path, tmp_path / "state", tmp_path / "hooks", "--mount", fs.mountpoint, max_seconds=600
    )
    try:
        kernel.accept()
        assert kernel.request(p.VSS_OP_FREEZE) == OK
        kernel.close()
        assert writable_within(fs.mountpoint, 30)
        assert proc.wait(timeout=30) == 0  # the report is written after the thaw, then the daemon ends
        assert json.loads((tmp_path / "state" / "last.json").read_text())["frozen"] == [str(fs.mountpoint)]
    finally:
        _stop(proc)


def _thread_states(pid: int) -> set[str]:
    states = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        states.add((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
    return states


def test_agent_touches_no_frozen_filesystem_while_frozen(
    kernel: FakeKernel, loops: LoopFactory, tmp_path: Path
) -> None:
    """Config, hooks, TMPDIR and cwd all live on the frozen filesystem: a write there would block the agent."""
    fs = loops.make("xfs")
    hooks = fs.mountpoint / "hooks"
    hooks.mkdir()
    hook = hooks / "10-noop"
    hook.write_text("#!/bin/sh\nexit 0\n")
    hook.chmod(0o755)
    config = fs.mountpoint / "guest.toml"
    config.write_text("[hooks]\ntimeout = 5\n")
    import os as _os
    import subprocess

    env = {**_os.environ, "TMPDIR": str(fs.mountpoint), "HOME": str(fs.mountpoint)}
    argv = [
        *GUEST_CLI,
        "vssd",
        "--socket",
        str(kernel.path),
        "--state-dir",
        str(tmp_path / "state"),
        "--hooks-dir",
        str(hooks),
        "--config",
        str(config),
        "--mount",
        str(fs.mountpoint),
        "--max-seconds",
        "30",
        "--kvp-dir",
        str(tmp_path / "kvp"),
    ]
    proc = subprocess.Popen(argv, cwd=fs.mountpoint, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        kernel.accept()
        assert kernel.request(p.VSS_OP_FREEZE) == OK
        blocked = []
        for _ in range(10):  # a writer on a frozen filesystem stays in D; a page-in is only a blip
            blocked.append("D" in _thread_states(proc.pid))
            time.sleep(0.1)
        assert not all(blocked)
        # and it answers THAW long before the 30 s watchdog bound would free a blocked agent
        assert kernel.request(p.VSS_OP_THAW, timeout=10) == OK
        report = kernel.report()
        assert not report["watchdog_fired"] and report["consistency"] == "application"
    finally:
        kernel.close()
        _stop(proc)


def test_thaw_is_answered_at_once_even_if_a_thaw_hook_hangs(
    kernel: FakeKernel, loops: LoopFactory, tmp_path: Path
) -> None:
    fs = loops.make("ext4")
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    hook = hooks / "10-slow-thaw"
    hook.write_text('#!/bin/sh\n[ "$1" = thaw ] && sleep 300\nexit 0\n')
    hook.chmod(0o755)
    config = tmp_path / "guest.toml"
    config.write_text("[hooks]\ntimeout = 2\n")
    proc = start_vssd(
        GUEST_CLI, kernel.path, tmp_path / "state", hooks, "--config", config, "--mount", fs.mountpoint, max_seconds=60
    )
    try:
        kernel.accept()
        assert kernel.request(p.VSS_OP_FREEZE) == OK
        assert kernel.request(p.VSS_OP_THAW, timeout=5) == OK  # FITHAW first, hooks after the answer
        assert writable_within(fs.mountpoint, 5)
        report = kernel.report(timeout=30)
        assert "timed out" in report["hooks"][-1]["error"]
        assert not report["watchdog_fired"] and report["frozen_seconds"] < 5
    finally:
        kernel.close()
        _stop(proc)


def test_vssd_with_a_mount_that_is_not_a_mount_point_is_refused_at_start(kernel: FakeKernel, tmp_path: Path) -> None:
    """Issue 11 item 10: `vssd --mount /nonexistent` started and failed only when the host's FREEZE came."""
    proc = start_vssd(
        GUEST_CLI, kernel.path, tmp_path / "state", tmp_path / "hooks", "--mount", tmp_path / "nonexistent"
    )
    try:
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1 and "not a mount point" in err and "Traceback" not in err
        kernel.listener.settimeout(0.1)
        with pytest.raises(TimeoutError):
            kernel.listener.accept()  # it never registered
    finally:
        _stop(proc)


@pytest.mark.parametrize("value", ["1e12", "nan", "-5"])
def test_vssd_with_an_unbounded_max_seconds_is_refused_at_start(value: str, kernel: FakeKernel, tmp_path: Path) -> None:
    """Issue 11 item 10: the bound is checked wherever the value enters, the daemon too."""
    proc = start_vssd(GUEST_CLI, kernel.path, tmp_path / "state", tmp_path / "hooks", "--no-freeze", max_seconds=value)  # type: ignore[arg-type]
    try:
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1 and "--max-seconds must be between 1 and 900 seconds" in err
    finally:
        _stop(proc)
