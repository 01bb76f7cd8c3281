"""File-level restore without root: filesystems built by mke2fs -d, on a whole disk and in an MBR partition."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from hvbackup.engine.image_backup import backup_image
from tests.engine.files.conftest import HVBACKUP, cli, new_repo
from tests.engine.files.lab import MIB, snapshot_tree


def _tree(root: Path) -> None:
    (root / "etc/app").mkdir(parents=True)
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n")
    (root / "etc/app/a.conf").write_text("a = 1\n")
    with open(root / "sparse", "wb") as f:
        f.seek(5 * MIB)
        f.write(b"tail")
    (root / "hard1").write_text("linked")
    os.link(root / "hard1", root / "hard2")
    os.symlink("etc/hosts", root / "link")
    os.symlink("/", root / "to-root")
    (root / os.fsdecode(b"bad-\xe9\xff")).write_text("not UTF-8")
    (root / ("x" * 255)).write_text("longest name")
    os.chmod(root / "etc/hosts", 0o640)
    for path in [root / "etc/app/a.conf", *root.rglob("*")]:  # mke2fs -d copies whole seconds only
        os.utime(path, (1_500_000_000, 1_500_000_000 + len(path.name)), follow_symlinks=False)


def _snapshot(work: Path, image: Path):
    repo_path = work / "repo"
    with new_repo(repo_path) as repo:
        snap = backup_image(repo, image).snapshot.id
    return repo_path, snap


@pytest.fixture(scope="module")
def whole_disk(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("whole")
    tree = work / "tree"
    tree.mkdir()
    _tree(tree)
    image = work / "ext4.raw"
    subprocess.run(["mke2fs", "-q", "-t", "ext4", "-I", "256", "-d", str(tree), str(image), "32M"], check=True)
    repo, snap = _snapshot(work, image)
    return repo, snap, snapshot_tree(tree)


def test_whole_disk_ext4_extracts_equal(whole_disk, tmp_path: Path):
    repo, snap, expected = whole_disk
    out = tmp_path / "out"
    result = cli("files", "extract", "-r", str(repo), snap, "/", "--to", str(out), "--json")
    assert result.code == 0, result.stderr
    got = snapshot_tree(out)
    got.pop(b"lost+found")
    if os.geteuid() != 0:  # owners are only kept as root
        for item in expected.values():
            item["uid"], item["gid"] = os.geteuid(), os.getegid()
    assert got == expected
    assert os.stat(out / "sparse").st_blocks * 512 < MIB


def test_extract_never_writes_through_a_symlink_in_the_target(whole_disk, tmp_path: Path):
    repo, snap, _ = whole_disk
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "target"
    target.mkdir()
    (target / "etc").symlink_to(outside)
    result = cli("files", "extract", "-r", str(repo), snap, "/etc", "--to", str(target), "--overwrite")
    assert result.code == 1 and "is not a directory" in result.stderr
    assert list(outside.iterdir()) == []


def test_cat_follows_symlinks(whole_disk):
    repo, snap, _ = whole_disk
    assert cli("files", "cat", "-r", str(repo), snap, "/link").stdout == b"127.0.0.1 localhost\n"


def test_cat_of_a_directory_and_ls_of_a_file(whole_disk):
    repo, snap, _ = whole_disk
    cat = cli("files", "cat", "-r", str(repo), snap, "/etc")
    assert cat.code == 1 and "is a directory" in cat.stderr
    ls = cli("files", "ls", "-r", str(repo), snap, "/etc/hosts", "--json")
    assert ls.code == 0 and [(e["name"], e["mode"]) for e in ls.json()] == [("hosts", 0o640)]


def test_find_matches_full_paths_and_raw_names(whole_disk):
    repo, snap, _ = whole_disk
    found = cli("files", "find", "-r", str(repo), snap, "*bad-*", "--json").json()
    assert found == [{"path": "/bad-\\xe9\\xff", "path_base64": "L2JhZC3p/w==", "type": "file", "size": 9}]


def test_ext4_in_an_mbr_partition(tmp_path: Path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "hello.txt").write_text("from an MBR partition\n")
    image = tmp_path / "mbr.raw"
    image.write_bytes(b"")
    os.truncate(image, 40 * MIB)
    subprocess.run(["sfdisk", "-q", str(image)], input=b"label: dos\nstart=2048, size=30M, type=83\n", check=True)
    subprocess.run(
        ["mke2fs", "-q", "-t", "ext4", "-d", str(tree), "-E", f"offset={2048 * 512}", str(image), "30M"], check=True
    )
    repo, snap = _snapshot(tmp_path, image)
    volumes = cli("files", "volumes", "-r", str(repo), snap, "--json").json()["volumes"]
    assert [(v["name"], v["kind"]) for v in volumes] == [("p1", "ext4")]
    cat = cli("files", "cat", "-r", str(repo), snap, "/hello.txt")
    assert cat.stdout == b"from an MBR partition\n"


def test_unknown_filesystem_is_one_clear_line(tmp_path: Path):
    image = tmp_path / "noise.raw"
    image.write_bytes(os.urandom(2 * MIB))
    repo, snap = _snapshot(tmp_path, image)
    result = cli("files", "ls", "-r", str(repo), snap, "/")
    assert result.code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: no filesystem hvbackup can read on this disk (disk unknown: no partition table")


def test_ext4_bigalloc_names_the_feature_and_the_way_out(tmp_path: Path):
    image = tmp_path / "bigalloc.raw"
    subprocess.run(
        ["mke2fs", "-q", "-t", "ext4", "-O", "bigalloc", "-C", "16384", str(image), "32M"],
        check=True,
        capture_output=True,
    )
    repo, snap = _snapshot(tmp_path, image)
    result = cli("files", "ls", "-r", str(repo), snap, "/")
    lines = result.stderr.strip().splitlines()
    assert result.code == 1 and len(lines) == 1
    assert "cannot read in-process" in lines[0] and "hvbackup mount" in lines[0]


def _inode_count(image: Path) -> int:
    out = subprocess.run(["dumpe2fs", "-h", str(image)], capture_output=True, text=True, check=True).stdout
    return int(next(line for line in out.splitlines() if line.startswith("Inode count:")).split()[-1])


def test_the_last_inode_number_is_listed(tmp_path: Path):
    """Inode numbers run up to s_inodes_count inclusive; a full inode table uses the last one."""
    mkfs = ["mke2fs", "-q", "-t", "ext4", "-I", "256", "-N", "64"]
    probe = tmp_path / "probe.raw"
    subprocess.run([*mkfs, str(probe), "16M"], check=True, capture_output=True)
    count = _inode_count(probe)
    tree = tmp_path / "tree"
    tree.mkdir()
    names = [f"f{i:04d}" for i in range(count - 11)]  # inodes 12..count; 1-11 are reserved
    for name in names:
        (tree / name).write_text(name)
    image = tmp_path / "full.raw"
    subprocess.run([*mkfs, "-d", str(tree), str(image), "16M"], check=True, capture_output=True)
    repo, snap = _snapshot(tmp_path, image)
    listing = cli("files", "ls", "-r", str(repo), snap, "/", "--json").json()
    assert sorted(e["name"] for e in listing if e["name"] != "lost+found") == names


def test_an_exported_key_opens_the_snapshot_without_a_passphrase(whole_disk, tmp_path: Path):
    repo, snap, _ = whole_disk
    key = tmp_path / "repo.key"
    assert cli("key", "export", "-r", str(repo), "-o", str(key)).code == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("HVBACKUP_")}
    proc = subprocess.run(
        [HVBACKUP, "files", "cat", "-r", str(repo), snap, "/etc/hosts", "--key-file", str(key)],
        capture_output=True, env=env, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"127.0.0.1 localhost\n"
