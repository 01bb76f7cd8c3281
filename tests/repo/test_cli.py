"""The repository commands as a user runs them: exit codes, one-line errors, one JSON document."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hvbackup.cli.main import build_app
from hvbackup.errors import EXIT_FAILED, EXIT_LOCKED, EXIT_NO_REPOSITORY, EXIT_OK, EXIT_WRONG_PASSWORD
from hvbackup.repo import Repository

from .conftest import PASSWORD, chunk_data, chunk_file, make_snapshot, start_proc

app = build_app()

runner = CliRunner()


def run(*args: str, password: str | None = PASSWORD, **env: str):
    full_env = {"HVBACKUP_PASSWORD": password, "COLUMNS": "200", **env}
    return runner.invoke(app, list(args), env=full_env)


def run_json(*args: str, expect: int = EXIT_OK, **kw):
    result = run(*args, "--json", **kw)
    assert result.exit_code == expect, result.stderr
    return json.loads(result.stdout)  # exactly one JSON document, nothing else


@pytest.fixture
def cli_repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    doc = run_json("init", "--repo", str(path), "--chunk-size", "64KiB")
    assert doc["chunk_size"] == 64 * 1024 and len(doc["id"]) == 32
    return path


def open_repo(path: Path) -> Repository:
    return Repository.open(path, PASSWORD)


def one_line_error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    return lines[0]


def test_every_command_has_an_example_in_its_help() -> None:
    for command in (
        ["init"],
        ["key", "add"],
        ["key", "list"],
        ["key", "remove"],
        ["key", "export"],
        ["snapshots"],
        ["check"],
        ["forget"],
        ["protect"],
        ["unprotect"],
        ["prune"],
        ["unlock"],
        ["repo", "rebuild-cache"],
    ):
        result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0 and "Example:" in result.stdout, command


def test_init_twice_is_a_one_line_error(cli_repo: Path) -> None:
    result = run("init", "--repo", str(cli_repo))
    assert result.exit_code == EXIT_FAILED
    assert "not an empty directory" in one_line_error(result)


def test_exit_codes_for_missing_repository_and_wrong_password(cli_repo: Path, tmp_path: Path) -> None:
    missing = run("snapshots", "--repo", str(tmp_path / "nowhere"))
    assert missing.exit_code == EXIT_NO_REPOSITORY and "no repository" in one_line_error(missing)
    wrong = run("snapshots", "--repo", str(cli_repo), password="wrong")
    assert wrong.exit_code == EXIT_WRONG_PASSWORD and "wrong passphrase" in one_line_error(wrong)


def test_newer_format_is_a_one_line_error(cli_repo: Path) -> None:
    config = json.loads((cli_repo / "config").read_text())
    config["format_version"] = 99
    (cli_repo / "config").write_text(json.dumps(config))
    result = run("check", "--repo", str(cli_repo))
    assert result.exit_code == EXIT_FAILED and "upgrade hvbackup" in one_line_error(result)


def test_repo_from_the_environment(cli_repo: Path) -> None:
    result = runner.invoke(
        app, ["snapshots", "--json"], env={"HVBACKUP_PASSWORD": PASSWORD, "HVBACKUP_REPO": str(cli_repo)}
    )
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_password_file(cli_repo: Path, tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    result = run("snapshots", "--repo", str(cli_repo), "--password-file", str(pw), "--json", password=None)
    assert result.exit_code == 0, result.stderr


def test_snapshots_table_and_json(cli_repo: Path) -> None:
    with open_repo(cli_repo) as r:
        a = make_snapshot(r, "web01", {"sda": [chunk_data(1)]})
        b = make_snapshot(r, "db01", {"sdb": [None, chunk_data(2)]})
    docs = run_json("snapshots", "--repo", str(cli_repo))
    assert [(d["id"], d["source"], d["disks"]) for d in docs] == [(a.id, "web01", ["sda"]), (b.id, "db01", ["sdb"])]
    only = run_json("snapshots", "--repo", str(cli_repo), "--source", "db01")
    assert [d["id"] for d in only] == [b.id]
    table = run("snapshots", "--repo", str(cli_repo))
    assert table.exit_code == 0 and a.short_id in table.stdout and "web01" in table.stdout


def test_check_read_data_reports_damage_with_exit_1(cli_repo: Path) -> None:
    with open_repo(cli_repo) as r:
        a = make_snapshot(r, "web01", {"sda": [chunk_data(1), chunk_data(2)]})
        make_snapshot(r, "db01", {"sdb": [chunk_data(3)]})
        bad = r.chunk_id(chunk_data(2))
        path = chunk_file(r, bad)
    assert run_json("check", "--repo", str(cli_repo), "--read-data")["ok"] is True
    path.write_bytes(path.read_bytes()[:-5])
    doc = run_json("check", "--repo", str(cli_repo), "--read-data", expect=EXIT_FAILED)
    assert doc["damaged_snapshots"] == [a.id]
    assert doc["chunks"][0]["chunk_id"] == bad.hex()
    assert doc["chunks"][0]["used_by"][0]["disk"] == "sda"
    human = run("check", "--repo", str(cli_repo), "--read-data", "--subset", "100%")
    assert human.exit_code == EXIT_FAILED
    assert bad.hex() in human.stdout and a.short_id in human.stdout and "disk sda" in human.stdout


def test_check_rejects_a_bad_subset(cli_repo: Path) -> None:
    result = run("check", "--repo", str(cli_repo), "--read-data", "--subset", "150%")
    assert result.exit_code == EXIT_FAILED and "subset" in one_line_error(result)


def test_forget_dry_run_then_real_and_protect(cli_repo: Path) -> None:
    with open_repo(cli_repo) as r:
        infos = [make_snapshot(r, "vm", {"d": [chunk_data(i)]}) for i in range(4)]
    run_json("protect", infos[0].id[:12], "--repo", str(cli_repo))
    dry = run_json("forget", "--repo", str(cli_repo), "--keep-last", "1", "--dry-run")
    actions = {d["id"]: (d["keep"], d["reasons"]) for d in dry["snapshots"]}
    assert actions[infos[0].id] == (True, ["protected"])
    assert actions[infos[3].id] == (True, ["last 1"])
    assert actions[infos[1].id] == (False, []) and actions[infos[2].id] == (False, [])
    assert len(run_json("snapshots", "--repo", str(cli_repo))) == 4
    done = run_json("forget", "--repo", str(cli_repo), "--keep-last", "1", "--prune", "--safety-window", "0")
    assert done["prune"]["chunks_deleted"] == 2
    left = {d["id"] for d in run_json("snapshots", "--repo", str(cli_repo))}
    assert left == {infos[0].id, infos[3].id}
    run_json("unprotect", infos[0].id, "--repo", str(cli_repo))
    run_json("forget", "--repo", str(cli_repo), "--keep-last", "1")
    assert [d["id"] for d in run_json("snapshots", "--repo", str(cli_repo))] == [infos[3].id]


def test_forget_needs_a_rule(cli_repo: Path) -> None:
    result = run("forget", "--repo", str(cli_repo))
    assert result.exit_code == EXIT_FAILED and "no keep rule" in one_line_error(result)


def test_prune_locked_by_a_running_backup_exits_11(cli_repo: Path) -> None:
    holder = start_proc("hold-lease", cli_repo)
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = run("prune", "--repo", str(cli_repo))
        assert result.exit_code == EXIT_LOCKED
        assert f"pid {holder.pid}" in one_line_error(result)
        unlock = run_json("unlock", "--repo", str(cli_repo))
        assert unlock["removed"] == [] and len(unlock["remaining"]) == 1  # a live lease is not stale
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        unlock = run_json("unlock", "--repo", str(cli_repo))
        assert [lock["pid"] for lock in unlock["removed"]] == [holder.pid]
        assert run_json("prune", "--repo", str(cli_repo))["chunks_deleted"] == 0
    finally:
        holder.kill()
        holder.wait()


def test_unlock_force_removes_live_locks(cli_repo: Path) -> None:
    with open_repo(cli_repo) as r, r.backup_lease("live"):
        doc = run_json("unlock", "--repo", str(cli_repo), "--force")
        assert [lock["description"] for lock in doc["removed"]] == ["live"]
        assert list((cli_repo / "locks").iterdir()) == []


def test_keys_add_list_export_and_key_file(cli_repo: Path, tmp_path: Path) -> None:
    added = run_json(
        "key", "add", "--repo", str(cli_repo), "--label", "second admin", HVBACKUP_NEW_PASSWORD="second passphrase"
    )
    slots = run_json("key", "list", "--repo", str(cli_repo), password="second passphrase")
    assert {s["label"] for s in slots} == {"initial", "second admin"}
    assert [s["id"] for s in slots if s["current"]] == [added["id"]]
    exported = run("key", "export", "--repo", str(cli_repo))
    assert exported.exit_code == 0 and json.loads(exported.stdout)["type"] == "hvbackup-key"
    key_file = tmp_path / "repo.key"
    run_json("key", "export", "--repo", str(cli_repo), "-o", str(key_file))
    assert os.stat(key_file).st_mode & 0o777 == 0o600
    first = next(s["id"] for s in slots if not s["current"])
    run_json("key", "remove", first, "--repo", str(cli_repo), password="second passphrase")
    assert run("snapshots", "--repo", str(cli_repo)).exit_code == EXIT_WRONG_PASSWORD
    via_key = run("snapshots", "--repo", str(cli_repo), "--key-file", str(key_file), "--json", password=None)
    assert via_key.exit_code == 0 and json.loads(via_key.stdout) == []


def test_rebuild_cache(cli_repo: Path) -> None:
    with open_repo(cli_repo) as r:
        make_snapshot(r, "vm", {"d": [chunk_data(1), chunk_data(2), None]})
    assert run_json("repo", "rebuild-cache", "--repo", str(cli_repo)) == {"chunks": 2}


def test_each_command_loads_the_module_that_serves_it() -> None:
    """`hvbackup <command>` loads only the module COMMAND_MODULES names: it must hold that command."""
    from hvbackup.cli.main import COMMAND_MODULES

    for command, module in COMMAND_MODULES.items():
        result = runner.invoke(build_app(command), [command, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, f"{command} is not in {module}: {result.output}"
    everything = runner.invoke(build_app(), ["--help"], env={"COLUMNS": "200"}).output
    for command in (*COMMAND_MODULES, "init", "snapshots", "check", "prune", "key", "repo"):
        assert command in everything
