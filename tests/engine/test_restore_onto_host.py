"""A whole-VM restore onto a host whose folders this machine cannot write in place (a remote host,
written over SMB): each disk is restored to a local temporary file and uploaded whole under a
temporary name. What was written is removed again when the restore fails; nothing is left
half-written under a final name, and no local temporary file is left."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hvbackup.disk import virtual_sha256
from hvbackup.engine.disk_restore import RestoreDamaged
from hvbackup.engine.vm_restore import restore_vm
from hvbackup.hyperv.diskwriter import LocalDiskWriter
from hvbackup.hyperv.filesource import LocalFileSource
from hvbackup.hyperv.powershell import PowerShellHost
from hvbackup.lab import LabHost
from hvbackup.lab.sample import SAMPLE_VMS, build_sample
from hvbackup.lab.transport import LabTransport
from hvbackup.repo import Repository, layout

from .conftest import PASSWORD, cli


class UploadingWriter(LocalDiskWriter):
    """The host's folders, reached only by whole-file uploads, as SmbDiskWriter reaches them
    (tests/hyperv/test_smb_writer.py tests that writer against samba)."""

    def __init__(self) -> None:
        self.uploads: list[str] = []

    def local_folder(self, path: str) -> Path | None:
        return None

    def upload(self, local: Path, path: str) -> None:
        super().upload(local, path)
        self.uploads.append(path)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHost]:
    lab = LabHost.create(tmp_path_factory.mktemp("uploadlab") / "lab", record_digests=True)
    build_sample(lab, [s for s in SAMPLE_VMS if s.name == "app-02"])
    yield lab
    lab.destroy()


@pytest.fixture(scope="module")
def repo(lab: LabHost, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("uploadrepo") / "repo"
    assert cli("init", "--repo", str(path)).code == 0
    run = cli("backup", "--host", f"lab:{lab.directory}", "--repo", str(path), "app-02", "--json")
    assert run.code == 0, run.stdout
    return path


def _our_temporaries() -> list[str]:
    return sorted(p.name for p in Path(tempfile.gettempdir()).glob("hvbackup-restore-*"))


def remote(lab: LabHost, writer: UploadingWriter) -> PowerShellHost:
    """The lab as a remote host: PowerShellHost over LabTransport, its folders reached by uploads."""
    return PowerShellHost(LabTransport(lab), LocalFileSource, poll_interval=0.0, disk_writer=writer)


def test_each_disk_is_uploaded_whole_and_the_vm_gets_them(lab: LabHost, repo: Path) -> None:
    writer = UploadingWriter()
    host = remote(lab, writer)
    before = _our_temporaries()
    with Repository.open(repo, PASSWORD) as opened:
        snap = opened.load_snapshot("app-02:latest")
        result = restore_vm(host, opened, snap, name="app-02-uploaded", start=False)
    assert len(writer.uploads) == 2 and result.folder == str(lab.directory / "vms" / "app-02-uploaded")
    copy = host.get_vm(result.vm_id)
    frozen = lab.checkpoint_digests(snap.manifest["checkpoint"]["id"])
    by_address = {d["controller"]: frozen[d["path"]] for d in snap.manifest["disks"] if d.get("controller")}
    assert {d.address: virtual_sha256(d.path) for d in copy.disks} == by_address
    assert _our_temporaries() == before


def test_a_failure_on_the_second_disk_removes_the_first_and_the_folder(lab: LabHost, repo: Path) -> None:
    with Repository.open(repo, PASSWORD) as opened:
        snap = opened.load_snapshot("app-02:latest")
        first, second = (d["name"] for d in snap.manifest["disks"] if d.get("controller"))
        only_second = snap.index(second).stored_ids() - snap.index(first).stored_ids()
    (repo / layout.chunk(sorted(only_second)[0])).unlink()  # damage only the second disk
    writer = UploadingWriter()
    host = remote(lab, writer)
    folder = lab.directory / "vms" / "app-02-broken"
    before = _our_temporaries()
    with Repository.open(repo, PASSWORD) as opened, pytest.raises(RestoreDamaged):
        restore_vm(host, opened, opened.load_snapshot("app-02:latest"), name="app-02-broken", start=False)
    assert len(writer.uploads) == 1, "the first disk was on the host before the second failed"
    assert not folder.exists(), "its disk and the folder the restore made are gone again"
    assert "app-02-broken" not in {vm.name for vm in host.inventory()}
    assert _our_temporaries() == before


def test_a_lost_vm_comes_back_in_its_original_folder_when_that_is_free(tmp_path: Path) -> None:
    import shutil

    lab = LabHost.create(tmp_path / "lab")
    build_sample(lab, [s for s in SAMPLE_VMS if s.name == "web-01"])
    repo = tmp_path / "repo"
    try:
        assert cli("init", "--repo", str(repo)).code == 0
        assert cli("backup", "--host", f"lab:{lab.directory}", "--repo", str(repo), "web-01").code == 0
        with Repository.open(repo, PASSWORD) as opened:
            snap = opened.load_snapshot("web-01:latest")
        original = Path(snap.manifest["disks"][0]["path"]).parent
        busy = cli(
            "restore", "web-01:latest", "-H", f"lab:{lab.directory}", "--repo", str(repo), "--no-start", "--json"
        )
        assert busy.code == 0, busy.stdout
        assert busy.json()["folder"] != str(original), "the original VM still exists: its folder is not free"
        lab.stop_vm(lab.get_vm("web-01"))
        shutil.rmtree(lab.folder("web-01").path)  # the VM and its files are lost; its folder is made again, empty
        original.mkdir(parents=True)
        back = cli(
            "restore", "web-01:latest", "-H", f"lab:{lab.directory}", "--repo", str(repo), "--no-start", "--json"
        )
        assert back.code == 0, back.stdout
        assert back.json()["folder"] == str(original)
    finally:
        lab.destroy()
