"""`hvbackup restore` of whole VMs through the CLI: which snapshot `latest` means, clashes refused
before any disk is written, an exported key, and every option the command's messages mention."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from hvbackup.disk import virtual_sha256
from hvbackup.hyperv.powershell import PowerShellHost
from hvbackup.lab import LabHost, powershell_host
from hvbackup.lab.sample import SAMPLE_VMS, build_sample
from hvbackup.repo import Repository

from .conftest import PASSWORD, CliResult, cli


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHost]:
    """web-01 (one disk) and app-02 (two disks), both running, backed up once into one repository."""
    lab = LabHost.create(tmp_path_factory.mktemp("restorelab") / "lab", record_digests=True)
    build_sample(lab, [s for s in SAMPLE_VMS if s.name in ("web-01", "app-02")])
    yield lab
    lab.destroy()


@pytest.fixture(scope="module")
def backed_up(lab: LabHost, tmp_path_factory: pytest.TempPathFactory) -> dict:
    repo = tmp_path_factory.mktemp("restorerepo") / "repo"
    assert cli("init", "--repo", str(repo)).code == 0
    run = cli("backup", "--host", f"lab:{lab.directory}", "--repo", str(repo), "web-01", "app-02", "--json")
    assert run.code == 0, run.stderr
    return {"repo": repo, **{vm["name"]: vm["snapshot"] for vm in run.json()["vms"]}}


def restore(lab: LabHost, backed_up: dict, *args: str, password: str | None = PASSWORD) -> CliResult:
    return cli(
        "restore",
        *args,
        "--host",
        f"lab:{lab.directory}",
        "--repo",
        str(backed_up["repo"]),
        "--no-start",
        "--json",
        password=password,
    )


def ps(lab: LabHost) -> PowerShellHost:
    """The lab as the CLI sees it: PowerShellHost over LabTransport (what a real host runs above the transport)."""
    return powershell_host(lab)


def vm_names(lab: LabHost) -> list[str]:
    return sorted(vm.name for vm in ps(lab).inventory())


def no_staging_left(lab: LabHost) -> bool:
    staging = lab.directory / ".restore-staging"
    return not staging.exists() or not any(staging.iterdir())


# -- item 2: `latest` -----------------------------------------------------------------------


def test_restore_latest_of_a_repository_with_two_vms_is_refused_with_the_sources(lab: LabHost, backed_up: dict) -> None:
    before = vm_names(lab)
    refused = restore(lab, backed_up, "latest", "--name", "web-01-test")
    assert refused.code == 1
    message = refused.json()["error"]["message"]
    assert "app-02" in message and "web-01" in message and "--source" in message
    assert "Traceback" not in refused.stderr
    assert vm_names(lab) == before


@pytest.mark.parametrize(
    "how",
    [["web-01:latest"], ["latest", "--source", "web-01"], ["latest", "-s", "web-01"]],
    ids=["SOURCE:latest", "--source", "-s"],
)
def test_restore_latest_of_one_source_restores_that_vm(lab: LabHost, backed_up: dict, how: list[str]) -> None:
    name = f"web-01-test-{len(ps(lab).inventory())}"
    restored = restore(lab, backed_up, *how, "--name", name)
    assert restored.code == 0, restored.stderr
    data = restored.json()
    with Repository.open(backed_up["repo"], PASSWORD) as repo:
        snap = repo.load_snapshot("web-01:latest")
    assert data["snapshot"] == snap.info.id and data["name"] == name
    assert len(data["disks"]) == 1  # app-02 has two
    copy = ps(lab).get_vm(data["vm_id"])
    frozen = lab.checkpoint_digests(snap.manifest["checkpoint"]["id"])
    assert virtual_sha256(copy.disks[0].path) == frozen[snap.manifest["disks"][0]["path"]]


# -- item 3: clashes --------------------------------------------------------------------------


def test_restore_with_the_name_of_an_existing_vm_is_refused_before_any_disk_is_written(
    lab: LabHost, backed_up: dict
) -> None:
    before = vm_names(lab)
    for taken in ("web-01", "WEB-01"):  # Hyper-V compares names without case
        refused = restore(lab, backed_up, "web-01:latest", "--name", taken)
        assert refused.code == 1
        assert "already exists" in refused.json()["error"]["message"] and "--name" in refused.json()["error"]["message"]
    assert vm_names(lab) == before and no_staging_left(lab)
    again = cli("backup", "--host", f"lab:{lab.directory}", "--repo", str(backed_up["repo"]), "web-01", "--json")
    assert again.code == 0, again.stdout  # one VM named web-01, so the next backup finds it


def test_restore_keeping_the_macs_of_a_running_original_is_refused(lab: LabHost, backed_up: dict) -> None:
    before = vm_names(lab)
    refused = restore(lab, backed_up, "web-01:latest", "--name", "web-01-macs", "--keep-macs")
    assert refused.code == 1
    message = refused.json()["error"]["message"]
    mac = ps(lab).get_vm("web-01").network_adapters[0].mac_address
    plain = message.replace(":", "").replace("-", "").upper()  # however the MAC is spelled
    assert mac.replace(":", "").replace("-", "").upper() in plain and "web-01" in message and "Running" in message
    assert vm_names(lab) == before and no_staging_left(lab)


def test_two_restores_of_one_snapshot_get_different_default_names(lab: LabHost, backed_up: dict) -> None:
    first = restore(lab, backed_up, backed_up["app-02"])
    second = restore(lab, backed_up, backed_up["app-02"])
    assert first.code == 0 and second.code == 0, first.stderr + second.stderr
    short = backed_up["app-02"][:8]
    assert first.json()["name"] == f"app-02-restored-{short}"
    assert second.json()["name"] == f"app-02-restored-{short}-2"
    assert len({first.json()["vm_id"], second.json()["vm_id"]}) == 2


@pytest.mark.parametrize("bad", ["../../evil", "..", "a/b", "a\\b", "x" * 101, " web", "tab\there"])
def test_restore_with_a_name_that_is_not_a_vm_name_is_refused_and_writes_nothing(
    lab: LabHost, backed_up: dict, bad: str
) -> None:
    outside = sorted(p.name for p in lab.directory.parent.iterdir())
    before = vm_names(lab)
    refused = restore(lab, backed_up, "web-01:latest", "--name", bad)
    assert refused.code == 1 and "Traceback" not in refused.stderr
    assert "VM name" in refused.json()["error"]["message"]
    assert vm_names(lab) == before and no_staging_left(lab)
    assert sorted(p.name for p in lab.directory.parent.iterdir()) == outside
    assert not (lab.directory.parent.parent / "evil").exists()


# -- item 6: an exported key, and the options the messages mention ------------------------------


def test_a_vm_is_restored_with_only_an_exported_key(lab: LabHost, backed_up: dict, tmp_path: Path) -> None:
    key = tmp_path / "repo.key"
    assert cli("key", "export", "--repo", str(backed_up["repo"]), "-o", str(key)).code == 0
    restored = restore(
        lab, backed_up, "web-01:latest", "--name", "web-01-by-key", "--key-file", str(key), password=None
    )
    assert restored.code == 0, restored.stderr
    assert ps(lab).get_vm("web-01-by-key").id == restored.json()["vm_id"]
    backup = cli(
        "backup",
        "--host",
        f"lab:{lab.directory}",
        "--repo",
        str(backed_up["repo"]),
        "web-01",
        "--key-file",
        str(key),
        "--json",
        password=None,
    )
    assert backup.code == 0, backup.stdout


def test_restore_offers_allow_damaged_as_its_message_says(lab: LabHost, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert cli("init", "--repo", str(repo)).code == 0
    run = cli("backup", "--host", f"lab:{lab.directory}", "--repo", str(repo), "web-01", "--json")
    assert run.code == 0, run.stdout
    chunks = sorted((repo / "chunks").rglob("*"), key=lambda p: p.stat().st_size if p.is_file() else 0)
    chunks[-1].unlink()  # the biggest chunk: a data chunk of the disk
    damaged = cli(
        "restore",
        "web-01:latest",
        "--host",
        f"lab:{lab.directory}",
        "--repo",
        str(repo),
        "--name",
        "web-01-damaged",
        "--no-start",
        "--json",
    )
    assert damaged.code == 1
    assert "--allow-damaged" in damaged.json()["error"]["message"]
    assert "web-01-damaged" not in vm_names(lab)
    allowed = cli(
        "restore",
        "web-01:latest",
        "--host",
        f"lab:{lab.directory}",
        "--repo",
        str(repo),
        "--name",
        "web-01-damaged",
        "--no-start",
        "--allow-damaged",
        "--json",
    )
    assert allowed.code == 3, allowed.stdout  # partial: something was zero-filled
    assert len(allowed.json()["disks"][0]["damaged"]) == 1
    human = cli(
        "restore",
        "web-01:latest",
        "--repo",
        str(repo),
        "--disk",
        "0",
        "--to",
        str(tmp_path / "d.raw"),
        "--allow-damaged",
    )
    assert human.code == 3 and "zero-filled" in human.stdout


def test_restore_of_one_disk_offers_overwrite_as_its_message_says(
    lab: LabHost, backed_up: dict, tmp_path: Path
) -> None:
    target = tmp_path / "web-01.vhdx"
    target.write_bytes(b"an older copy")
    args = ["restore", "web-01:latest", "--repo", str(backed_up["repo"]), "--disk", "0", "--to", str(target)]
    refused = cli(*args)
    assert refused.code == 1 and "--overwrite" in refused.stderr
    assert target.read_bytes() == b"an older copy"
    replaced = cli(*args, "--overwrite", "--json")
    assert replaced.code == 0, replaced.stdout
    assert target.stat().st_size > 1024 * 1024
    whole_vm = restore(lab, backed_up, "web-01:latest", "--overwrite")
    assert whole_vm.code == 1 and "--disk N --to FILE" in whole_vm.json()["error"]["message"]


# -- onto a host: what the host can create, its switches, its folders (issue 13) ----------------


def _with_host(lab: LabHost, **changes) -> dict:
    """Change the lab's host facts (as Get-VMHost / Get-VMHostSupportedVersion would report them);
    returns the old settings to put back."""
    from hvbackup.lab.folder import read_lab_file, write_lab_file

    settings = read_lab_file(lab.directory)
    old = json.loads(json.dumps(settings))
    settings["host"].update(changes)
    write_lab_file(lab.directory, settings)
    return old


def _files_under(lab: LabHost) -> list[str]:
    return sorted(str(p.relative_to(lab.directory)) for p in (lab.directory / "vms").rglob("*"))


def test_a_configuration_version_the_host_cannot_create_is_refused_before_any_disk_is_written(
    lab: LabHost, backed_up: dict
) -> None:
    from hvbackup.lab.folder import write_lab_file

    before = _files_under(lab)
    old = _with_host(lab, supported_versions=["5.0", "6.2", "7.0"], default_version="7.0")
    try:
        refused = restore(lab, backed_up, "web-01:latest", "--name", "web-01-old-host")
    finally:
        write_lab_file(lab.directory, old)
    assert refused.code == 1 and "Traceback" not in refused.stderr
    message = refused.json()["error"]["message"]
    assert "configuration versions 5.0, 6.2, 7.0" in message and "newer host" in message
    assert _files_under(lab) == before


def test_the_host_default_version_is_taken_when_it_can_hold_the_vm(lab: LabHost, backed_up: dict) -> None:
    restored = restore(lab, backed_up, "web-01:latest", "--name", "web-01-default-version")
    assert restored.code == 0, restored.stderr
    assert ps(lab).get_vm(restored.json()["vm_id"]).version == ps(lab).host_info().default_version


def test_a_destination_folder_receives_the_disks_and_an_existing_file_there_is_refused(
    lab: LabHost, backed_up: dict
) -> None:
    folder = lab.directory / "vms" / "given-folder"
    restored = restore(lab, backed_up, "web-01:latest", "--name", "web-01-given", "--destination", str(folder))
    assert restored.code == 0, restored.stderr
    assert restored.json()["folder"] == str(folder)
    copy = ps(lab).get_vm(restored.json()["vm_id"])
    assert all(Path(d.path).is_relative_to(folder) for d in copy.disks)
    other = lab.directory / "vms" / "taken-folder"
    other.mkdir()
    (other / Path(copy.disks[0].path).name).write_bytes(b"the administrator's file")
    refused = restore(lab, backed_up, "web-01:latest", "--name", "web-01-taken", "--destination", str(other))
    assert refused.code == 1 and "exists on the host" in refused.json()["error"]["message"]
    assert sorted(p.name for p in other.iterdir()) == [Path(copy.disks[0].path).name]


def test_a_gen2_backup_captures_its_configuration_files_and_does_not_warn(lab: LabHost, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert cli("init", "--repo", str(repo)).code == 0
    run = cli("backup", "--host", f"lab:{lab.directory}", "--repo", str(repo), "web-01", "--json")
    assert run.code == 0, run.stdout
    (vm,) = run.json()["vms"]
    with Repository.open(repo, PASSWORD) as opened:
        manifest = opened.load_snapshot(vm["snapshot"]).manifest
    assert {c["kind"] for c in manifest["config_files"]} == {"vmcx", "vmgs"}
    names = {d["name"] for d in manifest["disks"]}
    assert all(c["disk"] in names and c["size"] > 0 for c in manifest["config_files"])
    assert not any(".vmgs" in w for w in vm["warnings"])


def test_an_adapter_whose_switch_the_host_lacks_is_refused_before_any_disk_and_switch_connects_it(
    lab: LabHost, backed_up: dict
) -> None:
    assert any(n.switch_name for n in ps(lab).get_vm("web-01").network_adapters)
    from hvbackup.lab.folder import read_lab_file, write_lab_file

    settings = read_lab_file(lab.directory)
    old = json.loads(json.dumps(settings))
    settings["switches"] = ["Only Switch"]
    write_lab_file(lab.directory, settings)
    before = _files_under(lab)
    try:
        refused = restore(lab, backed_up, "web-01:latest", "--name", "web-01-no-switch")
        connected = restore(lab, backed_up, "web-01:latest", "--name", "web-01-switched", "--switch", "Only Switch")
    finally:
        write_lab_file(lab.directory, old)
    assert refused.code == 1, refused.stdout
    message = refused.json()["error"]["message"]
    assert "no virtual switch" in message and "Only Switch" in message and "--switch" in message
    assert connected.code == 0, connected.stdout
    copy = ps(lab).get_vm(connected.json()["vm_id"])
    assert {n.switch_name for n in copy.network_adapters} == {"Only Switch"}
    assert [f for f in _files_under(lab) if f not in before and "web-01-no-switch" in f] == []


def test_a_backup_whose_configuration_files_cannot_be_named_warns_and_cannot_be_imported(
    lab: LabHost, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    assert cli("init", "--repo", str(repo)).code == 0
    lab.fail_operation("checkpoint_files", 32779, vm="web-01")
    run = cli("backup", "--host", f"lab:{lab.directory}", "--repo", str(repo), "web-01", "--json")
    assert run.code == 0, run.stdout  # a warning, never a failed backup
    (vm,) = run.json()["vms"]
    assert any("configuration files not captured" in w for w in vm["warnings"])
    assert any(".vmgs" in w and "NVRAM" in w for w in vm["warnings"])  # web-01 is Generation 2
    with Repository.open(repo, PASSWORD) as opened:
        assert opened.load_snapshot(vm["snapshot"]).manifest.get("config_files") in (None, [])
    before = _files_under(lab)
    refused = restore(lab, {"repo": repo}, "web-01:latest", "--name", "web-01-imported-2", "--import-config")
    assert refused.code == 1 and "no configuration file (.vmcx)" in refused.json()["error"]["message"]
    assert _files_under(lab) == before


def test_a_vm_is_imported_from_its_captured_configuration_files(lab: LabHost, backed_up: dict) -> None:
    with Repository.open(backed_up["repo"], PASSWORD) as repo:
        manifest = repo.load_snapshot("web-01:latest").manifest
    assert {c["kind"] for c in manifest["config_files"]} == {"vmcx", "vmgs"}  # web-01: Gen 2, running
    imported = restore(lab, backed_up, "web-01:latest", "--name", "web-01-imported", "--import-config")
    assert imported.code == 0, imported.stdout
    copy = ps(lab).get_vm(imported.json()["vm_id"])
    original = ps(lab).get_vm("web-01")
    assert copy.id != original.id and copy.name == "web-01-imported"
    assert (copy.generation, copy.version, copy.processor_count) == (
        original.generation,
        original.version,
        original.processor_count,
    )
    assert not {n.mac_address for n in copy.network_adapters} & {n.mac_address for n in original.network_adapters}
    folder = Path(imported.json()["folder"])
    assert sorted(p.suffix for p in folder.rglob("*.vm*")) == [".vmcx", ".vmgs"]
