"""Disk images for the sample VMs, built without root: a GPT made by sfdisk, filesystems made into
plain files (mkfs.vfat; mke2fs -d; mkfs.xfs -p protofile), then written into a dynamic VHDX with
1 MiB blocks, data extents only. The extents of the files the guest keeps writing are read from
the filesystem images (debugfs "blocks", xfs_db "bmap") and turned into virtual-disk offsets.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from hvbackup.disk import VhdxWriter, create_vhdx
from hvbackup.errors import HvBackupError

MiB = 1 << 20
SECTOR = 512
GPT_TAIL = 33 * SECTOR  # backup partition entries (32 sectors) + backup header
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
LINUX_FS_TYPE = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
FAKE_TIME = "1767225600"  # 2026-01-01T00:00:00Z: the same bytes on every build
COPY_PIECE = 4 * MiB


class ImageBuildError(HvBackupError):
    """A tool that builds the sample disks failed."""


def run(argv: list[str], **kwargs: object) -> str:
    env = {**os.environ, "E2FSPROGS_FAKE_TIME": FAKE_TIME, "SOURCE_DATE_EPOCH": FAKE_TIME, "LC_ALL": "C"}
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, **kwargs)  # type: ignore[call-overload]
    except FileNotFoundError:
        raise ImageBuildError(
            f"{argv[0]} is not installed (Debian packages: see scripts/debian-packages.txt)"
        ) from None
    if done.returncode != 0:
        raise ImageBuildError(f"{' '.join(argv[:2])} failed: {(done.stderr or done.stdout).strip()[:400]}")
    return done.stdout


@dataclass
class Filesystem:
    """A filesystem image in a file, with the guest files whose extents the lab needs."""

    image: Path
    extents: dict[str, list[tuple[int, int, int]]] = field(
        default_factory=dict
    )  # path in fs -> (file off, fs off, len)


@dataclass
class Partition:
    name: str
    type_guid: str
    uuid: str
    size: int
    filesystem: Filesystem | None = None
    start: int = 0


def _runs(blocks: list[int], block_size: int) -> list[tuple[int, int, int]]:
    """Consecutive filesystem blocks of a file as (file offset, fs offset, length)."""
    runs: list[list[int]] = []
    for index, block in enumerate(blocks):
        if runs and block == runs[-1][1] // block_size + runs[-1][2] // block_size:
            runs[-1][2] += block_size
        else:
            runs.append([index * block_size, block * block_size, block_size])
    return [tuple(r) for r in runs]  # type: ignore[misc]


def make_vfat(path: Path, size: int, volume_id: str, label: str) -> Filesystem:
    with open(path, "wb") as f:
        f.truncate(size)
    run(["mkfs.vfat", "--invariant", "-F", "32", "-i", volume_id, "-n", label, str(path)])
    return Filesystem(path)


def make_ext4(path: Path, size: int, tree: Path, fs_uuid: str, label: str, tracked: list[str]) -> Filesystem:
    """ext4 (4 KiB blocks) populated from `tree` by mke2fs -d; extents of `tracked` paths via debugfs."""
    path.unlink(missing_ok=True)
    options = f"hash_seed={fs_uuid},root_owner=0:0"
    size_k = f"{size // 1024}k"
    argv = ["mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-U", fs_uuid, "-E", options, "-L", label]
    run([*argv, "-d", str(tree), str(path), size_k])
    _fix_change_times(path, tree)
    fs = Filesystem(path)
    for guest_path in tracked:
        out = run(["debugfs", "-R", f"blocks {guest_path}", str(path)])
        blocks = [int(b) for b in out.split()]
        if not blocks:
            raise ImageBuildError(f"debugfs found no blocks for {guest_path} in {path.name}")
        fs.extents[guest_path] = _runs(blocks, 4096)
    return fs


def _fix_change_times(image: Path, tree: Path) -> None:
    """mke2fs -d copies each file's times; ctime cannot be set on the source, and reading a directory
    moves its atime: set them all to FAKE_TIME."""
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(int(FAKE_TIME)))
    paths = ["/"] + ["/" + str(p.relative_to(tree)) for p in sorted(tree.rglob("*"))]
    fields = [(f, v) for t in ("atime", "mtime", "ctime") for f, v in ((t, stamp), (f"{t}_extra", "0"))]
    script = image.with_suffix(".debugfs")
    script.write_text("".join(f'sif "{p}" {f} {v}\n' for p in paths for f, v in fields))
    run(["debugfs", "-w", "-f", str(script), str(image)])
    script.unlink()


def make_xfs(path: Path, size: int, tree: Path, fs_uuid: str, label: str, tracked: list[str]) -> Filesystem:
    """XFS populated from `tree` through a protofile (mkfs.xfs -p); extents of `tracked` via xfs_db bmap."""
    with open(path, "wb") as f:
        f.truncate(size)
    proto = path.with_suffix(".proto")
    proto.write_text(protofile(tree))
    run(["mkfs.xfs", "-q", "-f", "-m", f"uuid={fs_uuid}", "-L", label, "-p", str(proto), str(path)])
    proto.unlink()
    geometry = run(["xfs_db", "-r", "-c", "sb 0", "-c", "p agblocks", "-c", "p blocksize", str(path)])
    values = dict(line.split(" = ") for line in geometry.strip().splitlines())
    agblocks, block_size = int(values["agblocks"]), int(values["blocksize"])
    fs = Filesystem(path)
    for guest_path in tracked:
        out = run(["xfs_db", "-r", "-c", f"path {guest_path}", "-c", "bmap", str(path)])
        fs.extents[guest_path] = _xfs_extents(out, agblocks, block_size)
    return fs


def _xfs_extents(bmap: str, agblocks: int, block_size: int) -> list[tuple[int, int, int]]:
    """xfs_db bmap lines 'data offset O startblock S (AG/AGBNO) count C flag F' to byte extents."""
    extents = []
    for line in bmap.splitlines():
        words = line.split()
        if len(words) < 9 or words[0] != "data":
            continue
        ag, agbno = (int(x) for x in words[5].strip("()").split("/"))
        extents.append((int(words[2]) * block_size, (ag * agblocks + agbno) * block_size, int(words[7]) * block_size))
    if not extents:
        raise ImageBuildError(f"xfs_db bmap gave no extents: {bmap.strip()[:200]}")
    return extents


def protofile(tree: Path) -> str:
    """mkfs.xfs's prototype file for the directory `tree` (xfsprogs mkfs/proto.c format)."""
    lines = ["/dev/null", "0 0", "d--755 0 0"]

    def walk(directory: Path, depth: int) -> None:
        for entry in sorted(directory.iterdir()):
            mode = f"{entry.stat().st_mode & 0o777:03o}"
            if entry.is_dir():
                lines.append(f"{'  ' * depth}{entry.name} d--{mode} 0 0")
                walk(entry, depth + 1)
                lines.append(f"{'  ' * depth}$")
            else:
                lines.append(f"{'  ' * depth}{entry.name} ---{mode} 0 0 {entry}")

    walk(tree, 1)
    lines.append("$")
    return "\n".join(lines) + "\n"


