"""LabHost: a folder that behaves like a Hyper-V host (the embedded default host).

Semantics follow the HyperVHost interface and docs/LAB.md (which cites the sources). Each
operation holds the VM folder's operation lock; disks and vm.json change only under its I/O lock,
which the running VM's workload also takes around each write batch.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hvbackup import kvpreport
from hvbackup.disk import open_disk, virtual_sha256
from hvbackup.errors import UsageError
from hvbackup.guest import kvp
from hvbackup.hyperv.diskwriter import LocalDiskWriter
from hvbackup.hyperv.enums import (
    CheckpointType,
    ConsistencyLevel,
    IntegrationServiceStatus,
    ReferencePointType,
    SnapshotType,
    VMState,
)
from hvbackup.hyperv.errors import InvalidVmState, ObjectNotFound, VmNotFound, WmiJobError
from hvbackup.hyperv.filesource import LocalFileSource
from hvbackup.hyperv.host import ByteSource, HyperVHost
from hvbackup.hyperv.model import (
    CHECKPOINT_PREFIX,
    ORPHAN_AVHDX,
    ORPHAN_CHECKPOINT,
    ORPHAN_RECOVERY_CHECKPOINT,
    VM,
    ChangeTrackingId,
    Checkpoint,
    Host,
    Orphan,
    ReferencePoint,
    VirtualDisk,
    VmConfig,
)
from hvbackup.lab import disks as chain
from hvbackup.lab.folder import (
    LAB_FORMAT,
    VmFolder,
    read_lab_file,
    vm_folders,
    write_lab_file,
)
from hvbackup.lab.guestchannel import AgentGuest, NoGuest, StockGuest, kvp_dir
from hvbackup.lab.guestio import Writers, check_write, write_file
from hvbackup.lab.locks import held
from hvbackup.lab.newvm import build_vm_record
from hvbackup.lab.processes import start_workload, wait_stopped, workload_alive
from hvbackup.lab.rct import iterate_changes
from hvbackup.lab.record import CheckpointRecord, VmRecord
from hvbackup.lab.sample import build_sample
from hvbackup.lab.view import checkpoint_model, vm_model

JOB_FAILED = 32768  # Msvm_ConcreteJob.ErrorCode "Failed" (docs/HYPERV.md §1)
JOB_EXCEPTION = 10  # Msvm_ConcreteJob.JobState "Exception"
VMRS_SIZE = 4 << 20
SUPPORTED_VERSIONS = ("8.0", "9.0", "9.1", "10.0")
SETTINGS_LOCK = ".lab.lock"
JOB_MODES = ("sync", "async")
DEFAULT_BEHAVIOUR: dict[str, Any] = {
    "jobs": "sync",
    "job_polls": 2,
    "failures": [],
    "vhd_errors": {},
    "fibre_channel": {},
}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def default_recovery_name(vm_name: str, when: datetime | None = None) -> str:
    """The name Hyper-V gives a recovery checkpoint that nobody renamed (docs/LAB.md "Checkpoint names")."""
    moment = when or datetime.now(UTC)
    return f"{vm_name} - Backup - ({moment.strftime('%m/%d/%Y - %H:%M:%S')})"


class LabHost(HyperVHost):
    """A lab host in `directory` (made by `LabHost.create`)."""

    directory: Path  # always a folder here; the interface allows None for hosts without one
    disk_writer = LocalDiskWriter()  # restored disks are local files of the lab folder

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory).resolve()
        self.settings = read_lab_file(self.directory)

    @classmethod
    def create(
        cls,
        directory: Path | str,
        *,
        sample: bool = False,
        record_digests: bool = False,
        on_sample_vm: Callable[[Any], None] | None = None,
    ) -> LabHost:
        """A new lab folder (refused if `directory` exists and is not empty); `sample` adds the sample VMs."""
        directory = Path(directory)
        if directory.exists() and any(directory.iterdir()):
            raise UsageError(f"{directory} exists and is not empty: give a new folder for the lab")
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "vms").mkdir()
        write_lab_file(directory, _lab_settings(directory, record_digests))
        lab = cls(directory)
        if sample:
            build_sample(lab, on_built=on_sample_vm or (lambda spec: None))
        return lab

    # -- lookups -----------------------------------------------------------------------------
    def folders(self) -> list[VmFolder]:
        return vm_folders(self.directory)

    def folder(self, vm: VM | str) -> VmFolder:
        """The folder of a VM given by model, id or name."""
        key = vm.id if isinstance(vm, VM) else vm
        found = [f for f in self.folders() if _matches(f.load(), key)]
        by_id = [f for f in found if f.load().id.lower() == key.lower()]
        if by_id:
            return by_id[0]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise VmNotFound(f"{len(found)} VMs are named {key!r}: give the VM id instead")
        raise VmNotFound(f"no VM {key!r} on {self.settings['host']['name']}")

    def _folder_of_checkpoint(self, checkpoint_id: str) -> tuple[VmFolder, VmRecord]:
        for folder in self.folders():
            record = folder.load()
            if record.checkpoint(checkpoint_id) is not None:
                return folder, record
        raise ObjectNotFound(f"no checkpoint {checkpoint_id} on {self.settings['host']['name']}")

    def _drive_of_file(self, path: str) -> tuple[VmFolder, str, str]:
        """(folder, drive, relative file) of a disk file in some chain."""
        wanted = Path(path).resolve()
        for folder in self.folders():
            record = folder.load()
            for drive, files in record.chains.items():
                for name in files:
                    if (folder.path / name).resolve() == wanted:
                        return folder, drive, name
        raise ObjectNotFound(f"{path} is not a virtual disk of a VM on this host")

    # -- facts -------------------------------------------------------------------------------
    def host_info(self) -> Host:
        facts = dict(read_lab_file(self.directory)["host"])
        if not facts.get("fqdn"):  # a lab made before hosts had one: its folder tells it apart
            digest = hashlib.sha256(str(self.directory).encode()).hexdigest()[:12]
            facts["fqdn"] = _lab_fqdn(str(facts["name"]), digest)
        return Host.from_json(facts)

    def identity(self) -> str:
        """Every lab is named LAB-HV01 and the sample's VM ids are fixed: each lab has its own FQDN,
        as Get-VMHost's FullyQualifiedDomainName tells real hosts of one short name apart."""
        return self.host_info().fqdn

    # -- lab settings (docs/LAB.md "Behaviours") -----------------------------------------------
    def _update_settings(self, change: Callable[[dict[str, Any]], Any]) -> Any:
        with held(self.directory / SETTINGS_LOCK):
            settings = read_lab_file(self.directory)
            answer = change(settings)
            write_lab_file(self.directory, settings)
        self.settings = settings
        return answer

    def behaviour(self) -> dict[str, Any]:
        """The lab's current behaviour settings (read from lab.json on every call)."""
        stored = read_lab_file(self.directory).get("behaviour") or {}
        return {**DEFAULT_BEHAVIOUR, **stored}

    def set_behaviour(self, *, jobs: str | None = None, job_polls: int | None = None) -> None:
        """How WMI methods answer: `jobs="sync"` (return value 0, done at once) or `"async"` (4096:
        a job that stays Running for `job_polls` polls of poll_job, then completes)."""
        if jobs is not None and jobs not in JOB_MODES:
            raise UsageError(f"jobs={jobs!r}: use one of {', '.join(JOB_MODES)}")
        if job_polls is not None and job_polls < 0:
            raise UsageError(f"job_polls={job_polls}: cannot be negative")

        def change(settings: dict[str, Any]) -> None:
            behaviour = settings.setdefault("behaviour", {})
            if jobs is not None:
                behaviour["jobs"] = jobs
            if job_polls is not None:
                behaviour["job_polls"] = job_polls

        self._update_settings(change)

    def set_host(self, **facts: Any) -> None:
        """Change the host's facts (hyperv.model.Host fields), e.g. `os_build="9600",
        os_version="6.3.9600"` for a Windows Server 2012 R2 host."""
        known = set(Host.__dataclass_fields__)
        unknown = set(facts) - known
        if unknown:
            raise UsageError(f"unknown host fact(s) {', '.join(sorted(unknown))}: known are {', '.join(sorted(known))}")

        def change(settings: dict[str, Any]) -> None:
            merged = {**settings["host"], **facts}
            settings["host"] = Host.from_json(merged).to_json()

        self._update_settings(change)

    def fail_operation(
        self,
        operation: str,
        code: int,
        *,
        vm: str | None = None,
        in_job: bool = False,
        description: str | None = None,
        times: int = 1,
    ) -> None:
        """The next `times` calls of `operation` (for VM `vm`, or any VM) fail with WMI `code`: as the
        method's return value (`in_job=False`), or as a job that ends in Exception with ErrorCode
        `code` and ErrorDescription `description` (`in_job=True`)."""
        vm_id = self.folder(vm).load().id.lower() if vm else None
        failure = {
            "operation": operation,
            "code": code,
            "vm": vm_id,
            "in_job": in_job,
            "description": description,
            "times": times,
        }
        self._update_settings(lambda s: s.setdefault("behaviour", {}).setdefault("failures", []).append(failure))

    def take_failure(self, operation: str, vm_id: str | None) -> dict[str, Any] | None:
        """The failure set for this call of `operation`, if any (it is used up)."""

        def change(settings: dict[str, Any]) -> dict[str, Any] | None:
            failures = settings.setdefault("behaviour", {}).setdefault("failures", [])
            for failure in failures:
                if failure["operation"] == operation and failure["vm"] in (None, (vm_id or "").lower()):
                    failure["times"] -= 1
                    if failure["times"] <= 0:
                        failures.remove(failure)
                    return dict(failure)
            return None

        if not self.behaviour()["failures"]:
            return None
        return self._update_settings(change)

    def set_vhd_error(self, vm_name: str, disk_index: int, message: str | None) -> None:
        """Get-VHD of the VM's disk `disk_index` fails with `message` (e.g. an SMB double hop), or
        works again (None)."""
        vm = self.get_vm(vm_name)
        drive = vm.disks[disk_index].instance_id or ""

        def change(settings: dict[str, Any]) -> None:
            errors = settings.setdefault("behaviour", {}).setdefault("vhd_errors", {})
            if message is None:
                errors.pop(drive, None)
            else:
                errors[drive] = message

        self._update_settings(change)

    def set_fibre_channel(self, vm_name: str, adapters: list[dict[str, str]]) -> None:
        """The VM's virtual Fibre Channel adapters, as [{"Name", "SanName"}] (Get-VMFibreChannelHba)."""
        vm_id = self.get_vm(vm_name).id.lower()
        plain = [{"Name": str(a["Name"]), "SanName": str(a["SanName"])} for a in adapters]
        self._update_settings(
            lambda s: s.setdefault("behaviour", {}).setdefault("fibre_channel", {}).update({vm_id: plain})
        )

    def inventory(self) -> list[VM]:
        vms = []
        for folder in self.folders():
            with folder.io() as record:
                vms.append(vm_model(folder, record))
        return vms

    def get_vm(self, vm: str) -> VM:
        folder = self.folder(vm)
        with folder.io() as record:
            return vm_model(folder, record)

    # -- checkpoints -------------------------------------------------------------------------
    def create_recovery_checkpoint(
        self,
        vm: VM,
        consistency: ConsistencyLevel,
        name: str,
        *,
        skip_unsupported_disks: bool = False,
        on_created: Callable[[Checkpoint], None] | None = None,
    ) -> Checkpoint:
        folder = self.folder(vm)
        with folder.operation():
            record = folder.load()
            current = record.model
            _refuse_unsupported_disks(current, skip_unsupported_disks)
            ask_guest = consistency == ConsistencyLevel.ApplicationConsistent and current.state == VMState.Running
            guest = self._guest(folder, record, current) if ask_guest else NoGuest()
            with guest:
                froze = guest.freeze() if ask_guest else False
                level = _recorded_level(current, consistency, ask_guest, froze, guest.detail)
                with folder.io() as record:  # the workload is paused: the guest's filesystems are "frozen"
                    taken = self._take_checkpoint(folder, record, name, level)
                    if froze:
                        guest.thaw()
                if froze:
                    guest.finish()
            self._after_checkpoint(folder, taken)  # the agent's report is in the guest's KVP pool
            if on_created is not None:  # the lab names a checkpoint as it takes it
                on_created(checkpoint_model(record, taken))
            return checkpoint_model(record, taken)

    def _guest(self, folder: VmFolder, record: VmRecord, current: VM) -> NoGuest | StockGuest | AgentGuest:
        vss = current.vss_service
        if vss is None or not vss.enabled:
            return NoGuest("the VSS integration service is disabled on the host")
        if vss.status != IntegrationServiceStatus.Ok or record.guest == "none":
            return NoGuest(f"VSS integration service: {vss.status_text or 'No Contact'} (no VSS daemon in the guest)")
        if record.guest == "agent":
            return AgentGuest(folder)
        readiness = _readiness(folder) or {}
        return StockGuest([m["mountpoint"] for m in readiness.get("freeze_covers", [])] or ["/"])

    def _take_checkpoint(
        self,
        folder: VmFolder,
        record: VmRecord,
        name: str,
        level: ConsistencyLevel,
        snapshot_type: SnapshotType = SnapshotType.Recovery,
    ) -> CheckpointRecord:
        parent = record.checkpoints[-1].id if record.checkpoints else None
        taken = CheckpointRecord(
            str(uuid.uuid4()).upper(),
            name or default_recovery_name(record.name),
            _now(),
            int(level),
            {},
            {},
            {},
            int(snapshot_type),
            parent,
        )
        for drive in record.chains:
            log = folder.change_log(drive, record)
            taken.positions[drive] = log.count()
            taken.rct[drive] = log.current_id()
            top = record.top(drive)
            child = chain.new_checkpoint_file(top)
            taken.frozen[drive] = folder.relative(top)
            record.chains[drive].append(folder.relative(child))
        record.checkpoints.append(taken)
        record.generation += 1
        record.save()
        return taken

    def _after_checkpoint(self, folder: VmFolder, taken: CheckpointRecord) -> None:
        if not self.settings.get("record_digests"):
            return
        digests = self._digests(folder, taken)
        with folder.io() as record:
            record.remember(record.digests, taken.id, digests)
            record.save()

    def _digests(self, folder: VmFolder, taken: CheckpointRecord) -> dict[str, str]:
        """sha256 of each frozen disk's virtual content (the frozen files never change again)."""
        return {str(folder.path / name): virtual_sha256(folder.path / name) for name in taken.frozen.values()}

    def checkpoint_disks(self, checkpoint: Checkpoint) -> list[VirtualDisk]:
        folder, _ = self._folder_of_checkpoint(checkpoint.id)
        with folder.io() as record:
            taken = record.checkpoint(checkpoint.id)
            if taken is None:
                raise ObjectNotFound(f"no checkpoint {checkpoint.id}")
            disks = []
            for template in record.model.disks:
                drive = template.instance_id or ""
                if drive in taken.frozen:
                    owned = chain.with_owner(drive, taken.id)
                    disks.append(chain.describe(_replace_id(template, owned), folder.path / taken.frozen[drive]))
            return disks

    def changed_ranges(self, disk_path: str, rct_id: str) -> Iterator[tuple[int, int]]:
        changes, size = self.changes_since(disk_path, rct_id)
        return iterate_changes(changes, size)

    def changes_since(self, disk_path: str, rct_id: str) -> tuple[list[tuple[int, int]], int]:
        """(merged ranges written to the disk of `disk_path` after `rct_id`, its virtual size)."""
        folder, drive, name = self._drive_of_file(disk_path)
        with folder.io() as record:
            until = None
            if name != record.chains[drive][-1]:
                until = next((c.positions[drive] for c in record.checkpoints if c.frozen.get(drive) == name), None)
            changes = folder.change_log(drive, record).changes(rct_id, until)
            with open_disk(folder.path / name) as image:
                return changes, image.size

    def vm_of_disk(self, disk_path: str) -> str:
        """The id of the VM whose disk chain holds `disk_path` (ObjectNotFound if none)."""
        folder, _, _ = self._drive_of_file(disk_path)
        return folder.load().id

    def rename_checkpoint(self, checkpoint: Checkpoint, name: str) -> Checkpoint:
        """ModifySystemSettings with a new ElementName: the checkpoint keeps its id."""
        folder, _ = self._folder_of_checkpoint(checkpoint.id)
        with folder.operation(), folder.io() as record:
            taken = record.checkpoint(checkpoint.id)
            if taken is None:
                raise ObjectNotFound(f"no checkpoint {checkpoint.id}")
            taken.name = name
            record.save()
            return checkpoint_model(record, taken)

    def find_checkpoint(self, checkpoint_id: str) -> Checkpoint:
        """A checkpoint of any VM by id; ObjectNotFound if there is none."""
        _, record = self._folder_of_checkpoint(checkpoint_id)
        taken = record.checkpoint(checkpoint_id)
        assert taken is not None
        return checkpoint_model(record, taken)

    def find_reference_point(self, vm_id: str, point_id: str) -> ReferencePoint:
        for point in self.list_reference_points(self.get_vm(vm_id)):
            if point.id.lower() == point_id.lower():
                return point
        raise ObjectNotFound(f"VM {vm_id} has no reference point {point_id}")

    def create_user_checkpoint(self, vm_name: str, name: str) -> Checkpoint:
        """Checkpoint-VM of a Standard checkpoint (a user's): its AVHDX stays on top of each disk."""
        folder = self.folder(vm_name)
        with folder.operation(), folder.io() as record:
            taken = self._take_checkpoint(folder, record, name, ConsistencyLevel.CrashConsistent, SnapshotType.Standard)
            return checkpoint_model(record, taken)

    def create_foreign_checkpoint(self, vm_name: str) -> Checkpoint:
        """A recovery checkpoint another backup product took and left, under Hyper-V's default name."""
        folder = self.folder(vm_name)
        with folder.operation(), folder.io() as record:
            taken = self._take_checkpoint(folder, record, "", ConsistencyLevel.CrashConsistent)
            return checkpoint_model(record, taken)

    def convert_to_reference_point(self, checkpoint: Checkpoint) -> ReferencePoint:
        folder, _ = self._folder_of_checkpoint(checkpoint.id)
        with folder.operation(), folder.io() as record:
            taken, merged = self._remove_checkpoint(folder, record, checkpoint.id)
            point = ReferencePoint(
                id=f"Microsoft:{record.id.upper()}:RP:{str(uuid.uuid4()).upper()}",
                vm_id=record.id,
                type=ReferencePointType.RctBased,
                consistency_level=ConsistencyLevel(taken.consistency),
                disks=tuple(
                    ChangeTrackingId(chain.with_owner(drive, record.id, chain.DISK_SUFFIX), rct)
                    for drive, rct in taken.rct.items()
                ),
                created=_now(),
            )
            record.reference_points.append(point.to_json())
            record.save()
            chain.finish_merges(merged)
            return point

    def destroy_checkpoint(self, checkpoint: Checkpoint) -> None:
        folder, _ = self._folder_of_checkpoint(checkpoint.id)
        with folder.operation(), folder.io() as record:
            _, merged = self._remove_checkpoint(folder, record, checkpoint.id)
            record.save()
            chain.finish_merges(merged)

    def _remove_checkpoint(
        self, folder: VmFolder, record: VmRecord, checkpoint_id: str
    ) -> tuple[CheckpointRecord, list[tuple[Path, Path]]]:
        """Merge the checkpoint's differencing disks into their parents (what DestroySnapshot does).
        The caller saves the record, then finishes the merges (disks.merge_into_parent says why)."""
        taken = record.checkpoint(checkpoint_id)
        if taken is None:
            raise ObjectNotFound(f"no checkpoint {checkpoint_id} on VM {record.name}")
        for drive, frozen in taken.frozen.items():
            files = record.chains[drive]
            own = files.index(frozen) + 1
            if own != len(files) - 1:
                raise InvalidVmState(
                    f"{record.name}: checkpoint {taken.name} has newer checkpoints on top; "
                    "the lab merges the newest first"
                )
        merged = []
        for drive in taken.frozen:
            files = record.chains[drive]
            child = folder.path / files.pop()
            merged.append((child, chain.merge_into_parent(child)))
        record.checkpoints.remove(taken)
        for newer in record.checkpoints:  # Hyper-V re-parents the children of a deleted checkpoint
            if newer.parent == taken.id:
                newer.parent = taken.parent
        record.generation += 1
        return taken, merged

    def list_reference_points(self, vm: VM) -> list[ReferencePoint]:
        record = self.folder(vm).load()
        return [ReferencePoint.from_json(p) for p in record.reference_points]

    def destroy_reference_point(self, reference_point: ReferencePoint) -> None:
        folder = self.folder(reference_point.vm_id)
        with folder.operation(), folder.io() as record:
            kept = [p for p in record.reference_points if p["id"].lower() != reference_point.id.lower()]
            if len(kept) == len(record.reference_points):
                raise ObjectNotFound(f"no reference point {reference_point.id} on VM {record.name}")
            record.reference_points = kept
            record.save()

    # -- states ------------------------------------------------------------------------------
    def start_vm(self, vm: VM) -> None:
        folder = self.folder(vm)
        with folder.operation(), folder.io() as record:
            state = record.model.state
            if state == VMState.Running and workload_alive(record.workload_pid):
                return
            folder.vmrs_path(record.id).unlink(missing_ok=True)
            record.workload_pid = start_workload(folder.path)
            record.shutdown_requested = False
            record.set(state=VMState.Running)
            record.save()

    def stop_vm(self, vm: VM) -> None:
        """Turn off: the workload stops where it is; a saved state is discarded (Stop-VM -TurnOff)."""
        folder = self.folder(vm)
        with folder.operation():
            pid = self._leave_running(folder, VMState.Off)
            folder.vmrs_path(folder.load().id).unlink(missing_ok=True)
            wait_stopped(pid)

    def save_vm(self, vm: VM) -> None:
        folder = self.folder(vm)
        with folder.operation():
            state = folder.load().model.state
            if state == VMState.Saved:
                return
            if state != VMState.Running:
                raise InvalidVmState(f"{vm.name} is {state.name}: only a running VM can be saved")
            pid = self._leave_running(folder, VMState.Saved)
            wait_stopped(pid)
            record = folder.load()
            folder.vmrs_path(record.id).write_bytes(random.Random(record.id).randbytes(VMRS_SIZE))

    def _leave_running(self, folder: VmFolder, state: VMState) -> int | None:
        with folder.io() as record:
            pid = record.workload_pid
            record.set(state=state)
            record.workload_pid = None
            record.shutdown_requested = False
            record.save()
            return pid

    def request_shutdown(self, vm: VM, reason: str) -> None:
        """Msvm_ShutdownComponent.InitiateShutdown: needs a running guest answering the Shutdown service."""
        folder = self.folder(vm)
        with folder.operation(), folder.io() as record:
            current = record.model
            if current.state != VMState.Running:
                raise InvalidVmState(f"{current.name} is {current.state.name}: only a running VM can shut down")
            service = current.integration_service("Shutdown")
            if service is None or not service.enabled or service.status != IntegrationServiceStatus.Ok:
                raise InvalidVmState(
                    f"{current.name}: the Shutdown integration service does not answer "
                    "(no Integration Services in the guest); save or turn off the VM instead"
                )
            if workload_alive(record.workload_pid):
                record.shutdown_requested = True
            else:  # no guest process to do it: the shutdown completes at once
                record.set(state=VMState.Off)
                record.workload_pid = None
            record.save()

    # -- housekeeping ------------------------------------------------------------------------
    def list_orphans(self, vm: VM) -> list[Orphan]:
        folder = self.folder(vm)
        record = folder.load()
        orphans = []
        for c in record.checkpoints:
            checkpoint = checkpoint_model(record, c)
            if checkpoint.is_recovery:
                kind = ORPHAN_RECOVERY_CHECKPOINT
            elif c.name.startswith(CHECKPOINT_PREFIX):
                kind = ORPHAN_CHECKPOINT
            else:
                continue  # a user's checkpoint is nobody's leftover (list_orphans.ps1)
            orphans.append(
                Orphan(
                    kind=kind,
                    vm_id=record.id,
                    vm_name=record.name,
                    id=c.id,
                    name=c.name,
                    created=c.created,
                    is_ours=checkpoint.is_ours,
                    detail=f"{checkpoint.type.name} checkpoint",
                )
            )
        used = {
            (f.path / name).resolve() for f in self.folders() for files in f.load().chains.values() for name in files
        }
        for path in sorted(folder.disks_dir.glob("*.avhdx")):
            if path.resolve() not in used:
                created = datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
                orphans.append(
                    Orphan(
                        ORPHAN_AVHDX,
                        record.id,
                        record.name,
                        path=str(path),
                        created=created,
                        detail="not part of any disk chain on this host",
                    )
                )
        return orphans

    def create_vm(self, config: VmConfig, name: str, disk_paths: Sequence[str]) -> VM:
        if len(disk_paths) != len(config.disks):
            raise UsageError(
                f"create_vm: {len(config.disks)} disks in the configuration, {len(disk_paths)} paths given"
            )
        folder = build_vm_record(self.directory, config, name, [Path(p) for p in disk_paths])
        return self.get_vm(folder.load().id)

    def open_disk_source(self, path: str) -> ByteSource:
        return LocalFileSource(path)

    # -- lab-only extras ---------------------------------------------------------------------
    def write_guest_file(self, vm_name: str, path_in_guest: str, data: bytes, offset: int = 0) -> None:
        """Overwrite bytes of an existing guest file in place, as the running guest would."""
        folder = self.folder(vm_name)
        with folder.io() as record:
            if record.model.state != VMState.Running:
                raise InvalidVmState(f"{record.name} is {record.model.state.name}: only a running guest writes")
            target = check_write(record, path_in_guest, len(data), offset)
            writers = Writers()
            try:
                write_file(folder, record, target, offset, bytes(data), writers)
            finally:
                writers.close()
            record.generation += 1
            record.save()

    def read_guest_file(self, vm_name: str, path_in_guest: str, disk_path: str | None = None) -> bytes:
        """A writable guest file's bytes as the VM sees them now, or as stored in `disk_path` (a frozen file)."""
        folder = self.folder(vm_name)
        with folder.io() as record:
            target = record.writable_file(path_in_guest)
            if target is None:
                raise UsageError(f"{record.name}: {path_in_guest} is not a file the lab tracks")
            source = Path(disk_path) if disk_path else record.top(target.drive)
            out = bytearray(target.size)
            with open_disk(source) as image:
                for disk_off, data_off, length in target.disk_pieces(0, target.size):
                    out[data_off : data_off + length] = image.read(disk_off, length)
            return bytes(out)

    def reset_change_tracking(self, vm_name: str) -> None:
        """As after a host crash: every earlier RCT id of the VM's disks becomes unanswerable."""
        folder = self.folder(vm_name)
        with folder.operation(), folder.io() as record:
            for drive in record.chains:
                folder.change_log(drive, record).reset()

    def set_checkpoint_type(self, vm_name: str, checkpoint_type: CheckpointType) -> None:
        """Set-VM -CheckpointType."""
        folder = self.folder(vm_name)
        with folder.operation(), folder.io() as record:
            record.set(checkpoint_type=checkpoint_type)
            record.save()

    def set_integration_service(self, vm_name: str, service: str, enabled: bool) -> None:
        """Enable-/Disable-VMIntegrationService: e.g. "VSS" off makes the guest unable to freeze."""
        folder = self.folder(vm_name)
        with folder.operation(), folder.io() as record:
            current = record.model.integration_services
            if not any(s.name == service for s in current):
                known = ", ".join(s.name for s in current)
                raise UsageError(f"{record.name} has no integration service {service!r} (it has: {known})")
            record.set(integration_services=[replace(s, enabled=enabled) if s.name == service else s for s in current])
            record.save()

    def checkpoint_digests(self, checkpoint_id: str) -> dict[str, str]:
        """sha256 of each frozen disk's virtual content when the checkpoint was taken (record_digests only)."""
        for folder in self.folders():
            found = folder.load().digests.get(checkpoint_id.upper())
            if found is not None:
                return dict(found)
        return {}

    def stop_all(self) -> None:
        """Turn every running VM off (their workloads end)."""
        for vm in self.inventory():
            if vm.state == VMState.Running:
                self.stop_vm(vm)

    def destroy(self) -> None:
        """Stop every workload and remove the lab folder."""
        for folder in self.folders():
            with folder.io() as record:
                pid = record.workload_pid
                if record.model.state == VMState.Running:
                    record.set(state=VMState.Off)
                record.workload_pid = None
                record.save()
            wait_stopped(pid)
        shutil.rmtree(self.directory)


