"""pytest fixtures for the Hyper-V tests (helpers live in hyperv_fixtures.py)."""

from __future__ import annotations

import pytest

from .hyperv_fixtures import ReplayTransport


@pytest.fixture
def replay() -> ReplayTransport:
    return ReplayTransport()


@pytest.fixture
def ps_host(replay: ReplayTransport):
    from hvbackup.hyperv.powershell import PowerShellHost

    def no_disks(path: str):
        raise AssertionError("no disk access in this test")

    return PowerShellHost(replay, no_disks, poll_interval=0.0)
