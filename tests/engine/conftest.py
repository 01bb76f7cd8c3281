"""Helpers for engine tests: images with known content, and the CLI run as users run it."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

MIB = 1024 * 1024
PASSWORD = "correct horse battery staple"
HVBACKUP = str(Path(sys.executable).parent / "hvbackup")


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        return json.loads(self.stdout)


def cli(*args: str, password: str | None = PASSWORD, timeout: float = 300) -> CliResult:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HVBACKUP_")}
    if password is not None:
        env["HVBACKUP_PASSWORD"] = password
    proc = subprocess.run(
        [HVBACKUP, *args], capture_output=True, text=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def write_pattern(path: Path, size: int, pieces: list[tuple[int, bytes]]) -> None:
    """A sparse file of `size` bytes holding `pieces` at their offsets."""
    with open(path, "wb") as f:
        f.truncate(size)
        for offset, data in pieces:
            f.seek(offset)
            f.write(data)


def mixed_pieces(size: int, seed: int = 1) -> list[tuple[int, bytes]]:
    """Random data, text, a repeated block, and explicit zeros, spread over a disk of `size` bytes."""
    rng = random.Random(seed)
    block = rng.randbytes(MIB)
    pieces = []
    for n, offset in enumerate(range(0, size, 3 * MIB)):
        kind = n % 4
        if kind == 0:
            pieces.append((offset, rng.randbytes(MIB + 4096)))
        elif kind == 1:
            pieces.append((offset + 512, (b"log line %d\n" % n) * 50000))
        elif kind == 2:
            pieces.append((offset, block))  # the same data again: deduplicated
        else:
            pieces.append((offset, bytes(MIB)))  # written zeros: allocated, still never stored
    return pieces


@pytest.fixture
def repo_path(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    result = cli("init", "--repo", str(path), "--json")
    assert result.code == 0, result.stderr
    return path