def open_host(directory: str) -> LabHost:
    """What `connect("lab:DIR")` calls."""
    return LabHost(directory)


def _readiness(folder: VmFolder) -> dict[str, Any] | None:
    """The readiness report the guest published in its KVP pool, when it is intact."""
    try:
        found = kvp.published(kvp_dir(folder), kvpreport.READINESS)
    except kvpreport.TornReport:
        return None
    return found.report if found is not None else None


def _matches(record: VmRecord, key: str) -> bool:
    return record.id.lower() == key.lower() or record.name == key


def _replace_id(template: VirtualDisk, instance_id: str) -> VirtualDisk:
    return replace(template, instance_id=instance_id)


def _refuse_unsupported_disks(vm: VM, skip: bool) -> None:
    passthrough = [d for d in vm.disks if d.is_passthrough]
    if passthrough and not skip:
        names = ", ".join(f"{d.address} (disk {d.passthrough_disk_number})" for d in passthrough)
        raise WmiJobError(
            "create_checkpoint",
            JOB_FAILED,
            f"'{vm.name}' cannot be checkpointed: pass-through disks cannot be part of a checkpoint: {names} "
            "(IgnoreNonSnapshottableDisks skips them)",
            JOB_EXCEPTION,
        )


def _recorded_level(vm: VM, asked: ConsistencyLevel, asked_guest: bool, froze: bool, detail: str) -> ConsistencyLevel:
    """The ConsistencyLevel Hyper-V records, or WmiJobError when the checkpoint type forbids a fallback."""
    if vm.state == VMState.Saved:
        return ConsistencyLevel.CrashConsistent
    if not asked_guest:
        return asked if asked != ConsistencyLevel.Unknown else ConsistencyLevel.CrashConsistent
    if froze:
        return ConsistencyLevel.ApplicationConsistent
    if vm.checkpoint_type == CheckpointType.ProductionOnly:
        raise WmiJobError(
            "create_checkpoint",
            JOB_FAILED,
            f"production checkpoint of '{vm.name}' failed and its checkpoint type (ProductionOnly) allows no "
            f"fallback: the guest could not freeze its file systems ({detail or 'no answer'})",
            JOB_EXCEPTION,
        )
    return ConsistencyLevel.CrashConsistent


def _lab_fqdn(name: str, token: str) -> str:
    return f"{name.lower()}.{token}.lab.invalid"  # .invalid: a name no real host has (RFC 2606)


def _lab_settings(directory: Path, record_digests: bool) -> dict[str, Any]:
    vms = str(Path(directory).resolve() / "vms")
    return {
        "format": LAB_FORMAT,
        "record_digests": record_digests,
        "host": Host(
            name="LAB-HV01",
            os_caption="Microsoft Windows Server 2022 Datacenter (hvbackup lab host)",
            os_version="10.0.20348",
            os_build="20348",
            vm_path=vms,
            vhd_path=vms,
            logical_processors=os.cpu_count() or 1,
            memory_bytes=os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
            supported_versions=SUPPORTED_VERSIONS,
            default_version="10.0",
            fqdn=_lab_fqdn("LAB-HV01", uuid.uuid4().hex[:12]),
        ).to_json(),
    }
