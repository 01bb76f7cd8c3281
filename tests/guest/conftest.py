"""Fixtures for the guest tests. Tests freeze only loop filesystems they made, always named explicitly."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from guest_helpers import GUEST_CLI, LoopFactory


@pytest.fixture
def loops(tmp_path: Path) -> Iterator[LoopFactory]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if not Path("/dev/loop-control").exists():
        pytest.skip("no loop devices on this machine")
    factory = LoopFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.cleanup()


@pytest.fixture
def guest_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    def call(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "200"}
        return subprocess.run([*GUEST_CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env)

    return call
