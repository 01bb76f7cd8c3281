"""The restore operations of PowerShellHost (create_vm's folder, list_switches, checkpoint_files,
import_vm) against the scripts' documented shapes, and the disk writer each kind of host gets."""

from __future__ import annotations

import pytest

from hvbackup.hyperv.diskwriter import LocalDiskWriter, writer_for
from hvbackup.hyperv.enums import SnapshotType
from hvbackup.hyperv.filesource import LocalFileSource
from hvbackup.hyperv.host import host_path_folder, join_host_path
from hvbackup.hyperv.model import Checkpoint, VmConfig
from hvbackup.hyperv.smb import SmbCredentials, SmbDiskOpener
from hvbackup.hyperv.smb_writer import SmbDiskWriter
from hvbackup.hyperv.wire import vm_from_json

from .hyperv_fixtures import fixture
from .test_shapes import assert_enum, assert_printed_by, check_vm


@pytest.fixture
def web01():
    return vm_from_json(fixture("inventory.json")["VMs"][0])


def test_shapes_of_the_restore_scripts() -> None:
    switches = fixture("list_switches.json")
    assert_printed_by(switches, "list_switches")
    for switch in switches["Switches"]:
        assert_printed_by(switch, "list_switches")
        assert_enum(switch["SwitchType"])
    files = fixture("checkpoint_files.json")
    assert_printed_by(files, "checkpoint_files")
    for item in files["Files"]:
        assert_printed_by(item, "checkpoint_files")
    imported = fixture("import_vm.json")
    assert_printed_by(imported, "import_vm")
    check_vm(imported["VM"])


def test_create_vm_puts_the_configuration_beside_the_restored_disks(ps_host, replay, web01) -> None:
    replay.queue("create_vm", "create_vm.json")
    ps_host.create_vm(web01.config(), "web01-restored", ["D:\\Restore\\web01-restored\\web01.vhdx"])
    assert replay.calls[0][1]["Path"] == "D:\\Restore\\web01-restored"


def test_list_switches_names_every_switch(ps_host, replay) -> None:
    replay.queue("list_switches", "list_switches.json")
    assert ps_host.list_switches() == ["External", "Backup LAN"]


def test_checkpoint_files_names_each_file_with_its_kind(ps_host, replay) -> None:
    replay.queue("checkpoint_files", "checkpoint_files.json")
    checkpoint = Checkpoint("6D7C2B1A-0E9F-4C8D-B7A6-5F4E3D2C1B0A", "hvbackup-x", "vm", SnapshotType.Recovery)
    files = ps_host.checkpoint_files(checkpoint)
    assert [(f.kind, f.size) for f in files] == [("vmcx", 53248), ("vmgs", 4194304)]
    assert replay.calls[0][1] == {"VmId": "vm", "CheckpointId": checkpoint.id}


def test_import_vm_passes_the_file_the_folder_the_name_and_the_disks(ps_host, replay, web01) -> None:
    replay.queue("import_vm", "import_vm.json")
    config = web01.config()
    vm = ps_host.import_vm("D:\\R\\x.vmcx", "D:\\R\\copy", "web01-imported", config, ["D:\\R\\copy\\a.vhdx"])
    assert vm.name == "web01-imported"
    params = replay.calls[0][1]
    assert (params["Path"], params["Destination"], params["Name"]) == ("D:\\R\\x.vmcx", "D:\\R\\copy", "web01-imported")
    assert params["DiskPaths"] == ["D:\\R\\copy\\a.vhdx"] and VmConfig.from_json(params["Config"]) == config


def test_each_kind_of_host_gets_the_writer_that_matches_its_reader() -> None:
    assert isinstance(writer_for(LocalFileSource), LocalDiskWriter)
    smb = writer_for(SmbDiskOpener("hv01", SmbCredentials(username="u", password="p")))
    assert isinstance(smb, SmbDiskWriter) and smb.unc("D:\\VMs\\x\\a.vhdx") == "\\\\hv01\\D$\\VMs\\x\\a.vhdx"
    assert smb.unc("\\\\filer\\vms\\x\\a.vhdx") == "\\\\filer\\vms\\x\\a.vhdx"  # a UNC path is used as given


@pytest.mark.parametrize(
    ("folder", "joined"),
    [
        ("D:\\VMs", "D:\\VMs\\web"),
        ("D:\\VMs\\", "D:\\VMs\\web"),
        ("\\\\filer\\vms", "\\\\filer\\vms\\web"),
        ("/srv/lab/vms", "/srv/lab/vms/web"),
    ],
)
def test_host_paths_keep_the_hosts_style(folder: str, joined: str) -> None:
    assert join_host_path(folder, "web") == joined
    assert host_path_folder(join_host_path(joined, "a.vhdx")) == joined
