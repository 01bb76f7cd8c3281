"""`hvbackup mount`: the kernel reads the exposed disk image as it read the original (root, FUSE)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.engine.files.conftest import cli
from tests.engine.files.lab import snapshot_tree

pytestmark = [pytest.mark.root, pytest.mark.slow]


def _unmount(path: Path, *command: str) -> None:
    for _ in range(50):
        if not os.path.ismount(path):
            return
        subprocess.run([*command, str(path)], check=False, capture_output=True)
        time.sleep(0.1)


def test_loop_mount_of_the_exposed_image_reads_the_same_files(lab_snapshot, tmp_path: Path):
    fuse_dir = tmp_path / "snap"
    fs_dir = tmp_path / "root"
    fuse_dir.mkdir()
    fs_dir.mkdir()
    result = cli("mount", "-r", str(lab_snapshot.repo), lab_snapshot.snapshot, str(fuse_dir), "--json")
    try:
        assert result.code == 0, result.stderr
        assert result.json()["files"] == ["disk0.raw"]
        image = fuse_dir / "disk0.raw"
        assert image.stat().st_size == lab_snapshot.lab.image.stat().st_size
        with pytest.raises(OSError), open(image, "r+b"):
            pass
        lv = lab_snapshot.lab.root_lv
        subprocess.run(
            ["mount", "-o", f"ro,loop,noload,offset={lv.start},sizelimit={lv.size}", str(image), str(fs_dir)],
            check=True,
            capture_output=True,
        )
        assert snapshot_tree(fs_dir) == lab_snapshot.lab.trees["vgfl/root"]
    finally:
        _unmount(fs_dir, "umount")
        _unmount(fuse_dir, "fusermount", "-u")
    assert not os.path.ismount(fuse_dir)
