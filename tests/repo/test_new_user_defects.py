"""Issue 11, "What a new administrator runs into": the repository and its commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hvbackup.errors import EXIT_FAILED, UsageError
from hvbackup.repo.retention import KeepPolicy

from hvbackup.repo import Repository

from .conftest import CHUNK, FAST_KDF, PASSWORD, chunk_data, make_snapshot
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
    good, bad, _ = three_snapshots(cli_repo)
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
