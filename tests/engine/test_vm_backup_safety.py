"""`hvbackup backup` when things get in the way: a second run for the same VM, a full or read-only
repository disk, and what the run shows meanwhile (phases, a bar per VM, an 80-column table)."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hvbackup.assess.policy import Policy
from hvbackup.engine.vm_backup import RESULT_LOCKED, RESULT_OK, backup_vms
from hvbackup.lab import LabHost, powershell_host
from hvbackup.lab.sample import SAMPLE_VMS, build_sample
from hvbackup.repo import Repository

from .conftest import PASSWORD, cli


def make_lab(path: Path, *names: str) -> LabHost:
    lab = LabHost.create(path, record_digests=True)
    build_sample(lab, [s for s in SAMPLE_VMS if s.name in names])
    return lab


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[LabHost]:
    lab = make_lab(tmp_path / "lab", "web-01", "app-02")
    yield lab
    lab.destroy()


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repository]:
    with Repository.init(tmp_path / "repo", PASSWORD) as repository:
        yield repository


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 4 MiB tmpfs: too small for a VM's disks."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def our_checkpoints(lab: LabHost, vm: str) -> list:
    return [o for o in lab.list_orphans(lab.get_vm(vm)) if o.is_ours]


class HoldWhileReading:
    """A VM's progress that stops its run at the first disk read until the test lets it go on."""

    def __init__(self) -> None:
        self.reading = threading.Event()
        self.go_on = threading.Event()
        self.phases: list[str] = []
        self.totals: list[int] = []
        self.advanced: list[int] = []

    def phase(self, text: str) -> None:
        self.phases.append(text)
        if text.startswith("reading"):  # a disk or a configuration file: a bar of its own
            self.totals.append(0)
            self.advanced.append(0)
            self.reading.set()
            assert self.go_on.wait(120)

    def set_total(self, total: int) -> None:
        self.totals[-1] = total

    def advance(self, nbytes: int) -> None:
        self.advanced[-1] += nbytes


# -- item 5: two backups of one VM ------------------------------------------------------------


def test_a_second_backup_of_a_vm_being_backed_up_is_refused_and_keeps_the_first_runs_checkpoint(
    lab: LabHost, repo: Repository
) -> None:
    hold = HoldWhileReading()
    results = []
    first = threading.Thread(
        target=lambda: results.append(
            backup_vms(
                powershell_host(lab),
                repo,
                [powershell_host(lab).get_vm("web-01")],
                Policy(),
                progress_for=lambda vm: hold,
            )
        )
    )
    first.start()
    try:
        assert hold.reading.wait(120), "the first backup never reached its disk"
        (held,) = our_checkpoints(lab, "web-01")
        second = cli("backup", "--host", f"lab:{lab.directory}", "--repo", str(repo.path), "web-01", "--json")
        assert second.code == 11, second.stdout + second.stderr
        (vm,) = second.json()["vms"]
        assert vm["result"] == RESULT_LOCKED and vm["snapshot"] is None
        assert vm["message"].startswith(
            f"web-01 is being backed up by pid {os.getpid()} on {socket.gethostname()} since "
        )
        assert [o.id for o in our_checkpoints(lab, "web-01")] == [held.id]  # its orphan cleanup left it alone
        human = cli("backup", "--host", f"lab:{lab.directory}", "--repo", str(repo.path), "web-01")
        assert human.code == 11 and "is being backed up by pid" in human.stderr and "Traceback" not in human.stderr
    finally:
        hold.go_on.set()
        first.join(120)
    (run,) = results
    assert [v.result for v in run.vms] == [RESULT_OK], run.vms[0].message
    assert not our_checkpoints(lab, "web-01")
    after = cli("backup", "--host", f"lab:{lab.directory}", "--repo", str(repo.path), "web-01", "--json")
    assert after.code == 0, after.stdout  # the lock went with the first run


def test_one_vm_twice_in_one_run_is_backed_up_once_and_refused_once(lab: LabHost, repo: Repository) -> None:
    host = powershell_host(lab)
    web = host.get_vm("web-01")
    run = backup_vms(host, repo, [web, web], Policy(), parallel=2)
    assert sorted(v.result for v in run.vms) == [RESULT_LOCKED, RESULT_OK]
    assert len(repo.list_snapshots()) == 1 and not our_checkpoints(lab, "web-01")


# -- item 9: the repository's disk --------------------------------------------------------------


def test_a_full_repository_disk_fails_the_backup_in_one_line_and_releases_the_checkpoint(
    lab: LabHost, small_disk: Path
) -> None:
    repo = small_disk / "repo"
    assert cli("init", "--repo", str(repo)).code == 0
    full = cli("backup", "--host", f"lab:{lab.directory}", "--repo", str(repo), "web-01", "--json")
    assert full.code == 1, full.stdout + full.stderr
    (vm,) = full.json()["vms"]
    assert vm["result"] == "failed" and vm["snapshot"] is None
    assert "no space left on device" in vm["message"].lower()
    assert "safety window" in vm["message"] and "hvbackup prune" in vm["message"]
    assert "Traceback" not in full.stderr
    assert not our_checkpoints(lab, "web-01") and lab.get_vm("web-01").state.name == "Running"
    human = cli("backup", "--host", f"lab:{lab.directory}", "--repo", str(repo), "web-01")
    assert human.code == 1 and "Traceback" not in human.stdout + human.stderr
    assert "web-01: the repository at" in human.stdout and "is full (no space left on device" in human.stdout
    assert cli("check", "--repo", str(repo)).code == 0  # nothing half-written


