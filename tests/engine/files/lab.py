"""A lab VM disk: GPT, LVM (linear ext4, striped xfs, thin ext4), btrfs with a subvolume, LUKS, junk.

The test kernel may have no device-mapper, so logical volumes are never activated: lvm writes
its metadata with `--driverloaded n`, and each LV's filesystem is built where LVM placed it —
through a loop device at the LV's offset (linear), built in a file and laid out stripe by
stripe (striped), or block by block through a dm-thin mapping written by thin_restore (thin).
What hvbackup reads is the on-disk format lvm and thin-provisioning-tools wrote.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024
SECTOR = 512
VG = "vgfl"
STRIPE = 64 * 1024
# mkfs.xfs refuses filesystems under 300 MB unless it runs under the fstests environment
XFS_SMALL_ENV = {"TEST_DIR": "1", "TEST_DEV": "1", "QA_CHECK_FS": "1"}

PARTITIONS = """label: gpt
start=2048, size=100M, type=E6D6D379-F507-44C2-A23C-238F2A3DF928, name=pv1
size=100M, type=E6D6D379-F507-44C2-A23C-238F2A3DF928, name=pv2
size=128M, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=btrfs
size=8M, type=CA7D7CCB-63ED-4C53-861C-1742536059CC, name=luks
size=8M, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=junk
"""


def sh(*args: str, env: dict | None = None, input: bytes | None = None) -> str:
    proc = subprocess.run(args, check=False, capture_output=True, env={**os.environ, **(env or {})}, input=input)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout.decode(errors="replace")


@dataclass
class Part:
    start: int
    size: int


def partitions(image: Path) -> list[Part]:
    table = json.loads(sh("sfdisk", "-J", str(image)))["partitiontable"]["partitions"]
    return [Part(p["start"] * SECTOR, p["size"] * SECTOR) for p in table]


class Loops:
    """Loop devices that are always detached, and mounts that are always unmounted."""

    def __init__(self, stack: ExitStack) -> None:
        self.stack = stack

    def attach(self, image: Path, offset: int = 0, size: int | None = None) -> str:
        args = ["losetup", "-f", "--show", "-o", str(offset)]
        if size is not None:
            args += ["--sizelimit", str(size)]
        dev = sh(*args, str(image)).strip()
        self.stack.callback(subprocess.run, ["losetup", "-d", dev], capture_output=True)
        return dev

    def mount(self, source: str, target: Path, *options: str) -> Path:
        target.mkdir(parents=True, exist_ok=True)
        sh("mount", *options, source, str(target))
        self.stack.callback(subprocess.run, ["umount", "-l", str(target)], capture_output=True)
        return target


def populate(root: Path, tag: str) -> None:
    """The kinds of files a restore must get right."""
    (root / "etc/app/conf.d").mkdir(parents=True)
    (root / "etc/hosts").write_text(f"127.0.0.1 localhost {tag}\n")
    (root / "etc/app/conf.d/site.conf").write_text(f"listen 80; # {tag}\n")
    (root / "data").mkdir()
    (root / "data/random.bin").write_bytes(os.urandom(3 * MIB + 123))
    with open(root / "data/sparse.img", "wb") as f:  # holes at 0..1M and after 3M
        f.seek(MIB)
        f.write(os.urandom(2 * MIB))
        f.truncate(9 * MIB)
    (root / "data/h1").write_bytes(b"hard link " + tag.encode())
    os.link(root / "data/h1", root / "data/h2")
    os.symlink("etc/hosts", root / "rel-link")
    os.symlink("/etc/passwd", root / "abs-link")
    os.symlink("../etc", root / "data/dir-link")
    (root / ("n" * 251 + ".txt")).write_text("long name")
    (root / os.fsdecode(b"caf\xe9")).write_text("latin-1 name")
    (root / os.fsdecode(b"\xff\xfe-raw")).mkdir()
    (root / os.fsdecode(b"\xff\xfe-raw/inner")).write_text("inside a non-UTF-8 folder")
    (root / "empty").touch()
    (root / "empty-dir").mkdir()
    suid = root / "bin-suid"
    suid.write_bytes(b"#!/bin/sh\necho hi\n")
    os.chown(suid, 1234, 5678)
    os.chmod(suid, 0o4755)
    os.utime(root / "etc/hosts", ns=(1_600_000_000_123_456_789, 1_600_000_000_987_654_321))


def snapshot_tree(root: Path) -> dict[bytes, dict]:
    """Everything a restore must keep, per relative path (bytes), hard links as groups."""
    tree: dict[bytes, dict] = {}
    inodes: dict[int, bytes] = {}
    base = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, base)
            s = os.lstat(path)
            item = {"mode": s.st_mode, "uid": s.st_uid, "gid": s.st_gid}
            if not stat.S_ISDIR(s.st_mode):
                item["mtime_ns"] = s.st_mtime_ns
            if stat.S_ISREG(s.st_mode):
                item["sha256"] = hashlib.sha256(Path(os.fsdecode(path)).read_bytes()).hexdigest()
                item["size"] = s.st_size
                item["link_group"] = s.st_ino if s.st_nlink > 1 else None
                inodes[s.st_ino] = min(inodes.get(s.st_ino, rel), rel)
            if stat.S_ISLNK(s.st_mode):
                item["target"] = os.readlink(path)
            tree[rel] = item
    for item in tree.values():  # a hard link group is named by its first path, whatever the inode numbers
        if item.get("link_group") is not None:
            item["link_group"] = inodes[item["link_group"]]
    return tree


@dataclass
class LabDisk:
    image: Path
    trees: dict[str, dict[bytes, dict]]  # volume name → expected tree
    luks_key: Path
    root_lv: Part  # where the linear ext4 LV lies on the disk


def _lvm_env(work: Path, devices: list[str]) -> dict:
    conf = work / "lvm"
    conf.mkdir(exist_ok=True)
    accept = ", ".join(f'"a|^{d}$|"' for d in devices)
    (conf / "lvm.conf").write_text(
        f'devices {{ filter = [ {accept}, "r|.*|" ] obtain_device_list_from_udev = 0 }}\n'
        "activation { udev_sync = 0 udev_rules = 0 }\nbackup { backup = 0 archive = 0 }\n"
    )
    return {"LVM_SYSTEM_DIR": str(conf), "LVM_SUPPRESS_FD_WARNINGS": "1"}


def _lvm(env: dict, *args: str) -> str:
    return sh("lvm", args[0], "--driverloaded", "n", *args[1:], env=env)


def _lv_layout(env: dict, lv: str) -> list[tuple[str, int]]:
    """(PV device, first extent) of each stripe of the LV's single segment."""
    report = json.loads(
        _lvm(env, "lvs", "-a", "--reportformat", "json", "--segments", "-o", "lv_name,seg_pe_ranges", VG)
    )
    segment = next(s for s in report["report"][0]["seg"] if s["lv_name"].strip("[]") == lv)
    ranges = segment["seg_pe_ranges"].split()
    out = []
    for r in ranges:
        dev, extents = r.rsplit(":", 1)
        out.append((dev, int(extents.split("-")[0])))
    return out


