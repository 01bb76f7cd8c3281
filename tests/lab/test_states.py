"""VM states, shutdown, orphans and create_vm on the lab host."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from hvbackup.connect import connect
from hvbackup.disk import create_differencing
from hvbackup.errors import UsageError
from hvbackup.hyperv.enums import ConsistencyLevel, VMState
from hvbackup.hyperv.errors import InvalidVmState, VmNotFound
from hvbackup.hyperv.powershell import PowerShellHost
from hvbackup.lab import LabHost
from hvbackup.lab.app import STATE_FILE, decode_state
from hvbackup.lab.processes import workload_alive
from hvbackup.lab.sample import DATA_FILE
from tests.lab.conftest import MakeLab

APP = ConsistencyLevel.ApplicationConsistent


def test_connect_lab_spec_opens_the_lab(make_lab: MakeLab) -> None:
    lab = make_lab()
    with connect(f"lab:{lab.directory}") as host:
        assert isinstance(host, PowerShellHost) and host.host_info().name == "LAB-HV01"
        assert host.identity() == lab.identity()
        with pytest.raises(VmNotFound):
            host.get_vm("nope")


def test_save_resume_and_turn_off(make_lab: MakeLab) -> None:
    lab = make_lab("cluster-db")
    vm = lab.get_vm("cluster-db")
    pid = lab.folder(vm).load().workload_pid
    assert workload_alive(pid)
    lab.save_vm(vm)
    assert lab.get_vm(vm.id).state == VMState.Saved and not workload_alive(pid)
    vmrs = lab.folder(vm).vmrs_path(vm.id)
    assert vmrs.stat().st_size == 4 << 20
    checkpoint = lab.create_recovery_checkpoint(vm, APP, "hvbackup-saved")
    lab.start_vm(vm)
    assert lab.get_vm(vm.id).state == VMState.Running and not vmrs.exists()
    assert workload_alive(lab.folder(vm).load().workload_pid)
    assert lab.convert_to_reference_point(checkpoint).consistency_level == ConsistencyLevel.CrashConsistent
    lab.stop_vm(vm)
    assert lab.get_vm(vm.id).state == VMState.Off
    with pytest.raises(InvalidVmState):
        lab.save_vm(vm)
    with pytest.raises(InvalidVmState):
        lab.write_guest_file("cluster-db", DATA_FILE, b"x")


def test_shutdown_is_clean_and_needs_integration_services(make_lab: MakeLab) -> None:
    lab = make_lab("mixed-nic", "legacy-app")
    vm = lab.get_vm("mixed-nic")
    lab.shutdown_vm(vm, timeout=30, interval=0.05)
    assert lab.get_vm("mixed-nic").state == VMState.Off
    assert decode_state(lab.read_guest_file("mixed-nic", STATE_FILE)).get("shutdown") is True
    with pytest.raises(InvalidVmState, match="Shutdown integration service"):
        lab.request_shutdown(lab.get_vm("legacy-app"), "test")


def test_orphans_left_by_an_interrupted_run(make_lab: MakeLab) -> None:
    lab = make_lab("cluster-db")
    vm = lab.get_vm("cluster-db")
    checkpoint = lab.create_recovery_checkpoint(vm, ConsistencyLevel.CrashConsistent, "hvbackup-20260101T000000Z")
    reopened = LabHost(lab.directory)  # the backup process died; a new one looks
    base = Path(reopened.checkpoint_disks(checkpoint)[0].path)
    stray = base.with_name("cluster-db_0BADF00D-0000-4000-8000-000000000000.avhdx")
    create_differencing(stray, base).close()
    orphans = reopened.list_orphans(vm)
    kinds = {(o.kind, o.is_ours) for o in orphans}
    assert kinds == {("recovery-checkpoint", True), ("avhdx", False)}
    assert next(o for o in orphans if o.kind == "avhdx").path == str(stray)
    reopened.destroy_checkpoint(checkpoint)
    assert [o.kind for o in reopened.list_orphans(vm)] == ["avhdx"]


def test_create_vm_from_a_saved_configuration(make_lab: MakeLab, tmp_path: Path) -> None:
    lab = make_lab("archive-01", "cluster-db")
    source = lab.get_vm("cluster-db")
    copy = tmp_path / "restored-os.vhdx"
    shutil.copyfile(lab.get_vm("archive-01").disks[0].path, copy)
    config = dataclasses.replace(source.config(), name="db-restored")
    created = lab.create_vm(config, "db-restored", [str(copy)])
    assert created.id != source.id and created.state == VMState.Off
    assert not copy.exists() and Path(created.disks[0].path).parent == Path(created.path) / "Virtual Hard Disks"
    assert created.disks[0].address == source.disks[0].address
    assert created.network_adapters[0].dynamic_mac and created.network_adapters[0].mac_address.startswith("00155D")
    assert created.network_adapters[0].mac_address != source.network_adapters[0].mac_address
    lab.start_vm(created)
    checkpoint = lab.create_recovery_checkpoint(lab.get_vm(created.id), APP, "hvbackup-new")
    assert lab.convert_to_reference_point(checkpoint).consistency_level == APP, "its stock daemon froze"
    with pytest.raises(Exception, match=r"2 paths given|1 disks"):
        lab.create_vm(config, "bad", [str(copy), str(copy)])


def test_the_workload_ends_when_its_lab_folder_is_gone(make_lab: MakeLab) -> None:
    import time

    lab = make_lab("cluster-db")
    pid = lab.folder("cluster-db").load().workload_pid
    assert workload_alive(pid)
    shutil.rmtree(lab.directory)
    deadline = time.monotonic() + 10
    while workload_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not workload_alive(pid)


@pytest.mark.parametrize("bad", ["../../evil", "..", ".", "sub/dir", "C:\\evil", "x" * 101, "", "end."])
def test_create_vm_never_builds_a_folder_from_a_name_that_is_a_path(
    make_lab: MakeLab, tmp_path: Path, bad: str
) -> None:
    lab = make_lab("archive-01")
    copy = tmp_path / "restored-os.vhdx"
    shutil.copyfile(lab.get_vm("archive-01").disks[0].path, copy)
    config = lab.get_vm("archive-01").config()
    around = sorted(p.name for p in tmp_path.rglob("*") if lab.directory not in p.parents)
    with pytest.raises(UsageError, match="VM name"):
        lab.create_vm(config, bad, [str(copy)])
    assert copy.exists()  # not moved anywhere
    assert sorted(p.name for p in (lab.directory / "vms").iterdir()) == ["archive-01"]
    assert sorted(p.name for p in tmp_path.rglob("*") if lab.directory not in p.parents) == around