def test_a_read_only_repository_is_refused_before_any_vm_is_touched(lab: LabHost, small_disk: Path) -> None:
    repo = small_disk / "repo"
    assert cli("init", "--repo", str(repo)).code == 0
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    refused = cli("backup", "--host", f"lab:{lab.directory}", "--repo", str(repo), "web-01", "--json")
    assert refused.code == 1
    message = refused.json()["error"]["message"]
    assert "read-only file system" in message.lower() and "no VM was touched" in message
    assert "Traceback" not in refused.stderr
    assert not lab.get_vm("web-01").checkpoints and not our_checkpoints(lab, "web-01")


# -- friction: what the run shows ---------------------------------------------------------------


def test_each_vm_reports_its_phases_and_one_bar_per_disk(lab: LabHost, repo: Repository) -> None:
    hold = HoldWhileReading()
    hold.go_on.set()
    run = backup_vms(
        powershell_host(lab), repo, [powershell_host(lab).get_vm("app-02")], Policy(), progress_for=lambda vm: hold
    )
    assert run.vms[0].result == RESULT_OK
    assert hold.phases == [
        "planning (leftovers of earlier runs, the mode)",
        "checkpoint (the guest freezes)",
        "reading disk 1 of 2",
        "reading disk 2 of 2",
        "reading the configuration file (vmcx)",  # a Generation 2 VM: its configuration and guest state
        "reading the configuration file (vmgs)",
        "converting to a reference point",
        "committing",
    ]
    assert all(total > 0 for total in hold.totals) and hold.advanced == hold.totals  # no bar goes back


def test_backup_table_fits_80_columns_with_short_snapshot_ids_and_unchanged_bytes(lab: LabHost, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert cli("init", "--repo", str(repo)).code == 0
    args = ["backup", "--host", f"lab:{lab.directory}", "--repo", str(repo), "web-01", "app-02"]
    assert cli(*args).code == 0
    lab.write_guest_file("web-01", "/var/lib/app/data.bin", b"changed" * 100)
    again = cli(*args)
    assert again.code == 0, again.stderr
    assert all(len(line) <= 80 for line in again.stdout.splitlines()), again.stdout
    with Repository.open(repo, PASSWORD) as r:
        newest = {name: r.load_snapshot(f"{name}:latest").info for name in ("web-01", "app-02")}
    header = next(line for line in again.stdout.splitlines() if line.startswith("VM"))
    assert header.split() == ["VM", "snapshot", "mode", "consistency", "read", "new", "unchanged", "result"]
    for name in ("web-01", "app-02"):
        row = next(line for line in again.stdout.splitlines() if line.startswith(name + " ")).split()
        assert row[1] == newest[name].short_id and len(row[1]) == 8
        assert row[6] != "0"  # the incremental kept most of each disk unchanged
        assert f"snapshot {newest[name].short_id}" in again.stderr
        assert newest[name].id[:12] not in again.stdout + again.stderr


@pytest.mark.parametrize("parallel", ["0", "-1"])
def test_backup_with_parallel_below_1_is_refused(lab: LabHost, tmp_path: Path, parallel: str) -> None:
    repo = tmp_path / "repo"
    assert cli("init", "--repo", str(repo)).code == 0
    refused = cli(
        "backup", "--host", f"lab:{lab.directory}", "--repo", str(repo), "web-01", "--parallel", parallel, "--json"
    )
    assert refused.code == 1
    assert f"--parallel {parallel}" in refused.json()["error"]["message"]
    assert not lab.get_vm("web-01").checkpoints


def test_the_same_sample_vm_in_two_labs_is_not_one_vm(lab: LabHost, repo: Repository, tmp_path: Path) -> None:
    other = make_lab(tmp_path / "other-lab", "web-01")
    try:
        assert other.get_vm("web-01").id == lab.get_vm("web-01").id  # the sample's ids are fixed
        hold = HoldWhileReading()
        first = threading.Thread(
            target=lambda: backup_vms(
                powershell_host(lab),
                repo,
                [powershell_host(lab).get_vm("web-01")],
                Policy(),
                progress_for=lambda vm: hold,
            )
        )
        first.start()
        try:
            assert hold.reading.wait(120)
            elsewhere = cli("backup", "--host", f"lab:{other.directory}", "--repo", str(repo.path), "web-01", "--json")
            assert elsewhere.code == 0, elsewhere.stdout
        finally:
            hold.go_on.set()
            first.join(120)
    finally:
        other.destroy()
