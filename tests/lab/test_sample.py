"""The sample VMs: real GPT disks with ext4/xfs that Linux tools accept, and the field cases they carry."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from hvbackup.disk import open_disk
from hvbackup.hyperv.enums import ConsistencyLevel, IntegrationServiceStatus, VMState
from hvbackup.lab import LabHost
from hvbackup.lab.images import ESP_TYPE, LINUX_FS_TYPE

pytestmark = pytest.mark.slow


def run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def partitions(vhdx: str, work: Path) -> tuple[Path, list[dict]]:
    """The disk as a raw file (qemu-img reading our VHDX) and its GPT partitions (sfdisk)."""
    run("qemu-img", "check", vhdx)
    raw = work / (Path(vhdx).stem + ".raw")
    run("qemu-img", "convert", "-f", "vhdx", "-O", "raw", vhdx, str(raw))
    table = json.loads(run("sfdisk", "--json", str(raw)))["partitiontable"]
    assert table["label"] == "gpt"
    return raw, table["partitions"]


def extract(raw: Path, partition: dict, target: Path) -> Path:
    start, size = partition["start"] * 512, partition["size"] * 512
    with open(raw, "rb") as src, open(target, "wb") as out:
        out.truncate(size)
        for offset in range(0, size, 4 << 20):
            data = os.pread(src.fileno(), min(4 << 20, size - offset), start + offset)
            if data.strip(b"\0"):
                os.pwrite(out.fileno(), data, offset)
    return target


def test_os_disk_is_gpt_with_esp_and_a_clean_ext4_saying_who_it_is(sample_lab: LabHost, tmp_path: Path) -> None:
    vm = sample_lab.get_vm("web-01")
    assert vm.disks[0].block_size == 1 << 20
    raw, parts = partitions(vm.disks[0].path, tmp_path)
    assert [p["type"].upper() for p in parts] == [ESP_TYPE, LINUX_FS_TYPE]
    root = extract(raw, parts[1], tmp_path / "root.img")
    run("e2fsck", "-fn", str(root))
    assert run("debugfs", "-R", "cat /etc/hostname", str(root)).strip() == "web-01"
    assert " / ext4 " in run("debugfs", "-R", "cat /etc/fstab", str(root))
    listing = run("debugfs", "-R", "ls -l /home/admin", str(root))
    assert "notes.txt" in listing
    esp = extract(raw, parts[0], tmp_path / "esp.img")
    run("fsck.vfat", "-n", str(esp))  # a clean FAT file system, as an installer leaves the ESP


def test_data_disk_is_a_clean_xfs(sample_lab: LabHost, tmp_path: Path) -> None:
    vm = sample_lab.get_vm("app-02")
    assert len(vm.disks) == 2
    raw, parts = partitions(vm.disks[1].path, tmp_path)
    data = extract(raw, parts[0], tmp_path / "data.img")
    subprocess.run(["xfs_repair", "-n", "-f", str(data)], check=True, capture_output=True)
    assert "app.db" in run("xfs_db", "-r", "-c", "ls /db", str(data))
    os_raw, os_parts = partitions(vm.disks[0].path, tmp_path)
    root = extract(os_raw, os_parts[1], tmp_path / "root.img")
    assert " /srv/data xfs " in run("debugfs", "-R", "cat /etc/fstab", str(root))


def test_a_checkpoint_taken_under_the_running_workload_holds_clean_filesystems(
    sample_lab: LabHost, tmp_path: Path
) -> None:
    vm = sample_lab.get_vm("app-02")
    checkpoint = sample_lab.create_recovery_checkpoint(vm, ConsistencyLevel.ApplicationConsistent, "hvbackup-fsck")
    try:
        os_disk, data_disk = sample_lab.checkpoint_disks(checkpoint)
        raw, parts = partitions(os_disk.path, tmp_path)
        run("e2fsck", "-fn", str(extract(raw, parts[1], tmp_path / "root.img")))
        raw, parts = partitions(data_disk.path, tmp_path)
        subprocess.run(
            ["xfs_repair", "-n", "-f", str(extract(raw, parts[0], tmp_path / "d.img"))], check=True, capture_output=True
        )
    finally:
        sample_lab.destroy_checkpoint(checkpoint)


def test_the_sample_carries_the_field_cases(sample_lab: LabHost) -> None:
    vms = {vm.name: vm for vm in sample_lab.inventory()}
    assert set(vms) == {"web-01", "legacy-app", "mixed-nic", "cluster-db", "passthru-01", "archive-01", "app-02"}
    assert vms["archive-01"].state == VMState.Off
    assert all(vms[n].state == VMState.Running for n in vms if n != "archive-01")
    assert vms["legacy-app"].vss_service.status == IntegrationServiceStatus.NoContact
    assert [n.is_legacy for n in vms["mixed-nic"].network_adapters] == [True, False]
    assert vms["cluster-db"].is_clustered and vms["cluster-db"].network_adapters[0].dynamic_mac
    assert [d.is_passthrough for d in vms["passthru-01"].disks] == [False, True]
    for vm in vms.values():
        with open_disk(vm.disks[0].path) as disk:
            assert disk.size == 256 << 20


def test_readiness_reports_come_from_the_guest_checks_through_kvp(sample_lab: LabHost) -> None:
    from hvbackup.hyperv.filesource import LocalFileSource
    from hvbackup.hyperv.powershell import PowerShellHost
    from hvbackup.lab.transport import LabTransport

    host = PowerShellHost(LabTransport(sample_lab), LocalFileSource)
    ids = {vm: {f["id"] for f in host.guest_readiness(vm)["findings"]} for vm in ("web-01", "mixed-nic")}
    assert not any(f["severity"] == "blocker" for f in host.guest_readiness("web-01")["findings"])
    assert {"mixed-nics", "stock-vss-daemon"} <= ids["mixed-nic"]
    covers = [m["mountpoint"] for m in host.guest_readiness("app-02")["freeze_covers"]]
    assert covers == ["/srv/data", "/"]
    assert host.guest_readiness("legacy-app") is None, "no Integration Services: no KVP daemon to publish through"
    assert host.guest_readiness("archive-01") is None, "a VM that is off exchanges no items"


def test_building_is_deterministic(tmp_path: Path) -> None:
    from hvbackup.disk import virtual_sha256
    from hvbackup.lab.sample import SAMPLE_VMS, build_vm

    spec = next(s for s in SAMPLE_VMS if s.name == "web-01")
    digests = []
    for n in range(2):
        lab = LabHost.create(tmp_path / f"lab{n}")
        build_vm(lab.directory, spec)
        digests.append(virtual_sha256(lab.get_vm("web-01").disks[0].path))
    assert digests[0] == digests[1]
