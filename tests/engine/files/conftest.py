"""Fixtures for file-level restore: a repository, and the lab disk backed up into it (root)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.engine.files.lab import LabDisk, build_lab_disk

PASSWORD = "file restore test"
HVBACKUP = str(Path(sys.executable).parent / "hvbackup")


@dataclass
class CliResult:
    code: int
    stdout: bytes
    stderr: str

    def json(self):
        return json.loads(self.stdout)


def cli(*args: str) -> CliResult:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HVBACKUP_")}
    env["HVBACKUP_PASSWORD"] = PASSWORD
    proc = subprocess.run(
        [HVBACKUP, *args], check=False, capture_output=True, env=env, stdin=subprocess.DEVNULL, timeout=300
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr.decode(errors="replace"))


def new_repo(path: Path):
    from hvbackup.repo import Repository

    return Repository.init(path, PASSWORD, kdf_n=2**10, chunk_size=1024 * 1024)


@dataclass
class LabSnapshot:
    repo: Path
    snapshot: str
    lab: LabDisk


@pytest.fixture(scope="session")
def lab_snapshot(tmp_path_factory: pytest.TempPathFactory):
    if os.geteuid() != 0:
        pytest.skip("the lab disk needs root (loop devices, mounts)")
    from hvbackup.engine.image_backup import backup_image

    work = tmp_path_factory.mktemp("lab")
    lab = build_lab_disk(work)
    with new_repo(work / "repo") as repo:
        result = backup_image(repo, lab.image, source="lab-vm")
    yield LabSnapshot(work / "repo", result.snapshot.id, lab)
