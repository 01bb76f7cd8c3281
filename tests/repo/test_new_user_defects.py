"""Issue 11, "What a new administrator runs into": the repository and its commands."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hvbackup.errors import EXIT_FAILED, UsageError
from hvbackup.repo import Repository
from hvbackup.repo.errors import RepositoryFull, RepositoryReadOnly
from hvbackup.repo.retention import KeepPolicy

from .conftest import CHUNK, FAST_KDF, PASSWORD, chunk_data, make_snapshot, store_disk
from .test_cli import one_line_error, open_repo, run, run_json

RULES = ["last", "hourly", "daily", "weekly", "monthly", "yearly"]


@pytest.fixture
def cli_repo(tmp_path: Path) -> Path:
    """A repository the CLI opens quickly (a cheap scrypt cost; `init` itself is tested in test_cli.py)."""
    path = tmp_path / "repo"
    Repository.init(path, PASSWORD, chunk_size=CHUNK, kdf_n=FAST_KDF).close()
    return path


def snapshot_ids(repo_path: Path) -> set[str]:
    return {d["id"] for d in run_json("snapshots", "--repo", str(repo_path))}


def three_snapshots(repo_path: Path, source: str = "vm") -> list[str]:
    with open_repo(repo_path) as r:
        return [make_snapshot(r, source, {"d": [chunk_data(i)]}).id for i in range(3)]


# -- 1. forget with a negative or zero keep count ------------------------------------------------


@pytest.mark.parametrize("rule", RULES)
def test_forget_with_a_negative_keep_is_refused(cli_repo: Path, rule: str) -> None:
    ids = three_snapshots(cli_repo)
    result = run("forget", "--repo", str(cli_repo), f"--keep-{rule}", "-1", "--prune", "--safety-window", "0")
    assert result.exit_code == EXIT_FAILED
    assert f"--keep-{rule} -1: a keep count must be 1 or more" in one_line_error(result)
    assert snapshot_ids(cli_repo) == set(ids)


@pytest.mark.parametrize("rule", ["last", "daily"])
def test_forget_with_a_zero_keep_is_refused(cli_repo: Path, rule: str) -> None:
    ids = three_snapshots(cli_repo)
    result = run("forget", "--repo", str(cli_repo), "--keep-weekly", "2", f"--keep-{rule}", "0")
    assert result.exit_code == EXIT_FAILED
    assert f"--keep-{rule} 0: a keep count must be 1 or more" in one_line_error(result)
    assert snapshot_ids(cli_repo) == set(ids)


def test_a_negative_count_is_refused_by_the_policy_itself() -> None:
    with pytest.raises(UsageError, match="--keep-monthly -3"):
        KeepPolicy(monthly=-3)


def test_forget_with_no_rule_says_how_to_forget_everything(cli_repo: Path) -> None:
    three_snapshots(cli_repo)
    result = run("forget", "--repo", str(cli_repo))
    assert result.exit_code == EXIT_FAILED and "--keep-none" in one_line_error(result)


def test_forget_keep_none_forgets_every_unprotected_snapshot_of_the_source(cli_repo: Path) -> None:
    web = three_snapshots(cli_repo, "web01")
    db = three_snapshots(cli_repo, "db01")
    run_json("protect", web[0], "--repo", str(cli_repo))
    doc = run_json("forget", "--repo", str(cli_repo), "--keep-none", "--source", "web01")
    assert {d["id"] for d in doc["snapshots"] if not d["keep"]} == set(web[1:])
    assert snapshot_ids(cli_repo) == {web[0], *db}


def test_forget_keep_none_with_a_keep_rule_is_refused(cli_repo: Path) -> None:
    ids = three_snapshots(cli_repo)
    result = run("forget", "--repo", str(cli_repo), "--keep-none", "--keep-last", "1")
    assert result.exit_code == EXIT_FAILED and "cannot be combined" in one_line_error(result)
    assert snapshot_ids(cli_repo) == set(ids)


# -- 7. a damaged manifest or index: named by check, forgotten by id, and prune runs again -----


def damage(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_check_names_a_snapshot_whose_manifest_is_damaged(cli_repo: Path) -> None:
    _good, bad, _ = three_snapshots(cli_repo)
    damage(cli_repo / "snapshots" / bad)
    doc = run_json("check", "--repo", str(cli_repo), expect=EXIT_FAILED)
    assert doc["damaged_snapshots"] == [bad]
    assert doc["snapshot_problems"][0]["snapshot"] == bad and doc["snapshot_problems"][0]["problem"] == "manifest"
    human = run("check", "--repo", str(cli_repo))
    assert human.exit_code == EXIT_FAILED
    assert f"damaged snapshots: {bad[:8]}" in human.stdout and f"hvbackup forget {bad[:8]}" in human.stdout


def test_check_names_a_snapshot_whose_index_is_damaged(cli_repo: Path) -> None:
    _, bad, _ = three_snapshots(cli_repo)
    damage(cli_repo / "indexes" / bad / "0")
    doc = run_json("check", "--repo", str(cli_repo), expect=EXIT_FAILED)
    assert doc["damaged_snapshots"] == [bad] and doc["snapshot_problems"][0]["problem"] == "index"


def test_a_damaged_manifest_is_forgotten_by_id_prefix_and_prune_runs_again(cli_repo: Path) -> None:
    good, bad, other = three_snapshots(cli_repo)
    damage(cli_repo / "snapshots" / bad)
    blocked = run("prune", "--repo", str(cli_repo), "--safety-window", "0")
    assert blocked.exit_code == EXIT_FAILED
    assert f"remove it with `hvbackup forget {bad[:8]}`" in one_line_error(blocked)
    doc = run_json("forget", bad[:8], "--repo", str(cli_repo))
    assert [(d["id"], d["source"]) for d in doc["snapshots"]] == [(bad, None)]
    assert "manifest is damaged" in doc["snapshots"][0]["manifest_error"]
    pruned = run_json("prune", "--repo", str(cli_repo), "--safety-window", "0")
    assert pruned["chunks_deleted"] == 1 and pruned["snapshots"] == 2
    assert run_json("check", "--repo", str(cli_repo), "--read-data")["ok"] is True
    assert snapshot_ids(cli_repo) == {good, other}


def test_forget_by_id_refuses_a_protected_snapshot_and_deletes_none(cli_repo: Path) -> None:
    ids = three_snapshots(cli_repo)
    run_json("protect", ids[1], "--repo", str(cli_repo))
    result = run("forget", ids[0], ids[1][:10], "--repo", str(cli_repo))
    assert result.exit_code == EXIT_FAILED and f"{ids[1][:8]} is protected" in one_line_error(result)
    assert snapshot_ids(cli_repo) == set(ids)


def test_forget_by_id_with_keep_rules_is_refused(cli_repo: Path) -> None:
    ids = three_snapshots(cli_repo)
    result = run("forget", ids[0], "--repo", str(cli_repo), "--keep-last", "1")
    assert result.exit_code == EXIT_FAILED and "not both" in one_line_error(result)
    assert snapshot_ids(cli_repo) == set(ids)


def test_forget_by_id_table_and_dry_run(cli_repo: Path) -> None:
    ids = three_snapshots(cli_repo)
    dry = run("forget", ids[2], "--repo", str(cli_repo), "--dry-run")
    assert dry.exit_code == 0 and ids[2][:8] in dry.stdout and "would remove" in dry.stdout
    assert snapshot_ids(cli_repo) == set(ids)


# -- 8c. an emptied keys/ folder is not a wrong passphrase -------------------------------------


def test_an_emptied_keys_folder_is_not_reported_as_a_wrong_passphrase(cli_repo: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "repo.key"
    run_json("key", "export", "--repo", str(cli_repo), "-o", str(key_file))
    for slot in (cli_repo / "keys").iterdir():
        slot.unlink()
    result = run("snapshots", "--repo", str(cli_repo))
    assert result.exit_code == EXIT_FAILED
    line = one_line_error(result)
    assert "has no key slots (its keys/ folder is empty or gone)" in line and "wrong passphrase" not in line
    assert "--key-file" in line
    with_key = run("snapshots", "--repo", str(cli_repo), "--key-file", str(key_file), "--json", password=None)
    assert with_key.exit_code == 0 and json.loads(with_key.stdout) == []


def test_key_slots_that_are_all_unreadable_are_not_a_wrong_passphrase(cli_repo: Path) -> None:
    for slot in (cli_repo / "keys").iterdir():
        slot.write_text("{ not json")
    result = run("snapshots", "--repo", str(cli_repo))
    assert result.exit_code == EXIT_FAILED and "its one key slot is unreadable" in one_line_error(result)


# -- 9. a read-only repository, a full one, a garbage generation file ------------------------------


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Mount a real tmpfs (`mount(name, size="1m")`); unmounted afterwards."""
    mounted: list[Path] = []

    def mount(name: str, size: str = "16m") -> Path:
        point = tmp_path / name
        point.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)], check=True)
        mounted.append(point)
        return point

    yield mount
    for point in reversed(mounted):
        subprocess.run(["umount", str(point)], check=True)


