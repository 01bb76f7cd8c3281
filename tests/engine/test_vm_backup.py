"""Whole-VM backups of the lab host's sample VMs, through PowerShellHost over the lab transport: modes, consistency, incrementals, restore,
point-in-time capture, and interruptions at every step."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hvbackup.apps.demo import read_guest_file
from hvbackup.assess.policy import Policy
from hvbackup.assess.verdict import predict
from hvbackup.disk import virtual_sha256
from hvbackup.engine.vm_backup import RESULT_OK, backup_vms, guest_readiness, meets
from hvbackup.engine.vm_restore import restore_vm
from hvbackup.lab import LabHost, powershell_host
from hvbackup.lab.app import newest_sequence, written_since
from hvbackup.lab.sample import SAMPLE_VMS, build_sample
from hvbackup.repo import Repository

from .conftest import HVBACKUP, PASSWORD, cli

MIB = 1024 * 1024
DATA_FILE = "/var/lib/app/data.bin"


def make_lab(path: Path, *names: str) -> LabHost:
    lab = LabHost.create(path, record_digests=True)
    build_sample(lab, [s for s in SAMPLE_VMS if not names or s.name in names])
    return lab


def backup_through_scripts(lab: LabHost, repo: Repository, policy: Policy):
    """A backup run of every VM of the lab, through PowerShellHost over the lab transport."""
    host = powershell_host(lab)
    return backup_vms(host, repo, host.inventory(), policy)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHost]:
    lab = make_lab(tmp_path_factory.mktemp("vmlab") / "lab")
    yield lab
    lab.destroy()


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repository]:
    with Repository.init(tmp_path / "repo", PASSWORD) as repository:
        yield repository


POLICIES = [
    Policy(c, d) for c, d in itertools.product(("application", "filesystem", "crash"), ("never", "save", "shutdown"))
]


@pytest.mark.slow
@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: f"{p.consistency}-{p.allow_downtime}")
def test_every_sample_vm_gets_what_assess_predicts(sample: LabHost, repo: Repository, policy: Policy) -> None:
    host = powershell_host(sample)  # the engine talks to the lab through the scripts, as to a real host
    vms = host.inventory()
    predicted = {vm.name: predict(vm, policy, guest_readiness(host, vm)) for vm in vms}
    run = backup_vms(host, repo, vms, policy, parallel=3)
    assert {v.name for v in run.vms} == {vm.name for vm in vms}
    for result in run.vms:
        verdict = predicted[result.name]
        assert (result.mode, result.consistency) == (verdict.mode, verdict.consistency), result.name
        if result.snapshot:
            snap = repo.load_snapshot(result.snapshot)
            assert snap.manifest["consistency"] == result.consistency
            assert snap.manifest["mode"] == result.mode
        expected_ok = verdict.meets_policy and not verdict.skipped_disks
        assert (result.result == RESULT_OK) == expected_ok, (result.name, result.result, result.message)
        assert meets(result.consistency, policy) == verdict.meets_policy or verdict.mode == "none"
    for vm in host.inventory():
        assert not [o for o in host.list_orphans(vm) if o.is_ours], f"{vm.name}: a checkpoint was left behind"
        original = next(v for v in vms if v.id == vm.id)
        assert vm.state == original.state, f"{vm.name} was left {vm.state.name}"
    assert run.exit_code == (0 if all(v.result == RESULT_OK for v in run.vms) else 3)


def test_backup_captures_the_disk_as_it_was_at_the_checkpoint(tmp_path: Path, repo: Repository) -> None:
    lab = make_lab(tmp_path / "lab", "web-01")
    try:
        run = backup_through_scripts(lab, repo, Policy())
        (result,) = run.vms
        assert result.result == RESULT_OK and result.consistency == "application"
        frozen = lab.checkpoint_digests(result.checkpoint)
        snap = repo.load_snapshot(result.snapshot)
        entry = snap.manifest["disks"][0]
        out = tmp_path / "restored.vhdx"
        cli("image", "restore", "--repo", str(repo.path), result.snapshot, "--to", str(out))
        assert virtual_sha256(str(out)) == frozen[entry["path"]]
        vm = lab.get_vm("web-01")
        assert virtual_sha256(vm.disks[0].path) != frozen[entry["path"]], "the workload should have kept writing"
        report = snap.manifest["guest_report"]
        assert report["consistency"] == "application" and report["hooks"], "the agent's hook ran"
    finally:
        lab.destroy()


def test_incremental_reads_only_what_changed_and_restores_as_a_new_vm(tmp_path: Path, repo: Repository) -> None:
    lab = make_lab(tmp_path / "lab", "web-01")
    try:
        backup_through_scripts(lab, repo, Policy())
        marker = b"the administrator's change" * 10
        newest_before = newest_sequence(lab.read_guest_file("web-01", DATA_FILE))
        lab.write_guest_file("web-01", DATA_FILE, marker)
        run = backup_through_scripts(lab, repo, Policy())
        (result,) = run.vms
        assert [d["mode"] for d in result.disks] == ["incremental"]
        assert result.bytes_new < 16 * MIB
        restored = restore_vm(
            powershell_host(lab), repo, repo.load_snapshot(result.snapshot), name="web-01-copy", start=False
        )
        copy = lab.get_vm(restored.vm_id)
        assert copy.id != lab.get_vm("web-01").id and copy.name == "web-01-copy"
        frozen = lab.checkpoint_digests(result.checkpoint)
        assert (
            virtual_sha256(copy.disks[0].path)
            == frozen[repo.load_snapshot(result.snapshot).manifest["disks"][0]["path"]]
        )
        first_block = read_guest_file(copy.disks[0].path, DATA_FILE, 4096)
        assert first_block.startswith(marker) or written_since(first_block, marker, newest_before)
        original_macs = {n.mac_address for n in lab.get_vm("web-01").network_adapters}
        assert not original_macs & {n.mac_address for n in copy.network_adapters if n.mac_address}
    finally:
        lab.destroy()


def test_reset_change_tracking_falls_back_to_a_full_read_with_the_reason(tmp_path: Path, repo: Repository) -> None:
    lab = make_lab(tmp_path / "lab", "cluster-db")
    try:
        backup_through_scripts(lab, repo, Policy())
        lab.reset_change_tracking("cluster-db")
        (result,) = backup_through_scripts(lab, repo, Policy()).vms
        assert result.result == RESULT_OK
        assert result.disks[0]["mode"] == "full"
        assert "change tracking unavailable" in result.disks[0]["reason"]
        assert result.bytes_new == 0 or result.bytes_new < result.bytes_read  # deduplicated against the repository
    finally:
        lab.destroy()


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["while-paused", "after-checkpoint", "after-read", "after-convert", "after-commit"])
def test_kill_9_at_each_step_leaves_nothing_behind_after_the_next_run(tmp_path: Path, fault: str) -> None:
    lab = make_lab(tmp_path / "lab", "web-01", "legacy-app")
    repo_path = tmp_path / "repo"
    try:
        assert cli("init", "--repo", str(repo_path)).code == 0
        args = [
            "backup",
            "--host",
            f"lab:{lab.directory}",
            "--repo",
            str(repo_path),
            "--all",
            "--allow-downtime",
            "save",
            "--json",
        ]
        first = cli(*args)
        assert first.code == 0, first.stderr
        earlier = {v["name"]: v["snapshot"] for v in first.json()["vms"]}
        env = {**os.environ, "HVBACKUP_PASSWORD": PASSWORD, "HVBACKUP_FAULT": fault}
        killed = subprocess.run([HVBACKUP, *args], env=env, capture_output=True, timeout=300)
        assert killed.returncode == -9
        after = cli(*args)
        assert after.code == 0, after.stdout + after.stderr
        for vm in lab.inventory():
            assert not [o for o in lab.list_orphans(vm) if o.is_ours], f"{fault}: {vm.name} kept a checkpoint"
            assert vm.state.name == "Running", f"{fault}: {vm.name} left {vm.state.name}"
        assert cli("check", "--repo", str(repo_path), "--read-data").code == 0
        for name, snap in earlier.items():
            out = tmp_path / f"{name}.raw"
            restore = cli("restore", snap, "--repo", str(repo_path), "--disk", "0", "--to", str(out))
            assert restore.code == 0, restore.stderr
    finally:
        lab.destroy()


def test_backup_cli_exit_codes_and_json(tmp_path: Path) -> None:
    lab = make_lab(tmp_path / "lab", "web-01", "legacy-app")
    repo_path = tmp_path / "repo"
    try:
        cli("init", "--repo", str(repo_path))
        ok = cli("backup", "--host", f"lab:{lab.directory}", "--repo", str(repo_path), "web-01", "--json")
        assert ok.code == 0
        vm = ok.json()["vms"][0]
        assert {"name", "mode", "consistency", "result", "snapshot"} <= set(vm)
        below = cli("backup", "--host", f"lab:{lab.directory}", "--repo", str(repo_path), "--all", "--json")
        assert below.code == 3
        results = {v["name"]: v for v in below.json()["vms"]}
        assert results["legacy-app"]["result"] == "below-policy" and results["legacy-app"]["consistency"] == "crash"
        missing = cli("backup", "--host", f"lab:{lab.directory}", "--repo", str(repo_path), "no-such-vm")
        assert missing.code == 1 and "no-such-vm" in missing.stderr and "Traceback" not in missing.stderr
        one_disk = tmp_path / "web.vhdx"
        restored = cli("restore", vm["snapshot"], "--repo", str(repo_path), "--disk", "0", "--to", str(one_disk))
        assert restored.code == 0, restored.stderr
        json.dumps(ok.json())
    finally:
        lab.destroy()
