"""The agent publishes for the host through KVP: readiness at start, each freeze report after its thaw
hooks, tied to the checkpoint by the token the host put in pool 0 (docs/GUEST.md §15)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from guest_helpers import GUEST_CLI
from guest_kernel import FakeKernel, start_vssd

from hvbackup import kvpreport
from hvbackup.guest import kvp
from hvbackup.guest import protocol as p

pytestmark = pytest.mark.timeout(180)
OK = bytes(12)


def _published(kvp_dir: Path, kind: str, timeout: float = 30) -> kvpreport.Published:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = kvp.published(kvp_dir, kind)
        if found is not None:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no {kind} report in {kvp_dir}")


def test_vssd_publishes_readiness_and_a_freeze_report_carrying_the_hosts_token(tmp_path: Path) -> None:
    kernel = FakeKernel(tmp_path / "vss.sock")
    kvp_dir = tmp_path / "kvp"  # start_vssd passes this as --kvp-dir
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    calls = tmp_path / "calls"
    hook = hooks / "10-app"
    hook.write_text(f'#!/bin/sh\necho "$1" >> {calls}\n')
    hook.chmod(0o755)
    kvp.update_pool(kvp_dir, kvp.POOL_EXTERNAL, {kvpreport.REQUEST_KEY: "token-of-checkpoint-1"})
    proc = start_vssd(GUEST_CLI, kernel.path, tmp_path / "state", hooks, "--no-freeze")
    try:
        kernel.accept()
        readiness = _published(kvp_dir, kvpreport.READINESS)
        assert "findings" in readiness.report and readiness.token is None
        assert kernel.request(p.VSS_OP_FREEZE) == OK
        assert kvp.published(kvp_dir, kvpreport.FREEZE) is None, "nothing is written while frozen"
        assert kernel.request(p.VSS_OP_THAW) == OK
        kernel.report()
        freeze = _published(kvp_dir, kvpreport.FREEZE)
        assert calls.read_text() == "freeze\nthaw\n", "published after the thaw hooks ran"
        assert freeze.token == "token-of-checkpoint-1" and freeze.report["host_request"] == "token-of-checkpoint-1"
        assert freeze.report["consistency"] == "application"

        kvp.update_pool(kvp_dir, kvp.POOL_EXTERNAL, {kvpreport.REQUEST_KEY: "token-of-checkpoint-2"})
        assert kernel.request(p.VSS_OP_FREEZE) == OK
        assert kernel.request(p.VSS_OP_THAW) == OK
        kernel.report()
        assert _published(kvp_dir, kvpreport.FREEZE).token == "token-of-checkpoint-2"
    finally:
        kernel.close()
        proc.kill()
        proc.wait()
        kernel.shutdown()


def test_without_a_host_request_the_report_carries_no_token(tmp_path: Path) -> None:
    kernel = FakeKernel(tmp_path / "vss.sock")
    kvp_dir = tmp_path / "kvp"
    proc = start_vssd(GUEST_CLI, kernel.path, tmp_path / "state", tmp_path / "hooks", "--no-freeze", "--no-readiness")
    try:
        kernel.accept()
        assert kernel.request(p.VSS_OP_FREEZE) == OK
        assert kernel.request(p.VSS_OP_THAW) == OK
        kernel.report()
        assert _published(kvp_dir, kvpreport.FREEZE).token is None
        assert kvp.published(kvp_dir, kvpreport.READINESS) is None
    finally:
        kernel.close()
        proc.kill()
        proc.wait()
        kernel.shutdown()


def test_check_publish_writes_the_readiness_report_for_the_host(tmp_path: Path) -> None:
    done = subprocess.run(
        [*GUEST_CLI, "check", "--publish", "--kvp-dir", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    found = kvp.published(tmp_path, kvpreport.READINESS)
    assert found is not None and found.report == json.loads(done.stdout)