def read_only_copy(repo_path: Path, tmpfs: Callable[..., Path]) -> Path:
    """A copy of the repository on a read-only mount, as an off-site copy is."""
    point = tmpfs("ro")
    shutil.copytree(repo_path, point / "repo")
    subprocess.run(["mount", "-o", "remount,ro", str(point)], check=True)
    return point / "repo"


@pytest.fixture
def read_only_repo(cli_repo: Path, tmpfs: Callable[..., Path]) -> Path:
    """A read-only copy of a repository with three snapshots."""
    three_snapshots(cli_repo)
    return read_only_copy(cli_repo, tmpfs)


def temporary_files(root: Path) -> list[Path]:
    return list(root.rglob(".tmp-*"))


@pytest.mark.root
@pytest.mark.parametrize("read_data", [[], ["--read-data"]])
def test_check_works_on_a_read_only_repository(read_only_repo: Path, read_data: list[str]) -> None:
    doc = run_json("check", "--repo", str(read_only_repo), *read_data)
    assert doc["ok"] is True and doc["snapshots"] == 3
    assert doc["chunks_read"] == (3 if read_data else 0)


def chunk_of(repo_path: Path, snapshot_id: str) -> str:
    """The hex id of the one chunk of a snapshot made by three_snapshots."""
    with open_repo(repo_path) as r:
        return next(iter(r.load_snapshot(snapshot_id).index("d").stored_ids())).hex()


