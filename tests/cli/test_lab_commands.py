"""`hvbackup lab ...` (cmd_lab.py) as issue 11 found it: `--host lab:DIR` as well as DIR, and
`lab create` on a path that cannot become a lab."""

from __future__ import annotations

from pathlib import Path

from tests.engine.conftest import cli


def _one_line(result, *words: str) -> None:
    assert result.code == 1, (result.stdout, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def test_lab_commands_take_host_lab_dir_as_well_as_dir(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    spec = f"lab:{lab}"
    created = cli("lab", "create", "--host", spec, "--json", password=None)
    assert created.code == 0, created.stderr
    assert created.json()["directory"] == str(lab.resolve())
    assert cli("lab", "list", "--host", spec, "--json", password=None).json() == []
    assert cli("lab", "list", str(lab), "--json", password=None).json() == []
    assert cli("lab", "list", str(lab), "--host", spec, "--json", password=None).json() == []
    for args in (
        ["start", "--host", spec, "nope"],
        ["start", str(lab), "nope"],
        ["reset-rct", "--host", spec, "nope"],
        ["write", "--host", spec, "nope", "/x", "--text", "x"],
    ):
        _one_line(cli("lab", *args, password=None), "no VM 'nope'")
    _one_line(cli("lab", "start", "--host", spec, password=None), "missing argument VM")
    _one_line(cli("lab", "list", str(tmp_path / "other"), "--host", spec, password=None), "two lab folders")
    _one_line(cli("lab", "list", "--host", "local", password=None), "not a lab host", "lab:DIR")
    _one_line(cli("lab", "list", password=None), "DIR or --host lab:DIR")
    assert cli("lab", "destroy", "--host", spec, "--json", password=None).code == 0
    assert not lab.exists()


def test_lab_create_on_a_file_says_it_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "lab.txt"
    path.write_text("notes")
    _one_line(cli("lab", "create", str(path), password=None), "lab.txt is a file, not a folder")
    assert path.read_text() == "notes"


def test_lab_create_on_a_non_empty_folder_says_whether_it_is_a_lab(tmp_path: Path) -> None:
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"jpeg")
    _one_line(cli("lab", "create", str(other), password=None), "is not empty and is not a lab")
    assert [p.name for p in other.iterdir()] == ["cat.jpg"]
    lab = tmp_path / "lab"
    assert cli("lab", "create", str(lab), password=None).code == 0
    _one_line(cli("lab", "create", str(lab), password=None), "already a lab host", "hvbackup lab destroy")
