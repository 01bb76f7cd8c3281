"""`hvbackup demo`: the whole image path on a generated disk, in a fresh folder.

Makes a dynamic VHDX holding a real ext4 filesystem with a small Linux-like tree, backs it up
into a new repository, changes a file's blocks, backs up again with the changed ranges, restores
the latest snapshot to a new VHDX and proves it reads back identical to the changed disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from hvbackup.disk import create_vhdx, open_disk
from hvbackup.engine.disk_restore import restore_disk
from hvbackup.engine.image_backup import backup_image
from hvbackup.errors import HvBackupError
from hvbackup.repo import Repository

MIB = 1024 * 1024
DEMO_PASSWORD = "hvbackup-demo"


@dataclass
class DemoStep:
    name: str
    detail: str
    seconds: float = 0.0
    data: dict = field(default_factory=dict)


@dataclass
class DemoResult:
    folder: str
    steps: list[DemoStep]
    identical: bool

    def to_json(self) -> dict:
        return {"folder": self.folder, "identical": self.identical,
                "steps": [s.__dict__ for s in self.steps]}


def _linux_tree(root: Path) -> None:
    files = {
        "etc/hostname": b"demo-vm\n",
        "etc/fstab": b"UUID=4c1d0d2e-0000-4000-8000-000000000001 / ext4 defaults 0 1\n",
        "etc/os-release": b'NAME="Debian GNU/Linux"\nVERSION_ID="12"\n',
        "var/log/syslog": b"".join(b"Nov 25 10:%02d:00 demo-vm systemd[1]: Started session %d.\n" % (i % 60, i)
                                   for i in range(200000)),
        "home/admin/notes.txt": b"backed up by hvbackup\n",
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    media = root / "home/admin/media.bin"
    media.write_bytes(os.urandom(24 * MIB))


def make_demo_disk(path: Path, size: int = 256 * MIB) -> None:
    with tempfile.TemporaryDirectory(prefix="hvbackup-demo-") as tmp:
        tree, raw = Path(tmp) / "tree", Path(tmp) / "disk.raw"
        _linux_tree(tree)
        with open(raw, "wb") as f:
            f.truncate(size)
        try:
            subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(tree), str(raw)],
                           check=True, capture_output=True)
        except FileNotFoundError:
            raise HvBackupError("the demo needs mke2fs (Debian package e2fsprogs)") from None
        with open_disk(raw) as src, create_vhdx(path, size, block_size=MIB) as dst:
            for offset, length in src.allocated_ranges():
                dst.write(offset, src.read(offset, length))
            dst.flush()


def change_some_blocks(path: Path) -> list[tuple[int, int]]:
    """Overwrite a few allocated blocks, as a running VM would; the changed byte ranges."""
    from hvbackup.disk import open_vhdx_writer

    with open_disk(path) as disk:
        ranges = disk.allocated_ranges()
    offsets = [ranges[len(ranges) // 2][0], ranges[-1][0]]
    with open_vhdx_writer(path) as disk:
        for off in offsets:
            disk.write(off, os.urandom(64 * 1024))
        disk.flush()
    return [(off, 64 * 1024) for off in offsets]


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open_disk(path) as disk:
        for off in range(0, disk.size, 16 * MIB):
            h.update(disk.read(off, min(16 * MIB, disk.size - off)))
    return h.hexdigest()


def run_demo(folder: Path, on_step: Callable[[DemoStep], None] = lambda s: None) -> DemoResult:
    if folder.exists() and any(folder.iterdir()):
        raise HvBackupError(f"demo folder {folder} is not empty: pass a new folder")
    folder.mkdir(parents=True, exist_ok=True)
    steps: list[DemoStep] = []

    def step(name: str, detail: str, seconds: float, **data: object) -> None:
        steps.append(DemoStep(name, detail, round(seconds, 3), dict(data)))
        on_step(steps[-1])

    t = time.monotonic()
    disk = folder / "demo-vm.vhdx"
    make_demo_disk(disk)
    step("make disk", f"{disk.name}: dynamic VHDX, 1 MiB blocks, ext4 with a small Linux tree", time.monotonic() - t)
    repo_path = folder / "repo"
    with Repository.init(repo_path, DEMO_PASSWORD) as repo:
        t = time.monotonic()
        full = backup_image(repo, disk, source="demo-vm")
        step("full backup", f"snapshot {full.snapshot.id[:12]}", time.monotonic() - t, **full.to_json())
        ranges = change_some_blocks(disk)
        ranges_file = folder / "changed-ranges.json"
        ranges_file.write_text(json.dumps(ranges))
        t = time.monotonic()
        inc = backup_image(repo, disk, source="demo-vm", changed_ranges_file=ranges_file)
        step("incremental backup", f"snapshot {inc.snapshot.id[:12]} ({inc.disk.mode})", time.monotonic() - t,
             **inc.to_json())
        t = time.monotonic()
        restored = folder / "restored.vhdx"
        result = restore_disk(repo, repo.load_snapshot(inc.snapshot.id), restored, verify=True)
        step("restore", f"{restored.name} (verified)", time.monotonic() - t, **result.to_json())
    identical = _digest(restored) == _digest(disk)
    step("compare", "restored disk reads back identical to the changed disk" if identical else "DIFFERENT", 0.0)
    return DemoResult(str(folder), steps, identical)