@pytest.mark.root
def test_check_reports_damage_on_a_read_only_repository(cli_repo: Path, tmpfs: Callable[..., Path]) -> None:
    _, bad, _ = three_snapshots(cli_repo)
    damage(next((cli_repo / "chunks").rglob(chunk_of(cli_repo, bad))))
    doc = run_json("check", "--repo", str(read_only_copy(cli_repo, tmpfs)), "--read-data", expect=EXIT_FAILED)
    assert doc["damaged_snapshots"] == [bad]


@pytest.mark.root
@pytest.mark.parametrize("command", [["prune"], ["forget", "--keep-last", "1"], ["protect", "latest"], ["key", "add"]])
def test_a_command_that_writes_to_a_read_only_repository_says_it_is_read_only(
    read_only_repo: Path, command: list[str]
) -> None:
    result = run(*command, "--repo", str(read_only_repo), HVBACKUP_NEW_PASSWORD="another passphrase")
    assert result.exit_code == EXIT_FAILED
    assert f"the repository at {read_only_repo} is read-only (read-only file system writing" in one_line_error(result)


@pytest.mark.root
def test_prune_on_a_read_only_repository_says_it_is_read_only_in_json(read_only_repo: Path) -> None:
    doc = run_json("prune", "--repo", str(read_only_repo), expect=EXIT_FAILED)
    assert (
        doc["error"]["code"] == EXIT_FAILED
        and "is read-only (read-only file system writing a lock)" in doc["error"]["message"]
    )


