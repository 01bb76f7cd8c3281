"""The lab's answers to the restore scripts (lab/operations/restore.py), called the way a real host
is called: PowerShellHost over LabTransport."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hvbackup.hyperv.enums import ConsistencyLevel
from hvbackup.hyperv.filesource import LocalFileSource
from hvbackup.hyperv.powershell import PowerShellHost
from hvbackup.lab import LabHost
from hvbackup.lab.folder import read_lab_file, write_lab_file
from hvbackup.lab.sample import SAMPLE_VMS, build_sample
from hvbackup.lab.transport import LabTransport


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHost]:
    host = LabHost.create(tmp_path_factory.mktemp("restoreops") / "lab")
    build_sample(host, [s for s in SAMPLE_VMS if s.name == "web-01"])
    yield host
    host.destroy()


def test_checkpoint_files_are_named_and_read_through_the_host_path(lab: LabHost) -> None:
    host = PowerShellHost(LabTransport(lab), LocalFileSource)
    vm = lab.get_vm("web-01")
    checkpoint = lab.create_recovery_checkpoint(vm, ConsistencyLevel.CrashConsistent, "hvbackup-test")
    try:
        files = host.checkpoint_files(checkpoint)
        assert files is not None
        assert [f.kind for f in files] == (["vmcx", "vmgs"] if vm.generation == 2 else ["vmcx"])
        for item in files:
            source = host.open_disk_source(item.path)
            assert source.size == item.size > 0
            source.close()
        assert files == host.checkpoint_files(checkpoint)  # named again, not rewritten
    finally:
        lab.destroy_checkpoint(checkpoint)


def test_checkpoint_files_of_an_unknown_checkpoint_is_object_not_found(lab: LabHost) -> None:
    from hvbackup.hyperv.enums import SnapshotType
    from hvbackup.hyperv.errors import ObjectNotFound
    from hvbackup.hyperv.model import Checkpoint

    host = PowerShellHost(LabTransport(lab), LocalFileSource)
    vm = lab.get_vm("web-01")
    with pytest.raises(ObjectNotFound):
        host.checkpoint_files(Checkpoint("00000000-0000-0000-0000-000000000001", "x", vm.id, SnapshotType.Recovery))


def test_switches_are_the_lab_setting_or_the_ones_its_vms_use(lab: LabHost) -> None:
    host = PowerShellHost(LabTransport(lab), LocalFileSource)
    used = {n.switch_name for n in lab.get_vm("web-01").network_adapters if n.switch_name}
    assert set(host.list_switches() or []) == used | {"Default Switch"}
    settings = read_lab_file(lab.directory)
    settings["switches"] = ["Only"]
    write_lab_file(lab.directory, settings)
    assert PowerShellHost(LabTransport(LabHost(lab.directory)), LocalFileSource).list_switches() == ["Only"]
