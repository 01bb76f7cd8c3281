"""File-level restore from a lab VM disk: GPT, LVM linear (ext4), striped (xfs) and thin (ext4), btrfs, LUKS."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.engine.files.conftest import cli
from tests.engine.files.lab import snapshot_tree

pytestmark = [pytest.mark.root, pytest.mark.slow]

FILESYSTEMS = [("vgfl/root", "ext4"), ("vgfl/data", "xfs"), ("vgfl/thin", "ext4"), ("p3", "btrfs")]


def files(lab, *args: str):
    return cli("files", *args[:1], "-r", str(lab.repo), lab.snapshot, *args[1:])


def test_volumes_are_named_and_recognised(lab_snapshot):
    result = files(lab_snapshot, "volumes", "--json")
    assert result.code == 0, result.stderr
    kinds = {v["name"]: v["kind"] for v in result.json()["volumes"]}
    assert kinds == {
        "p1": "lvm-pv",
        "p2": "lvm-pv",
        "p3": "btrfs",
        "p4": "luks",
        "p5": "unknown",
        "vgfl/root": "ext4",
        "vgfl/data": "xfs",
        "vgfl/thin": "ext4",
    }


@pytest.mark.parametrize(("volume", "kind"), FILESYSTEMS)
def test_extract_everything_equals_the_source(lab_snapshot, tmp_path: Path, volume: str, kind: str):
    out = tmp_path / "out"
    result = files(lab_snapshot, "extract", "/", "--to", str(out), "--volume", volume, "--json")
    assert result.code == 0, result.stderr
    summary = result.json()
    expected = lab_snapshot.lab.trees[volume]
    assert snapshot_tree(out) == expected
    assert summary["hardlinks"] >= 1 and summary["symlinks"] >= 3
    sparse = os.stat(out / "data/sparse.img")
    assert sparse.st_blocks * 512 < sparse.st_size, "holes were filled"
    assert os.stat(out / "data/h1").st_ino == os.stat(out / "data/h2").st_ino
    assert stat.S_IMODE(os.stat(out / "bin-suid").st_mode) == 0o4755


def test_btrfs_subvolume_is_a_path(lab_snapshot):
    result = files(lab_snapshot, "cat", "/home/user.txt", "--volume", "p3")
    assert result.code == 0, result.stderr
    assert result.stdout == b"in a subvolume\n"


def test_cat_ls_find(lab_snapshot):
    cat = files(lab_snapshot, "cat", "/etc/hosts", "--volume", "vgfl/data")
    assert cat.stdout == b"127.0.0.1 localhost xfs\n"

    listing = files(lab_snapshot, "ls", "/", "--volume", "vgfl/root", "--json").json()
    by_name = {e["name"]: e for e in listing}
    assert by_name["rel-link"]["type"] == "symlink" and by_name["rel-link"]["target"] == "etc/hosts"
    latin = [e for e in listing if e.get("name_base64") == "Y2Fm6Q=="]  # b"caf\xe9"
    assert latin and latin[0]["name"] == "caf\\xe9"
    assert by_name["bin-suid"]["mode"] == 0o4755 and by_name["bin-suid"]["uid"] == 1234

    found = files(lab_snapshot, "find", "*.conf", "--volume", "vgfl/root", "--json").json()
    assert [f["path"] for f in found] == ["/etc/app/conf.d/site.conf"]


def test_extract_one_file_and_refuse_to_overwrite(lab_snapshot, tmp_path: Path):
    args = ("extract", "/etc/hosts", "--to", str(tmp_path), "--volume", "p3")
    assert files(lab_snapshot, *args).code == 0
    assert (tmp_path / "hosts").read_text() == "127.0.0.1 localhost btrfs\n"
    again = files(lab_snapshot, *args)
    assert again.code == 1 and "exists" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    assert files(lab_snapshot, *args, "--overwrite").code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ls", "/no/such/dir", "--volume", "vgfl/root"), "no such file or directory in the snapshot: /no/such/dir"),
        (("ls", "/", "--volume", "p5"), "unknown filesystem at partition 5"),
        (("ls", "/", "--volume", "p4"), "encrypted volume (LUKS) at partition 4"),
        (("ls", "/"), "choose one with --volume"),
        (("ls", "/", "--volume", "vg9/none"), "no volume 'vg9/none'"),
    ],
)
def test_clear_one_line_errors(lab_snapshot, args, message):
    result = files(lab_snapshot, *args)
    assert result.code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
