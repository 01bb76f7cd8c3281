"""Hooks around the freeze, and the watchdog's bound, through the `freeze`/`thaw` commands."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from guest_helpers import LoopFactory, is_frozen, writable_within

from hvbackup.guest.hooks import HookRunner, discover

pytestmark = pytest.mark.timeout(240)


def _hook(directory: Path, name: str, body: str, mode: int = 0o755) -> Path:
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(mode)
    return path


def test_hooks_run_in_name_order_and_thaw_in_reverse_with_their_environment(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"
    log = tmp_path / "calls"
    for name in ("20-app", "10-db", "30-last"):
        _hook(hooks, name, f'echo "{name} $1 $HVBACKUP_PHASE $HVBACKUP_BACKUP_ID" >> {log}; echo out-{name}')
    _hook(hooks, "40-editor~", "exit 1")
    _hook(hooks, "50-off.sample", "exit 1")
    (hooks / "60-not-executable").write_text("#!/bin/sh\nexit 1\n")
    runner = HookRunner(hooks, timeout=10, backup_id="b-7")
    assert runner.freeze() and runner.thaw()
    assert log.read_text().splitlines() == [
        "10-db freeze freeze b-7",
        "20-app freeze freeze b-7",
        "30-last freeze freeze b-7",
        "30-last thaw thaw b-7",
        "20-app thaw thaw b-7",
        "10-db thaw thaw b-7",
    ]
    assert runner.results[0].stdout == "out-10-db\n"


def test_hook_that_hangs_is_stopped_at_its_timeout(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"
    _hook(hooks, "10-hang", "trap '' TERM; sleep 300")
    runner = HookRunner(hooks, timeout=0.5, backup_id="x")
    assert not runner.freeze()
    assert "timed out" in (runner.results[0].error or "")
    assert runner.ran  # it did start, so it gets its thaw call


@pytest.mark.root
def test_writable_hook_is_refused(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"
    _hook(hooks, "10-open", "exit 0", mode=0o777)
    runner = HookRunner(hooks, timeout=5, backup_id="x")
    assert not runner.freeze()
    assert runner.results[0].error and "writable" in runner.results[0].error
    assert discover(hooks) == [hooks / "10-open"]


@pytest.mark.root
def test_failed_pre_freeze_hook_continues_filesystem_consistent_by_default(
    loops: LoopFactory, tmp_path: Path, guest_cli
) -> None:  # type: ignore[no-untyped-def]
    fs = loops.make("ext4")
    hooks = tmp_path / "hooks"
    _hook(hooks, "10-hang", "sleep 300")
    _hook(hooks, "20-ok", "exit 0")
    state = tmp_path / "state"
    config = tmp_path / "guest.toml"
    config.write_text("[hooks]\ntimeout = 1\n")
    res = guest_cli(
        "freeze", "--json", "--state-dir", state, "--hooks-dir", hooks, "--config", config, "--mount", fs.mountpoint
    )
    assert res.returncode == 0, res.stderr
    assert is_frozen(fs.mountpoint)
    report = json.loads(guest_cli("thaw", "--json", "--state-dir", state).stdout)
    assert report["consistency"] == "filesystem"
    assert [(h["name"], h["phase"], h["ok"]) for h in report["hooks"]] == [
        ("10-hang", "freeze", False),
        ("20-ok", "freeze", True),
        ("20-ok", "thaw", True),
        ("10-hang", "thaw", False),
    ]
    assert not is_frozen(fs.mountpoint)


@pytest.mark.root
def test_failed_pre_freeze_hook_fails_the_freeze_when_configured(loops: LoopFactory, tmp_path: Path, guest_cli) -> None:  # type: ignore[no-untyped-def]
    fs = loops.make("ext4")
    hooks = tmp_path / "hooks"
    calls = tmp_path / "calls"
    _hook(hooks, "10-ok", f"echo $1 >> {calls}")
    _hook(hooks, "20-bad", "echo cannot quiesce >&2; exit 3")
    config = tmp_path / "guest.toml"
    config.write_text('[hooks]\non_failure = "fail"\n')
    res = guest_cli(
        "freeze", "--state-dir", tmp_path / "state", "--hooks-dir", hooks, "--config", config, "--mount", fs.mountpoint
    )
    assert res.returncode == 1 and "hook" in res.stderr
    assert not is_frozen(fs.mountpoint)
    assert calls.read_text().split() == ["freeze", "freezeFail"]  # the hooks that ran are told


@pytest.mark.root
@pytest.mark.slow
def test_never_thawed_freeze_is_thawed_at_the_bound(loops: LoopFactory, tmp_path: Path, guest_cli) -> None:  # type: ignore[no-untyped-def]
    fs = loops.make("xfs")
    state = tmp_path / "state"
    res = guest_cli(
        "freeze", "--state-dir", state, "--hooks-dir", tmp_path / "h", "--mount", fs.mountpoint, "--max-seconds", "2"
    )
    assert res.returncode == 0, res.stderr
    assert writable_within(fs.mountpoint, 20)
    report = json.loads(guest_cli("thaw", "--json", "--state-dir", state).stdout)
    if report is None:  # the holder already saw the bound pass and finished on its own
        report = json.loads(guest_cli("status", "--json", "--state-dir", state).stdout)["last"]
    assert report["watchdog_fired"] and report["consistency"] == "failed"


@pytest.mark.root
@pytest.mark.slow
def test_holder_killed_while_frozen_is_thawed_at_the_bound(loops: LoopFactory, tmp_path: Path, guest_cli) -> None:  # type: ignore[no-untyped-def]
    fs = loops.make("btrfs")
    state = tmp_path / "state"
    res = guest_cli(
        "freeze", "--state-dir", state, "--hooks-dir", tmp_path / "h", "--mount", fs.mountpoint, "--max-seconds", "3"
    )
    assert res.returncode == 0, res.stderr
    holder = json.loads((state / "state.json").read_text())["pid"]
    os.kill(holder, signal.SIGKILL)
    started = time.monotonic()
    assert writable_within(fs.mountpoint, 20)
    assert json.loads((state / "watchdog.json").read_text())["thawed"] == [str(fs.mountpoint)]
    status = json.loads(guest_cli("status", "--json", "--state-dir", state).stdout)
    assert status["stale"]  # holder and watchdog gone: the record is old
    report = json.loads(guest_cli("thaw", "--json", "--state-dir", state).stdout)
    assert report["recovered"] and report["already_thawed"] == [str(fs.mountpoint)]
    assert time.monotonic() - started < 20


@pytest.mark.root
def test_hooks_dir_set_in_guest_toml_runs_its_hooks(loops: LoopFactory, tmp_path: Path, guest_cli) -> None:  # type: ignore[no-untyped-def]
    """Issue 11 item 11: a freeze configured with `[hooks] dir` failed before doing anything."""
    fs = loops.make("ext4")
    hooks = tmp_path / "site-hooks"
    calls = tmp_path / "calls"
    _hook(hooks, "10-app", f"echo $1 >> {calls}")
    config = tmp_path / "guest.toml"
    config.write_text(f'[hooks]\ndir = "{hooks}"\ntimeout = 10\n')
    state = tmp_path / "state"
    res = guest_cli("freeze", "--json", "--state-dir", state, "--config", config, "--mount", fs.mountpoint)
    assert res.returncode == 0, res.stderr
    report = json.loads(guest_cli("thaw", "--json", "--state-dir", state).stdout)
    assert report["consistency"] == "application"
    assert calls.read_text().split() == ["freeze", "thaw"]
