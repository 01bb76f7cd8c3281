"""`hvbackup restore --disk N --to FILE` and `hvbackup image restore --to FILE` are one restore:
the same options, the same JSON document, the same exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .cli_fixtures import commands, run_hvbackup

ONE_DISK_OPTIONS = [
    "disk",
    "to",
    "fmt",
    "block_size_mib",
    "verify",
    "allow_damaged",
    "overwrite",
    "repo",
    "password_file",
    "key_file",
    "source",
    "as_json",
]
MIB = 1024 * 1024


def _params(name: str) -> dict:
    command = dict(commands())[name]
    return {p.name: (p.opts, p.secondary_opts, p.help) for p in command.params}


def test_both_commands_declare_the_same_one_disk_options():
    vm_restore, image_restore = _params("restore"), _params("image restore")
    for option in ONE_DISK_OPTIONS:
        assert vm_restore[option] == image_restore[option], option


@pytest.fixture
def backed_up(tmp_path: Path) -> tuple[dict, Path, bytes]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("HVBACKUP_")}, "HVBACKUP_PASSWORD": "pw"}
    repo = tmp_path / "repo"
    assert run_hvbackup("init", "--repo", str(repo), env=env).returncode == 0
    image = tmp_path / "disk.raw"
    content = os.urandom(MIB) + bytes(3 * MIB) + os.urandom(MIB)
    image.write_bytes(content)
    assert run_hvbackup("image", "backup", "--repo", str(repo), str(image), env=env).returncode == 0
    return env, repo, content


COMMANDS = {"restore": ["restore", "latest"], "image restore": ["image", "restore", "latest"]}


def test_one_disk_restores_alike(backed_up, tmp_path: Path):
    env, repo, content = backed_up
    documents = {}
    for command, words in COMMANDS.items():
        target = tmp_path / f"{command}.raw"
        args = [*words, "--repo", str(repo), "--to", str(target), "--verify"]
        done = run_hvbackup(*args, "--json", env=env)
        assert done.returncode == 0, done.stderr
        documents[command] = json.loads(done.stdout)
        assert target.read_bytes() == content
        again = run_hvbackup(*args, env=env)
        assert again.returncode == 1 and "--overwrite" in again.stderr
    by_vm, by_image = documents["restore"], documents["image restore"]
    assert set(by_vm) == set(by_image) >= {"snapshot", "short_id", "path", "format", "size", "damaged", "verified"}
    assert by_vm["verified"] is by_image["verified"] is True and by_vm["snapshot"] == by_image["snapshot"]


def test_damage_exits_alike(backed_up, tmp_path: Path):
    env, repo, _content = backed_up
    chunks = sorted((p for p in (repo / "chunks").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    chunks[-1].unlink()
    for command, words in COMMANDS.items():
        args = [*words, "--repo", str(repo), "--to", str(tmp_path / f"{command}.raw")]
        refused = run_hvbackup(*args, "--json", env=env)
        assert refused.returncode == 1 and "--allow-damaged" in json.loads(refused.stdout)["error"]["message"]
        partial = run_hvbackup(*args, "--allow-damaged", env=env)
        assert partial.returncode == 3 and "zero-filled" in partial.stdout, command


def test_whole_vm_restore_refuses_one_disk_options(backed_up):
    env, repo, _content = backed_up
    refused = run_hvbackup("restore", "latest", "--repo", str(repo), "--host", "lab:/nowhere", "--verify", env=env)
    assert refused.returncode == 1 and "--verify applies to --disk N --to FILE" in refused.stderr