def build_lab_disk(work: Path) -> LabDisk:
    image = work / "lab.raw"
    image.unlink(missing_ok=True)
    image.write_bytes(b"")
    os.truncate(image, 448 * MIB)
    sh("sfdisk", "-q", str(image), input=PARTITIONS.encode())
    parts = partitions(image)
    trees: dict[str, dict[bytes, dict]] = {}

    with ExitStack() as scoped:
        inner = Loops(scoped)
        pv1 = inner.attach(image, parts[0].start, parts[0].size)
        pv2 = inner.attach(image, parts[1].start, parts[1].size)
        env = _lvm_env(work, [pv1, pv2])
        env_all = {**os.environ, **env}
        _lvm(env, "pvcreate", "-q", pv1, pv2)
        _lvm(env, "vgcreate", "-q", "-s", "4m", VG, pv1, pv2)
        # On a host with device-mapper, udev may auto-activate the VG: deactivate it before detaching.
        scoped.callback(subprocess.run, ["lvm", "vgchange", "-an", VG], check=False, capture_output=True, env=env_all)
        _lvm(env, "lvcreate", "-q", "-an", "-Zn", "-L", "48m", "-n", "root", VG, pv1)
        _lvm(env, "lvcreate", "-q", "-an", "-Zn", "-L", "96m", "-i", "2", "-I", "64k", "-n", "data", VG)
        pe_start = int(_lvm(env, "pvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "pe_start", pv1).split()[0])
        pv_offset = {pv1: parts[0].start + pe_start, pv2: parts[1].start + pe_start}
        extent = 4 * MIB

        ((dev, first),) = _lv_layout(env, "root")
        root_lv = Part(pv_offset[dev] + first * extent, 48 * MIB)
        root_dev = inner.attach(image, root_lv.start, root_lv.size)
        sh("mkfs.ext4", "-q", "-F", root_dev)
        mnt = inner.mount(root_dev, work / "mnt-root")
        populate(mnt, "ext4")
        trees[f"{VG}/root"] = snapshot_tree(mnt)
        sh("umount", str(mnt))

        xfs_file = work / "data-xfs.img"
        xfs_file.write_bytes(b"")
        os.truncate(xfs_file, 96 * MIB)
        sh("mkfs.xfs", "-q", "-f", str(xfs_file), env=XFS_SMALL_ENV)
        mnt = inner.mount(str(xfs_file), work / "mnt-data", "-o", "loop")
        populate(mnt, "xfs")
        trees[f"{VG}/data"] = snapshot_tree(mnt)
        sh("umount", str(mnt))
        _lay_out_stripes(image, xfs_file, [(pv_offset[d] + f * extent) for d, f in _lv_layout(env, "data")])

        trees[f"{VG}/thin"] = _make_thin_volume(
            work, image, env, pv2, lambda dev, first: pv_offset[dev] + first * extent
        )

    with ExitStack() as scoped:
        inner = Loops(scoped)
        dev = inner.attach(image, parts[2].start, parts[2].size)
        sh("mkfs.btrfs", "-q", "-f", dev)
        mnt = inner.mount(dev, work / "mnt-btrfs")
        populate(mnt, "btrfs")
        sh("btrfs", "subvolume", "create", str(mnt / "home"))
        (mnt / "home/user.txt").write_text("in a subvolume\n")
        trees["p3"] = snapshot_tree(mnt)
        sh("umount", str(mnt))

    key = work / "luks.key"
    key.write_bytes(os.urandom(32))
    with ExitStack() as scoped:
        dev = Loops(scoped).attach(image, parts[3].start, parts[3].size)
        sh("cryptsetup", "luksFormat", "-q", "--type", "luks1", "--iter-time", "10", "--key-file", str(key), dev)
    return LabDisk(image=image, trees=trees, luks_key=key, root_lv=root_lv)


THIN_BLOCK = 64 * 1024
THIN_POOL_BLOCKS = 512  # a 32 MiB pool behind a 64 MiB thin volume


def _make_thin_volume(work: Path, image: Path, env: dict, pv: str, where) -> dict[bytes, dict]:
    """A thin pool and a thin LV holding ext4, written as lvm and dm-thin lay them out.

    lvm cannot create a thin pool without device-mapper, so its metadata is restored from a
    vgcfgbackup text extended with the pool and the thin LV (lvm checks it on restore); the
    pool's mapping btree is written by thin_restore (thin-provisioning-tools) from XML.
    """
    _lvm(env, "lvcreate", "-q", "-an", "-Zn", "-L", "4m", "-n", "tmeta0", VG, pv)
    _lvm(env, "lvcreate", "-q", "-an", "-Zn", "-L", "32m", "-n", "tdata0", VG, pv)
    text = work / "vg.txt"
    _lvm(env, "vgcfgbackup", "-f", str(text), VG)
    text.write_text(_with_thin_pool(text.read_text()))
    _lvm(env, "vgcfgrestore", "--force", "-f", str(text), VG)

    fs_file = work / "thin-ext4.img"
    fs_file.write_bytes(b"")
    os.truncate(fs_file, 64 * MIB)
    sh("mkfs.ext4", "-q", "-F", str(fs_file))
    with ExitStack() as scoped:
        mnt = Loops(scoped).mount(str(fs_file), work / "mnt-thin", "-o", "loop")
        populate(mnt, "thin")
        tree = snapshot_tree(mnt)
        sh("umount", str(mnt))

    mappings = _write_thin_data(image, fs_file, where(*_lv_layout(env, "pool_tdata")[0]))
    xml = work / "thin.xml"
    xml.write_text(_thin_xml(mappings))
    meta = work / "tmeta.bin"
    meta.write_bytes(b"")
    os.truncate(meta, 4 * MIB)
    sh("thin_restore", "-q", "-i", str(xml), "-o", str(meta))
    with open(image, "r+b") as dst:
        dst.seek(where(*_lv_layout(env, "pool_tmeta")[0]))
        dst.write(meta.read_bytes())
    return tree


def _write_thin_data(image: Path, fs_file: Path, data_start: int) -> list[tuple[int, int]]:
    """Put each non-zero block of the thin volume into the pool, last pool block first."""
    mappings = []
    zero = bytes(THIN_BLOCK)
    with open(fs_file, "rb") as src, open(image, "r+b") as dst:
        origin = 0
        while block := src.read(THIN_BLOCK):
            if block != zero:
                pool_block = THIN_POOL_BLOCKS - 1 - len(mappings)
                assert pool_block >= 0, "the thin volume's data does not fit the pool"
                dst.seek(data_start + pool_block * THIN_BLOCK)
                dst.write(block)
                mappings.append((origin, pool_block))
            origin += 1
    return mappings


def _thin_xml(mappings: list[tuple[int, int]]) -> str:
    lines = [
        (
            f'<superblock uuid="" time="0" transaction="1" version="2" data_block_size="{THIN_BLOCK // SECTOR}" '
            f'nr_data_blocks="{THIN_POOL_BLOCKS}">'
        ),
        f'  <device dev_id="1" mapped_blocks="{len(mappings)}" transaction="0" creation_time="0" snap_time="0">',
        *(f'    <single_mapping origin_block="{o}" data_block="{d}" time="0"/>' for o, d in mappings),
        "  </device>",
        "</superblock>",
    ]
    return "\n".join(lines) + "\n"


def _with_thin_pool(text: str) -> str:
    """vgcfgbackup text with tmeta0/tdata0 turned into a thin pool's hidden parts, plus the pool and a thin LV."""
    for old, new in (("tmeta0", "pool_tmeta"), ("tdata0", "pool_tdata")):
        start = text.index(f"{old} {{")
        visible = text.index('"VISIBLE"', start)
        text = text[:start] + new + text[start + len(old) : visible - 2] + text[visible + len('"VISIBLE"') :]
    end = text.rindex("\t}\n\n}")
    return text[:end] + THIN_LVS + text[end:]


THIN_LVS = """
\t\tpool {
\t\t\tid = "hvbtst-pool-0000-0000-0000-0000-000001"
\t\t\tstatus = ["READ", "WRITE", "VISIBLE"]
\t\t\tflags = []
\t\t\tsegment_count = 1
\t\t\tsegment1 {
\t\t\t\tstart_extent = 0
\t\t\t\textent_count = 8
\t\t\t\ttype = "thin-pool"
\t\t\t\tmetadata = "pool_tmeta"
\t\t\t\tpool = "pool_tdata"
\t\t\t\ttransaction_id = 1
\t\t\t\tchunk_size = 128
\t\t\t\tdiscards = "passdown"
\t\t\t\tzero_new_blocks = 1
\t\t\t}
\t\t}

\t\tthin {
\t\t\tid = "hvbtst-thin-0000-0000-0000-0000-000002"
\t\t\tstatus = ["READ", "WRITE", "VISIBLE"]
\t\t\tflags = []
\t\t\tsegment_count = 1
\t\t\tsegment1 {
\t\t\t\tstart_extent = 0
\t\t\t\textent_count = 16
\t\t\t\ttype = "thin"
\t\t\t\tthin_pool = "pool"
\t\t\t\ttransaction_id = 0
\t\t\t\tdevice_id = 1
\t\t\t}
\t\t}
"""


def _lay_out_stripes(image: Path, fs_file: Path, stripe_starts: list[int]) -> None:
    """Write a filesystem image onto the disk as an LVM striped segment places it."""
    n = len(stripe_starts)
    with open(fs_file, "rb") as src, open(image, "r+b") as dst:
        unit = 0
        while block := src.read(STRIPE):
            stripe, row = unit % n, unit // n
            dst.seek(stripe_starts[stripe] + row * STRIPE)
            dst.write(block)
            unit += 1
