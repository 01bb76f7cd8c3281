"""`files` and `mount` meeting what a new administrator gives them (issue 11): a repository with
two sources, targets that are in the way, files, read-only folders, unusable mount points."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from hvbackup.engine.files.errors import NoFuse
from hvbackup.engine.files.mount import check_fuse
from hvbackup.engine.image_backup import backup_image
from tests.engine.files.conftest import cli, new_repo


def _ext4(work: Path, name: str, files: dict[str, str]) -> Path:
    tree = work / f"{name}-tree"
    for path, text in files.items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_text(text)
    image = work / f"{name}.raw"
    subprocess.run(["mke2fs", "-q", "-t", "ext4", "-d", str(tree), str(image), "8M"], check=True)
    return image


@pytest.fixture(scope="module")
def two_sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository holding snapshots of two sources, `web` and then `db`."""
    work = tmp_path_factory.mktemp("two")
    repo_path = work / "repo"
    with new_repo(repo_path) as repo:
        for name in ("web", "db"):
            files = {"etc/hostname": f"{name}\n", "srv/a.txt": f"a of {name}\n", "srv/z.txt": f"z of {name}\n"}
            backup_image(repo, _ext4(work, name, files), source=name)
    return repo_path


def _one_line(result, *words: str) -> str:
    assert result.code == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_files_commands_refuse_an_ambiguous_latest_and_take_a_source(two_sources: Path, tmp_path: Path) -> None:
    repo = str(two_sources)
    commands = {
        "cat": ["/etc/hostname"],
        "ls": ["/etc"],
        "find": ["*hostname"],
        "volumes": [],
        "extract": ["/etc/hostname", "--to", str(tmp_path / "out")],
    }
    for command, args in commands.items():
        _one_line(cli("files", command, "-r", repo, "latest", *args), "ambiguous", "db, web")
    assert not (tmp_path / "out").exists()
    assert cli("files", "cat", "-r", repo, "latest", "/etc/hostname", "--source", "web").stdout == b"web\n"
    assert cli("files", "cat", "-r", repo, "latest", "/etc/hostname", "-s", "db").stdout == b"db\n"
    assert cli("files", "cat", "-r", repo, "web:latest", "/etc/hostname").stdout == b"web\n"
    for command, args in commands.items():
        result = cli("files", command, "-r", repo, "latest", *args, "-s", "web", "--json")
        assert result.code == 0, (command, result.stderr)
    assert (tmp_path / "out/hostname").read_text() == "web\n"


def test_extract_checks_every_target_before_writing_any(two_sources: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    walked = cli("files", "find", "-r", str(two_sources), "web:latest", "/srv/*", "--json").json()
    last = walked[-1]["path"]  # the file the walk reaches last: everything else would come first
    (out / last.lstrip("/")).parent.mkdir(parents=True)
    (out / last.lstrip("/")).write_text("mine")
    result = cli("files", "extract", "-r", str(two_sources), "web:latest", "/", "--to", str(out))
    _one_line(result, last.lstrip("/"), "exists", "nothing was extracted", "--overwrite")
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == ["srv", last.lstrip("/")]
    assert (out / last.lstrip("/")).read_text() == "mine"


def test_extract_to_a_file_is_one_clear_line(two_sources: Path, tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("keep")
    result = cli("files", "extract", "-r", str(two_sources), "web:latest", "/etc", "--to", str(target))
    _one_line(result, "notes.txt", "is a file, not a folder")
    assert target.read_text() == "keep"


@pytest.mark.root
def test_extract_to_a_read_only_folder_is_one_clear_line(two_sources: Path, tmp_path: Path) -> None:
    readonly = tmp_path / "ro"
    readonly.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(readonly)], check=True)
    try:
        into = cli("files", "extract", "-r", str(two_sources), "web:latest", "/etc", "--to", str(readonly))
        _one_line(into, "cannot write into", "read-only filesystem")
        below = cli("files", "extract", "-r", str(two_sources), "web:latest", "/etc", "--to", str(readonly / "new"))
        _one_line(below, "cannot create the folder", "Read-only file system")
    finally:
        subprocess.run(["umount", str(readonly)], check=True)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: (p.mkdir(), (p / "old.txt").write_text("x")), "is not empty"),
        (lambda p: p.write_text("x"), "is not a folder"),
        (lambda p: None, "does not exist"),
    ],
    ids=["non-empty folder", "file", "missing"],
)
def test_mount_onto_an_unusable_mount_point_says_why(two_sources: Path, tmp_path: Path, make, message) -> None:
    mountpoint = tmp_path / "snap"
    make(mountpoint)
    result = cli("mount", "-r", str(two_sources), "web:latest", str(mountpoint))
    line = _one_line(result, str(mountpoint), message)
    assert "RuntimeError" not in line


def test_no_fuse_device_is_named(tmp_path: Path) -> None:
    with pytest.raises(NoFuse, match=r"FUSE is not available: .*fuse is missing"):
        check_fuse(tmp_path / "fuse")


@pytest.mark.root
def test_mount_of_latest_takes_a_source(two_sources: Path, tmp_path: Path) -> None:
    mountpoint = tmp_path / "snap"
    mountpoint.mkdir()
    _one_line(cli("mount", "-r", str(two_sources), "latest", str(mountpoint)), "ambiguous")
    result = cli("mount", "-r", str(two_sources), "latest", str(mountpoint), "-s", "db", "--json")
    try:
        assert result.code == 0, result.stderr
        assert result.json()["files"] == ["disk0.raw"]
        assert (mountpoint / "disk0.raw").read_bytes() == (two_sources.parent / "db.raw").read_bytes()
    finally:
        subprocess.run(["fusermount", "-u", str(mountpoint)], check=False, capture_output=True)
    assert not os.path.ismount(mountpoint)