def gpt(size: int, disk_guid: str, partitions: list[Partition]) -> tuple[bytes, bytes]:
    """The GPT sfdisk writes for these partitions (placed from 1 MiB on, 1 MiB aligned): (head, tail)."""
    position = MiB
    script = ["label: gpt", f"label-id: {disk_guid}", "unit: sectors", "first-lba: 2048"]
    for part in partitions:
        part.start = position
        where = f"start={position // SECTOR}, size={part.size // SECTOR}"
        script.append(f'{where}, type={part.type_guid}, uuid={part.uuid}, name="{part.name}"')
        position += part.size
    if position + MiB > size:
        raise ImageBuildError(f"partitions of {position} bytes do not fit a {size}-byte disk")
    with tempfile.NamedTemporaryFile(suffix=".raw") as raw:
        raw.truncate(size)
        run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", raw.name], input="\n".join(script) + "\n")
        return os.pread(raw.fileno(), MiB, 0), os.pread(raw.fileno(), GPT_TAIL, size - GPT_TAIL)


def write_vhdx(
    path: Path, size: int, disk_guid: str, partitions: list[Partition]
) -> dict[str, list[tuple[int, int, int]]]:
    """A dynamic 1 MiB-block VHDX holding the GPT and the partitions' filesystems (data extents only).

    Returns the virtual-disk extents of every tracked file: {path in fs: [(file off, disk off, len)]}."""
    head, tail = gpt(size, disk_guid, partitions)
    extents: dict[str, list[tuple[int, int, int]]] = {}
    disk = create_vhdx(path, size, block_size=MiB)
    try:
        disk.write(0, head)
        disk.write(size - GPT_TAIL, tail)
        for part in partitions:
            if part.filesystem is None:
                continue
            _copy_data(part.filesystem.image, disk, part.start)
            for guest_path, runs in part.filesystem.extents.items():
                extents[guest_path] = [(f, part.start + o, n) for f, o, n in runs]
    finally:
        disk.close()
    return extents


def _copy_data(image: Path, disk: VhdxWriter, at: int) -> None:
    """Copy the data extents of a sparse file into the disk at byte offset `at`."""
    with open(image, "rb") as f:
        fd, end = f.fileno(), os.fstat(f.fileno()).st_size
        position = 0
        while position < end:
            try:
                start = os.lseek(fd, position, os.SEEK_DATA)
            except OSError:
                break
            stop = os.lseek(fd, start, os.SEEK_HOLE)
            for offset in range(start, stop, COPY_PIECE):
                disk.write(at + offset, os.pread(fd, min(COPY_PIECE, stop - offset), offset))
            position = stop
