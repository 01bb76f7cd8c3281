"""Opening a repository: passphrases, key slots, exported keys, and the ways opening fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hvbackup.errors import EXIT_NO_REPOSITORY, EXIT_WRONG_PASSWORD, UsageError
from hvbackup.repo import Repository
from hvbackup.repo.crypto import KeyMaterial
from hvbackup.repo.errors import RepositoryExists, RepositoryNotFound, UnsupportedFormat, WrongPassword
from hvbackup.repo.keys import SCRYPT_N

from .conftest import CHUNK, FAST_KDF, PASSWORD, chunk_data, make_snapshot


def test_wrong_password(repo: Repository, repo_path: Path) -> None:
    with pytest.raises(WrongPassword) as err:
        Repository.open(repo_path, "not the passphrase")
    assert err.value.exit_code == EXIT_WRONG_PASSWORD
    assert "\n" not in str(err.value)


def test_missing_repository(tmp_path: Path) -> None:
    with pytest.raises(RepositoryNotFound) as err:
        Repository.open(tmp_path / "nothing-here", PASSWORD)
    assert err.value.exit_code == EXIT_NO_REPOSITORY


def test_directory_without_config_is_not_a_repository(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "file.txt").write_text("hello")
    with pytest.raises(RepositoryNotFound, match="no config"):
        Repository.open(tmp_path / "plain", PASSWORD)


def test_newer_format_version_is_refused_clearly(repo: Repository, repo_path: Path) -> None:
    config = json.loads((repo_path / "config").read_text())
    config["format_version"] += 1
    (repo_path / "config").write_text(json.dumps(config))
    with pytest.raises(UnsupportedFormat, match="newer than this hvbackup supports"):
        Repository.open(repo_path, PASSWORD)


def test_init_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "precious").write_text("do not touch")
    with pytest.raises(RepositoryExists):
        Repository.init(target, PASSWORD)
    assert sorted(p.name for p in target.iterdir()) == ["precious"]


def test_init_refuses_twice(repo: Repository, repo_path: Path) -> None:
    with pytest.raises(RepositoryExists):
        Repository.init(repo_path, PASSWORD)


def test_init_rejects_a_bad_chunk_size(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="power of two"):
        Repository.init(tmp_path / "r", PASSWORD, chunk_size=3_000_000)
    assert not (tmp_path / "r").exists()


def test_default_key_slot_uses_the_documented_scrypt_cost(tmp_path: Path) -> None:
    with Repository.init(tmp_path / "r", PASSWORD, chunk_size=CHUNK) as r:
        (slot,) = r.key_slots()
    assert (slot.doc["kdf"], slot.doc["n"], slot.doc["r"], slot.doc["p"]) == ("scrypt", SCRYPT_N, 8, 1)
    assert 2**15 <= SCRYPT_N <= 2**17


def test_second_key_slot_opens_and_removal(repo: Repository, repo_path: Path) -> None:
    info = make_snapshot(repo, "vm1", {"d": [chunk_data(1)]})
    second = repo.add_key_slot("another passphrase", "backup admin", kdf_n=FAST_KDF)
    repo.close()
    with Repository.open(repo_path, "another passphrase") as r2:
        assert r2.slot_id == second.slot_id
        assert r2.load_snapshot(info.id).index("d")[0] == r2.chunk_id(chunk_data(1))
        with pytest.raises(UsageError, match="in use"):
            r2.remove_key_slot(second.slot_id)
        first = next(s.slot_id for s in r2.key_slots() if s.slot_id != second.slot_id)
        r2.remove_key_slot(first)
    with pytest.raises(WrongPassword):
        Repository.open(repo_path, PASSWORD)
    with Repository.open(repo_path, "another passphrase") as r3, pytest.raises(UsageError, match="last key slot"):
        r3.remove_key_slot(second.slot_id)


def test_exported_key_opens_without_any_passphrase(repo: Repository, repo_path: Path) -> None:
    info = make_snapshot(repo, "vm1", {"d": [chunk_data(2)]})
    exported = repo.export_key()
    repo.close()
    repo_id, key = KeyMaterial.import_(exported)
    with Repository.open(repo_path, key=key) as r:
        assert r.id == repo_id
        assert r.get_chunk(r.chunk_id(chunk_data(2))) == chunk_data(2)
        assert r.load_snapshot(info.id).info.source == "vm1"
        # a lost passphrase is recovered by adding a new slot with the exported key
        r.add_key_slot("new passphrase", kdf_n=FAST_KDF)
    Repository.open(repo_path, "new passphrase").close()


def test_a_foreign_key_is_a_wrong_password(repo: Repository, repo_path: Path) -> None:
    with pytest.raises(WrongPassword):
        Repository.open(repo_path, key=KeyMaterial.generate())
