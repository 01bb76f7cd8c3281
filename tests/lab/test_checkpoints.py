"""Recovery checkpoints, reference points and change tracking on the lab host, with a workload running."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hvbackup.disk import open_disk, virtual_sha256
from hvbackup.hyperv.enums import ConsistencyLevel, SnapshotType, VhdType, VMState
from hvbackup.hyperv.errors import ChangeTrackingUnavailable, InvalidVmState, ObjectNotFound, WmiJobError
from hvbackup.lab.app import STATE_FILE, newest_sequence, record_sequence, written_since
from hvbackup.lab.sample import DATA_FILE
from tests.lab.conftest import MakeLab

CRASH = ConsistencyLevel.CrashConsistent
APP = ConsistencyLevel.ApplicationConsistent


def wait_for_writes(lab, vm_name: str, count: int = 12) -> None:
    """Wait until the workload has made `count` more writes (it writes every ~50 ms)."""
    folder = lab.folder(vm_name)
    record = folder.load()
    log = folder.change_log(next(iter(record.chains)), record)
    target = log.count() + count
    deadline = time.monotonic() + 30
    while log.count() < target:
        assert time.monotonic() < deadline, f"the workload of {vm_name} stopped writing"
        time.sleep(0.05)


def changed_offsets(before: bytes, after: bytes, extents: list[tuple[int, int, int]]) -> list[int]:
    """Virtual-disk offsets of the 512-byte sectors of a guest file that differ between two versions."""
    offsets = []
    for sector in range(0, len(before), 512):
        if before[sector : sector + 512] != after[sector : sector + 512]:
            for file_off, disk_off, length in extents:
                if file_off <= sector < file_off + length:
                    offsets.append(disk_off + sector - file_off)
    return offsets


def covered(offset: int, ranges: list[tuple[int, int]]) -> bool:
    return any(start <= offset and offset + 512 <= start + length for start, length in ranges)


def test_checkpoint_freezes_the_parent_while_the_vm_writes_to_the_avhdx(make_lab: MakeLab) -> None:
    lab = make_lab("cluster-db")
    vm = lab.get_vm("cluster-db")
    base = Path(vm.disks[0].path)
    checkpoint = lab.create_recovery_checkpoint(vm, CRASH, "hvbackup-t1")
    assert checkpoint.type == SnapshotType.Recovery and checkpoint.is_ours
    frozen = lab.checkpoint_disks(checkpoint)
    assert [Path(d.path) for d in frozen] == [base]
    digest = lab.checkpoint_digests(checkpoint.id)[str(base)]

    wait_for_writes(lab, "cluster-db")
    assert virtual_sha256(base) == digest  # the parent did not change while the VM kept writing
    now = lab.get_vm("cluster-db").disks[0]
    assert now.path.endswith(".avhdx") and Path(now.path).parent == base.parent
    assert now.type == VhdType.Differencing and Path(now.parent_path) == base
    with open_disk(now.path) as child:
        assert list(child.present_blocks()), "the running VM's writes must land in the AVHDX"
    data_now = lab.read_guest_file("cluster-db", DATA_FILE)
    assert data_now != lab.read_guest_file("cluster-db", DATA_FILE, disk_path=str(base))


def test_convert_merges_and_the_reference_point_tracks_exactly_the_later_writes(make_lab: MakeLab) -> None:
    lab = make_lab("cluster-db")
    vm = lab.get_vm("cluster-db")
    first = lab.create_recovery_checkpoint(vm, CRASH, "hvbackup-base")
    base = lab.checkpoint_disks(first)[0].path
    newest_before_w = newest_sequence(lab.read_guest_file("cluster-db", DATA_FILE))
    lab.write_guest_file("cluster-db", DATA_FILE, b"W" * 8192, offset=1 << 20)  # lands in the AVHDX
    before = {p: lab.read_guest_file("cluster-db", p, disk_path=base) for p in (DATA_FILE, STATE_FILE)}
    point = lab.convert_to_reference_point(first)

    assert not list(Path(base).parent.glob("*.avhdx")), "convert merges the AVHDX away"
    assert lab.get_vm("cluster-db").disks[0].path == base and not lab.get_vm("cluster-db").checkpoints
    merged = lab.read_guest_file("cluster-db", DATA_FILE)[1 << 20 : (1 << 20) + 8192]
    for block in (merged[:4096], merged[4096:]):  # the workload may have rewritten a block since
        assert written_since(block, b"W" * 4096, newest_before_w)
    assert point.consistency_level == CRASH and [p.id for p in lab.list_reference_points(vm)] == [point.id]

    lab.write_guest_file("cluster-db", DATA_FILE, b"Z" * 4096, offset=3 << 20)
    wait_for_writes(lab, "cluster-db")
    second = lab.create_recovery_checkpoint(vm, CRASH, "hvbackup-next")
    disk = lab.checkpoint_disks(second)[0]
    ranges = list(lab.changed_ranges(disk.path, point.rct_id_for(disk)))
    wait_for_writes(lab, "cluster-db")  # writes after the checkpoint must not count
    assert ranges == list(lab.changed_ranges(disk.path, point.rct_id_for(disk)))

    record = lab.folder("cluster-db").load()
    for guest_path in (DATA_FILE, STATE_FILE):
        target = record.writable_file(guest_path)
        after = lab.read_guest_file("cluster-db", guest_path, disk_path=disk.path)
        for offset in changed_offsets(before[guest_path], after, target.extents):
            assert covered(offset, ranges), f"changed sector at {offset} of {guest_path} not reported"
    z_extent = record.writable_file(DATA_FILE).disk_pieces(3 << 20, 4096)[0][0]
    assert covered(z_extent, ranges)
    tracked = [(d, n) for w in record.writable for _, d, n in w.extents]
    assert all(any(s >= d and s + n2 <= d + n for d, n in tracked) for s, n2 in ranges), "only written ranges"
    assert sum(n for _, n in ranges) < 4 << 20, "not the whole disk"


def test_destroy_reference_point(make_lab: MakeLab) -> None:
    lab = make_lab("cluster-db")
    vm = lab.get_vm("cluster-db")
    point = lab.convert_to_reference_point(lab.create_recovery_checkpoint(vm, CRASH, "hvbackup-rp"))
    lab.destroy_reference_point(point)
    assert lab.list_reference_points(vm) == []
    with pytest.raises(ObjectNotFound):
        lab.destroy_reference_point(point)


def test_reset_change_tracking_makes_earlier_ids_unanswerable(make_lab: MakeLab) -> None:
    lab = make_lab("cluster-db")
    vm = lab.get_vm("cluster-db")
    point = lab.convert_to_reference_point(lab.create_recovery_checkpoint(vm, CRASH, "hvbackup-a"))
    checkpoint = lab.create_recovery_checkpoint(vm, CRASH, "hvbackup-b")
    disk = lab.checkpoint_disks(checkpoint)[0]
    assert list(lab.changed_ranges(disk.path, point.rct_id_for(disk))) is not None
    lab.reset_change_tracking("cluster-db")
    with pytest.raises(ChangeTrackingUnavailable):
        list(lab.changed_ranges(disk.path, point.rct_id_for(disk)))
    with pytest.raises(ChangeTrackingUnavailable):
        list(lab.changed_ranges(disk.path, "not-an-rct-id"))


def test_destroy_checkpoint_merges_without_a_reference_point(make_lab: MakeLab) -> None:
    lab = make_lab("cluster-db")
    vm = lab.get_vm("cluster-db")
    checkpoint = lab.create_recovery_checkpoint(vm, CRASH, "hvbackup-x")
    newest_before = newest_sequence(lab.read_guest_file("cluster-db", DATA_FILE))
    lab.write_guest_file("cluster-db", DATA_FILE, b"D" * 4096)
    lab.destroy_checkpoint(checkpoint)
    assert not lab.get_vm("cluster-db").checkpoints and not lab.list_reference_points(vm)
    assert written_since(lab.read_guest_file("cluster-db", DATA_FILE)[:4096], b"D" * 4096, newest_before)
    with pytest.raises(ObjectNotFound):
        lab.destroy_checkpoint(checkpoint)


def test_nested_checkpoints_merge_newest_first(make_lab: MakeLab) -> None:
    lab = make_lab("cluster-db")
    vm = lab.get_vm("cluster-db")
    older = lab.create_recovery_checkpoint(vm, CRASH, "hvbackup-1")
    newer = lab.create_recovery_checkpoint(vm, CRASH, "hvbackup-2")
    with pytest.raises(InvalidVmState):
        lab.destroy_checkpoint(older)
    lab.destroy_checkpoint(newer)
    lab.destroy_checkpoint(older)
    with open_disk(lab.get_vm("cluster-db").disks[0].path) as disk:
        assert not disk.is_differencing


def test_production_only_without_guest_fails_and_leaves_nothing(make_lab: MakeLab) -> None:
    from hvbackup.hyperv.enums import CheckpointType

    lab = make_lab("legacy-app")
    lab.set_checkpoint_type("legacy-app", CheckpointType.ProductionOnly)
    vm = lab.get_vm("legacy-app")
    with pytest.raises(WmiJobError) as failure:
        lab.create_recovery_checkpoint(vm, APP, "hvbackup-p")
    assert failure.value.code == 32768 and failure.value.job_state == 10
    assert "could not freeze" in failure.value.description
    assert not lab.get_vm("legacy-app").checkpoints
    assert not list(Path(vm.disks[0].path).parent.glob("*.avhdx"))


def test_production_without_guest_falls_back_to_crash_consistent(make_lab: MakeLab) -> None:
    lab = make_lab("legacy-app")
    vm = lab.get_vm("legacy-app")
    checkpoint = lab.create_recovery_checkpoint(vm, APP, "hvbackup-p")
    assert lab.guest_report(checkpoint.id) is None
    assert lab.convert_to_reference_point(checkpoint).consistency_level == CRASH


def test_vss_service_disabled_on_the_host_means_no_freeze(make_lab: MakeLab) -> None:
    from hvbackup.hyperv.enums import CheckpointType

    lab = make_lab("mixed-nic")
    lab.set_integration_service("mixed-nic", "VSS", enabled=False)
    assert not lab.get_vm("mixed-nic").vss_service.enabled
    lab.set_checkpoint_type("mixed-nic", CheckpointType.ProductionOnly)
    with pytest.raises(WmiJobError):
        lab.create_recovery_checkpoint(lab.get_vm("mixed-nic"), APP, "hvbackup-novss")
    lab.set_integration_service("mixed-nic", "VSS", enabled=True)
    checkpoint = lab.create_recovery_checkpoint(lab.get_vm("mixed-nic"), APP, "hvbackup-vss")
    assert lab.convert_to_reference_point(checkpoint).consistency_level == APP


def test_stock_daemon_answers_filesystem_consistent(make_lab: MakeLab) -> None:
    lab = make_lab("mixed-nic")
    from hvbackup import kvpreport
    from hvbackup.hyperv import kvp
    from hvbackup.hyperv.filesource import LocalFileSource
    from hvbackup.hyperv.powershell import PowerShellHost
    from hvbackup.lab.transport import LabTransport

    host = PowerShellHost(LabTransport(lab), LocalFileSource)
    token = host.announce_request(lab.get_vm("mixed-nic"))
    checkpoint = lab.create_recovery_checkpoint(lab.get_vm("mixed-nic"), APP, "hvbackup-s")
    read = kvp.read_report(host.guest_items("mixed-nic"), kvpreport.FREEZE, token)
    assert read.report is None and "no Freeze report" in read.reason, "the stock daemon publishes no report"
    assert lab.convert_to_reference_point(checkpoint).consistency_level == APP


def test_crash_consistent_request_never_asks_the_guest(make_lab: MakeLab) -> None:
    lab = make_lab("web-01")
    lab.create_recovery_checkpoint(lab.get_vm("web-01"), CRASH, "hvbackup-c")
    assert not (lab.folder("web-01").guest_dir / "app" / "flush.done").exists()


def test_passthrough_disk_fails_the_checkpoint_unless_skipped(make_lab: MakeLab) -> None:
    lab = make_lab("passthru-01")
    vm = lab.get_vm("passthru-01")
    assert any(d.is_passthrough for d in vm.disks)
    with pytest.raises(WmiJobError, match="pass-through"):
        lab.create_recovery_checkpoint(vm, CRASH, "hvbackup-pt")
    checkpoint = lab.create_recovery_checkpoint(vm, CRASH, "hvbackup-pt", skip_unsupported_disks=True)
    disks = lab.checkpoint_disks(checkpoint)
    assert len(disks) == 1 and not disks[0].is_passthrough


def test_off_vm_checkpoint_needs_no_guest_and_sees_no_writes(make_lab: MakeLab) -> None:
    lab = make_lab("archive-01")
    vm = lab.get_vm("archive-01")
    assert vm.state == VMState.Off
    checkpoint = lab.create_recovery_checkpoint(vm, APP, "hvbackup-off")
    frozen = lab.checkpoint_disks(checkpoint)[0].path
    time.sleep(0.3)
    assert virtual_sha256(frozen) == lab.checkpoint_digests(checkpoint.id)[frozen]
    assert lab.guest_report(checkpoint.id) is None
    with open_disk(lab.get_vm("archive-01").disks[0].path) as child:
        assert not list(child.present_blocks())
    assert record_sequence(lab.read_guest_file("archive-01", DATA_FILE)[:4096]) is None
