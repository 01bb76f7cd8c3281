"""`hvbackup demo`: the whole product on the built-in lab host, in a fresh folder.

Creates a lab host with the sample Linux VMs and a repository, backs every VM up (live where it
can, saved state where the policy allows and the VM cannot freeze), changes a file inside a
running VM, backs up again (incremental through change tracking), restores that VM as a new VM,
checks that each restored disk equals the frozen disk at the checkpoint, and reads the changed
file back out of the restored VM's filesystem.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from hvbackup.assess.policy import Policy
from hvbackup.disk import open_disk, virtual_sha256
from hvbackup.engine.files.view import as_binary_file
from hvbackup.engine.manifest import manifest_of
from hvbackup.engine.vm_backup import RunResult, backup_vms
from hvbackup.engine.vm_restore import restore_vm
from hvbackup.errors import HvBackupError
from hvbackup.fs.filesystem import FileSystem
from hvbackup.fs.volumes import find_volumes
from hvbackup.repo import Repository
from hvbackup.vocabulary import Downtime, RequiredConsistency

DEMO_PASSWORD = "hvbackup-demo"
DEMO_VM = "web-01"
CHANGED_FILE = "/var/lib/app/data.bin"
MIB = 1024 * 1024


@dataclass
class DemoResult:
    folder: str
    runs: dict[str, dict] = field(default_factory=dict)
    restore: dict = field(default_factory=dict)
    checks: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c["ok"] for c in self.checks)

    def to_json(self) -> dict:
        return {"folder": self.folder, "ok": self.ok, "runs": self.runs, "restore": self.restore, "checks": self.checks}


def read_guest_file(disk_path: str, guest_path: str, length: int) -> bytes:
    """Bytes of a file inside the filesystem on a VHDX, read in-process (no mount)."""
    with open_disk(disk_path) as image:
        for volume in find_volumes(as_binary_file(image), image.logical_sector_size):
            if not volume.is_filesystem:
                continue
            fs = FileSystem(volume)
            try:
                entry = fs.get(guest_path)
            except HvBackupError:
                continue
            with fs.open(entry) as f:
                return f.read(length)
    raise HvBackupError(f"{guest_path} is on no filesystem of {disk_path}")


def run_demo(folder: Path, say: Callable[[str], None] = lambda s: None) -> DemoResult:
    from hvbackup.lab import LabHost, powershell_host

    if folder.exists() and any(folder.iterdir()):
        raise HvBackupError(f"demo folder {folder} is not empty: pass a new folder")
    result = DemoResult(str(folder))
    policy = Policy(consistency=RequiredConsistency.filesystem, allow_downtime=Downtime.save)

    t = time.monotonic()
    lab = LabHost.create(folder / "lab", sample=True, record_digests=True)
    say(f"lab host with {len(lab.inventory())} sample Linux VMs in {folder / 'lab'} ({time.monotonic() - t:.1f} s)")
    host = powershell_host(lab)  # every step below runs the code a real host runs, through the scripts
    try:
        with Repository.init(folder / "repo", DEMO_PASSWORD) as repo:
            result.runs["full"] = _backup(host, repo, policy, "full backup", say).to_json()
            marker = f"changed by the hvbackup demo at {datetime.now(UTC).isoformat()}".encode()
            lab.write_guest_file(DEMO_VM, CHANGED_FILE, marker)
            say(f"wrote {len(marker)} bytes into {CHANGED_FILE} inside the running VM {DEMO_VM}")
            incremental = _backup(host, repo, policy, "incremental backup", say)
            result.runs["incremental"] = incremental.to_json()
            _restore_and_check(host, lab, repo, incremental, marker, result, say)
    finally:
        lab.stop_all()  # a demo leaves no VM workload running behind it
    return result


def _backup(host, repo: Repository, policy: Policy, label: str, say: Callable[[str], None]) -> RunResult:
    t = time.monotonic()
    run = backup_vms(host, repo, host.inventory(), policy, parallel=2)
    say(f"{label} of {len(run.vms)} VMs in {time.monotonic() - t:.1f} s")
    return run


def _restore_and_check(
    host, lab, repo: Repository, run: RunResult, marker: bytes, result: DemoResult, say: Callable[[str], None]
) -> None:
    backed_up = next(v for v in run.vms if v.name == DEMO_VM)
    if backed_up.snapshot is None:
        raise HvBackupError(f"the demo's backup of {DEMO_VM} made no snapshot: {backed_up.message}")
    snapshot = repo.load_snapshot(backed_up.snapshot)
    t = time.monotonic()
    restored = restore_vm(host, repo, snapshot, name=f"{DEMO_VM}-restored", start=False)
    result.restore = restored.to_json()
    say(f"restored {DEMO_VM} as new VM {restored.name} ({restored.vm_id}) in {time.monotonic() - t:.1f} s")
    frozen = lab.checkpoint_digests(backed_up.checkpoint)
    new_vm = host.get_vm(restored.vm_id)
    for disk, entry in zip(new_vm.disks, manifest_of(snapshot).disks, strict=False):
        want = frozen.get(entry.path)
        same = want is not None and virtual_sha256(disk.path) == want
        result.checks.append(
            {"check": f"restored disk {entry.name} equals the frozen disk at the checkpoint", "ok": same}
        )
    found = read_guest_file(new_vm.disks[0].path, CHANGED_FILE, len(marker))
    result.checks.append(
        {
            "check": f"the restored VM's filesystem holds the change to {CHANGED_FILE}",
            "ok": found == marker,
            "found": found.decode(errors="replace"),
        }
    )
    host.start_vm(new_vm)
    result.checks.append(
        {"check": f"{restored.name} starts", "ok": host.get_vm(restored.vm_id).state.name == "Running"}
    )
    for check in result.checks:
        say(("✓ " if check["ok"] else "✗ ") + check["check"])