@pytest.mark.root
def test_a_backup_into_a_read_only_repository_says_it_is_read_only(read_only_repo: Path, tmp_path: Path) -> None:
    image = tmp_path / "disk.raw"
    image.write_bytes(chunk_data(7))
    with Repository.open(read_only_repo, PASSWORD) as r, pytest.raises(RepositoryReadOnly, match="is read-only"):
        with r.backup_lease("backup"):
            pass
    result = run("image", "backup", str(image), "--repo", str(read_only_repo))
    assert result.exit_code == EXIT_FAILED
    assert f"the repository at {read_only_repo} is read-only" in one_line_error(result)


def fill(directory: Path) -> Path:
    """Fill the filesystem of `directory` to the last page with a file; return that file."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        while os.write(fd, bytes(4096)) == 4096:
            pass
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    os.truncate(filler, filler.stat().st_size // 4096 * 4096)
    return filler


def free_pages(filler: Path, pages: int) -> None:
    os.truncate(filler, max(0, filler.stat().st_size - 4096 * pages))


@pytest.fixture
def small_repo(tmpfs: Callable[..., Path]) -> Repository:
    point = tmpfs("small", size="1m")
    r = Repository.init(point / "repo", PASSWORD, chunk_size=CHUNK, kdf_n=FAST_KDF)
    yield r
    r.close()


@pytest.mark.root
def test_a_full_repository_while_storing_chunks_says_so_and_keeps_what_is_stored(small_repo: Repository) -> None:
    stored = []
    with small_repo.backup_lease("backup"), pytest.raises(RepositoryFull) as caught:
        for seed in range(100):
            data = random.Random(seed).randbytes(CHUNK)
            small_repo.put_chunk(small_repo.chunk_id(data), data)
            stored.append(data)
    message = str(caught.value)
    assert f"the repository at {small_repo.path} is full (no space left on device writing a chunk)" in message
    assert "`hvbackup prune` reclaims them" in message
    assert 0 < len(stored) < 100 and temporary_files(small_repo.path) == []
    assert all(small_repo.get_chunk(small_repo.chunk_id(data)) == data for data in stored)


@pytest.mark.root
def test_a_backup_into_a_full_repository_is_one_line(small_repo: Repository, tmp_path: Path) -> None:
    image = tmp_path / "disk.raw"
    image.write_bytes(random.Random(1).randbytes(2 * 1024 * 1024))
    result = run("image", "backup", str(image), "--repo", str(small_repo.path))
    assert result.exit_code == EXIT_FAILED
    assert f"the repository at {small_repo.path} is full" in one_line_error(result)
    assert small_repo.list_snapshots() == [] and temporary_files(small_repo.path) == []


@pytest.mark.root
@pytest.mark.parametrize("pages, what", [(0, "a disk index"), (8, "a snapshot manifest")])
def test_a_full_repository_while_committing_leaves_no_snapshot(small_repo: Repository, pages: int, what: str) -> None:
    big_note = random.Random(2).randbytes(128 * 1024).hex()  # a manifest larger than 8 pages, compressed
    with small_repo.backup_lease("backup"):
        index = store_disk(small_repo, [chunk_data(1)])
        filler = fill(small_repo.path.parent)
        free_pages(filler, pages)
        with pytest.raises(RepositoryFull, match=f"is full \\(no space left on device writing {what}\\)"):
            small_repo.commit_snapshot({"source": "vm", "disks": [{"name": "d"}], "note": big_note}, {"d": index})
    assert small_repo.list_snapshots() == [] and temporary_files(small_repo.path) == []
    filler.unlink()
    info = make_snapshot(small_repo, "vm", {"d": [chunk_data(1)]})
    assert [s.id for s in small_repo.list_snapshots()] == [info.id]


@pytest.mark.parametrize("content", [b"garbage\n", b"\xff\xfe", b"1.5\n"])
def test_a_garbage_generation_file_is_a_clear_error_naming_it(cli_repo: Path, content: bytes) -> None:
    three_snapshots(cli_repo)
    (cli_repo / "generation").write_bytes(content)
    where = cli_repo / "generation"
    pruned = run("prune", "--repo", str(cli_repo))
    assert pruned.exit_code == EXIT_FAILED and f"the generation file {where} is damaged" in one_line_error(pruned)
    checked = run_json("check", "--repo", str(cli_repo), expect=EXIT_FAILED)
    assert any(f"the generation file {where} is damaged" in e for e in checked["errors"])
    assert len(run_json("snapshots", "--repo", str(cli_repo))) == 3  # readers still read
    (cli_repo / "generation").write_text("1764000000\n")  # the repair the message gives
    assert run_json("check", "--repo", str(cli_repo))["ok"] is True
    assert run_json("prune", "--repo", str(cli_repo))["snapshots"] == 3


# -- friction: tables at 80 columns, non-UTF-8 sources, key export, --wait, examples -------------


def assert_fits(output: str, width: int = 80) -> None:
    assert "…" not in output
    assert all(len(line) <= width for line in output.splitlines()), output


def test_snapshots_at_80_columns_shows_whole_ids_and_sources(cli_repo: Path) -> None:
    sources = ["/srv/hyper-v/images/web01-system-disk.vhdx", "db01.example.internal"]
    with open_repo(cli_repo) as r:
        infos = [
            make_snapshot(r, source, {"system disk": [chunk_data(i)], "data disk": [None]})
            for i, source in enumerate(sources)
        ]
    table = run("snapshots", "--repo", str(cli_repo), COLUMNS="80")
    assert table.exit_code == 0
    assert_fits(table.stdout)
    lines = table.stdout.splitlines()
    for info in infos:
        assert any(info.short_id in line and info.source in line for line in lines), table.stdout
    assert "not shown at this width" in table.stdout
    wide = run("snapshots", "--repo", str(cli_repo), COLUMNS="200")
    assert "system disk" in wide.stdout and "not shown" not in wide.stdout


def test_forget_table_at_80_columns_shows_whole_ids_and_sources(cli_repo: Path) -> None:
    source = "/srv/hyper-v/images/web01-system-disk-of-the-accounting-department.vhdx"  # too long to fit
    ids = three_snapshots(cli_repo, source)
    table = run("forget", "--repo", str(cli_repo), "--keep-last", "1", "--dry-run", COLUMNS="80")
    assert table.exit_code == 0
    assert_fits(table.stdout)
    rows = [line.split("│") for line in table.stdout.splitlines() if line.startswith("│")]
    assert sorted(cells[1].strip() for cells in rows if cells[1].strip()) == sorted(i[:8] for i in ids)
    assert "".join(cells[3].strip() for cells in rows) == source * 3  # wrapped, not cut


def test_key_list_at_80_columns_shows_whole_slot_ids_and_key_remove_takes_a_prefix(cli_repo: Path) -> None:
    added = run_json(
        "key",
        "add",
        "--repo",
        str(cli_repo),
        "--label",
        "the second administrator, Ops team",
        HVBACKUP_NEW_PASSWORD="second passphrase",
    )
    table = run("key", "list", "--repo", str(cli_repo), COLUMNS="80")
    assert table.exit_code == 0
    assert_fits(table.stdout)
    slots = run_json("key", "list", "--repo", str(cli_repo))
    for slot in slots:
        assert slot["id"] in table.stdout
    removed = run_json("key", "remove", added["id"][:6], "--repo", str(cli_repo))
    assert removed == {"removed": added["id"]}
    assert [s["id"] for s in run_json("key", "list", "--repo", str(cli_repo))] == [
        s["id"] for s in slots if s["id"] != added["id"]
    ]


def test_key_remove_with_an_unknown_prefix_is_one_line(cli_repo: Path) -> None:
    result = run("key", "remove", "zz", "--repo", str(cli_repo))
    assert result.exit_code == EXIT_FAILED and "no key slot 'zz'" in one_line_error(result)


def test_snapshots_json_of_a_source_with_undecodable_bytes_is_valid_utf8(cli_repo: Path) -> None:
    source = b"/images/web\xff\xfe01.vhdx".decode("utf-8", "surrogateescape")  # as a file name arrives
    with open_repo(cli_repo) as r:
        make_snapshot(r, source, {"d": [chunk_data(1)]})
    result = run("snapshots", "--repo", str(cli_repo), "--json")
    assert result.exit_code == 0, result.stderr
    docs = json.loads(result.stdout_bytes.decode("utf-8"))  # strict: raises on invalid UTF-8
    assert docs[0]["source"] == "/images/web\\xff\\xfe01.vhdx"
    assert docs[0]["manifest"]["source"] == "/images/web\\xff\\xfe01.vhdx"
    table = run("snapshots", "--repo", str(cli_repo))
    assert table.exit_code == 0 and "/images/web\\xff\\xfe01.vhdx" in table.stdout_bytes.decode("utf-8")
    assert run_json("snapshots", "--repo", str(cli_repo), "--source", source)[0]["id"] == docs[0]["id"]


def test_key_export_refuses_to_overwrite_an_existing_file(cli_repo: Path, tmp_path: Path) -> None:
    target = tmp_path / "important.txt"
    target.write_text("not a key\n")
    result = run("key", "export", "--repo", str(cli_repo), "-o", str(target))
    assert result.exit_code == EXIT_FAILED and "refusing to overwrite" in one_line_error(result)
    assert target.read_text() == "not a key\n"
    os.chmod(target, 0o644)
    run_json("key", "export", "--repo", str(cli_repo), "-o", str(target), "--force")
    assert json.loads(target.read_text())["type"] == "hvbackup-key"
    assert os.stat(target).st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_key_export_into_a_missing_folder_is_one_line(cli_repo: Path, tmp_path: Path) -> None:
    result = run("key", "export", "--repo", str(cli_repo), "-o", str(tmp_path / "nowhere" / "k.key"))
    assert result.exit_code == EXIT_FAILED and "does not exist" in one_line_error(result)


@pytest.mark.parametrize("command", [["prune"], ["forget", "--keep-last", "1", "--prune"]])
def test_prune_with_a_negative_wait_is_refused(cli_repo: Path, command: list[str]) -> None:
    ids = three_snapshots(cli_repo)
    result = run(*command, "--repo", str(cli_repo), "--wait", "-5")
    assert result.exit_code == EXIT_FAILED and "--wait -5" in one_line_error(result)
    assert snapshot_ids(cli_repo) == set(ids)  # refused before forget removed anything


def test_check_with_zero_workers_is_refused(cli_repo: Path) -> None:
    three_snapshots(cli_repo)
    result = run("check", "--repo", str(cli_repo), "--read-data", "--workers", "0")
    assert result.exit_code == EXIT_FAILED and "--workers 0" in one_line_error(result)


def test_check_subset_without_read_data_is_refused(cli_repo: Path) -> None:
    result = run("check", "--repo", str(cli_repo), "--subset", "10%")
    assert result.exit_code == EXIT_FAILED and "--read-data" in one_line_error(result)


@pytest.mark.parametrize("group", ["key", "repo"])
def test_key_and_repo_help_have_an_example(group: str) -> None:
    result = run(group, "--help")
    assert result.exit_code == 0 and f"Example: hvbackup {group} " in result.stdout
