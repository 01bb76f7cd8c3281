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
