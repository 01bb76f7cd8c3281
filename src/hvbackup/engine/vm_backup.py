"""`hvbackup backup`: whole Linux VMs from a Hyper-V host (or the lab) into the repository.

Per VM: clean up what an earlier run of ours left, plan the mode from the assessment verdict,
take a recovery checkpoint (live, or with the VM saved or shut down when the policy allows and
needs it), read the frozen disks (incremental from the last reference point when change tracking
is intact), convert the checkpoint to a reference point and read the consistency back, commit the
snapshot, and drop the previous reference point. Every checkpoint is released and every VM we
paused is resumed in a `finally`.

The reference point is made before the commit because only it carries the consistency level
Hyper-V achieved (docs/HYPERV.md §3 item 3); it becomes the next incremental's base only through the
committed manifest, and is destroyed again if the commit fails.
"""

from __future__ import annotations

import dataclasses
import errno
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from hvbackup.assess.outlook import SAVED_STATES
from hvbackup.assess.policy import Policy
from hvbackup.assess.verdict import Verdict, predict
from hvbackup.disk import open_disk
from hvbackup.engine import faults, journal
from hvbackup.engine.disk_backup import DiskBackup, DiskBackupResult, NoProgress, Progress
from hvbackup.engine.image_backup import disk_entry
from hvbackup.engine.manifest import (
    CheckpointEntry,
    ConfigFileEntry,
    DiskEntry,
    GuestFreezeReport,
    ReferencePointEntry,
    VmEntry,
    VmManifest,
    manifest_of,
)
from hvbackup.errors import EXIT_FAILED, EXIT_LOCKED, EXIT_OK, EXIT_PARTIAL, HvBackupError, UsageError
from hvbackup.hyperv.enums import ConsistencyLevel, SnapshotType, VMState
from hvbackup.hyperv.errors import ChangeTrackingUnavailable, HyperVError, WmiJobError
from hvbackup.hyperv.host import HyperVHost, checkpoint_name
from hvbackup.hyperv.model import VM, Checkpoint, Host, ReferencePoint, VirtualDisk
from hvbackup.repo import Repository, Snapshot
from hvbackup.repo.errors import RepositoryReadOnly, with_kept_chunks_note
from hvbackup.vocabulary import BackupMode, Consistency, VmResult

RESULT_OK = VmResult.ok
RESULT_BELOW_POLICY = VmResult.below_policy
RESULT_PARTIAL = VmResult.partial
RESULT_FAILED = VmResult.failed
RESULT_LOCKED = VmResult.locked


class Cancelled(HvBackupError):
    exit_code = 130


class VmProgress(Protocol):
    """What one VM's run reports: the phase it is in, and the bytes of the disk it reads."""

    def phase(self, text: str) -> None: ...
    def set_total(self, total: int) -> None: ...
    def advance(self, nbytes: int) -> None: ...


class NoVmProgress(NoProgress):
    def phase(self, text: str) -> None:
        pass


@dataclass
class VmBackupResult:
    name: str
    vm_id: str
    mode: BackupMode = BackupMode.none
    consistency: Consistency = Consistency.none
    result: VmResult = VmResult.failed
    snapshot: str | None = None
    short_snapshot: str | None = None
    checkpoint: str | None = None
    message: str = ""
    predicted: dict = field(default_factory=dict)
    bytes_read: int = 0
    bytes_new: int = 0
    bytes_unchanged: int = 0
    duration_s: float = 0.0
    frozen_or_unavailable_s: float = 0.0
    disks: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return dict(self.__dict__)


def meets(consistency: Consistency | str, policy: Policy, *, vmrs_captured: bool = False) -> bool:
    return policy.accepts(consistency, vmrs_captured=vmrs_captured)


def disk_name(disk: VirtualDisk) -> str:
    return f"{disk.controller_type.name.lower()}{disk.controller_number}-{disk.controller_location}"


class VmBackup:
    """One VM's backup run."""

    def __init__(
        self,
        host: HyperVHost,
        repo: Repository,
        vm: VM,
        policy: Policy,
        *,
        guest: dict | None = None,
        progress: VmProgress | None = None,
        cancel: threading.Event | None = None,
        host_facts: Host | None = None,
    ) -> None:
        self.host = host
        self.host_facts = host_facts
        self.repo = repo
        self.vm = vm
        self.policy = policy
        self.guest = guest
        self.progress = progress or NoVmProgress()
        self.cancel = cancel or threading.Event()
        self.result = VmBackupResult(name=vm.name, vm_id=vm.id)
        self.checkpoint: Checkpoint | None = None
        self.checkpoint_id: str | None = None
        self.checkpoint_name = ""
        self.new_rp: ReferencePoint | None = None
        self.config_files: list[ConfigFileEntry] = []
        self.committed = False
        self.paused_at: float | None = None
        self.host_key = host.identity()  # journal and lock key: two lab folders both call themselves LAB-HV01

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> VmBackupResult:
        """The VM's backup under its backup lock; a VM another run holds is refused up front."""
        started = time.monotonic()
        try:
            with journal.backing_up(self.host_key, self.vm.id, self.vm.name):
                self._run()
        except journal.VmBusy as exc:
            self.result.result = RESULT_LOCKED
            self.result.message = str(exc)
        finally:
            self.result.duration_s = round(time.monotonic() - started, 3)
        return self.result

    def _run(self) -> None:
        try:
            self.progress.phase("planning (leftovers of earlier runs, the mode)")
            self._refuse_a_host_without_backup_checkpoints()
            self._clean_orphans()
            verdict = predict(self.vm, self.policy, self.guest, self.host_facts)
            self.result.predicted = verdict.to_json()
            if verdict.mode == BackupMode.none:
                raise HvBackupError(verdict.summary)
            self._backup(verdict)
        except Cancelled:
            self.result.message = "interrupted"
            raise
        except HvBackupError as exc:
            self._fail(str(exc))
        except OSError as exc:  # the repository's disk full or read-only: this VM fails, its checkpoint goes
            self._fail(_describe_os_error(exc))
        finally:
            if self.checkpoint is not None or self.paused_at is not None:
                self.progress.phase("releasing the checkpoint")
            self._release()
            self._collect_host_warnings()

    def _refuse_a_host_without_backup_checkpoints(self) -> None:
        """A host older than Windows Server 2016 is named as such before any WMI call of the backup."""
        if self.host_facts is None:
            self.host_facts = self.host.host_info()
        if self.host_facts.backup_checkpoints_problem() is None:
            return
        verdict = predict(self.vm, self.policy, self.guest, self.host_facts)
        self.result.predicted = verdict.to_json()
        raise HvBackupError(verdict.summary)

    def _collect_host_warnings(self) -> None:
        self.result.warnings.extend(self.host.take_warnings())

    def _fail(self, message: str) -> None:
        self.result.result = RESULT_FAILED
        stored_chunks = self.checkpoint_id is not None and not self.committed
        self.result.message = with_kept_chunks_note(message) if stored_chunks else message

    def _backup(self, verdict: Verdict) -> None:
        self.result.mode = verdict.mode
        previous = self._previous_snapshot()
        self.progress.phase(_checkpoint_phase(verdict, self.vm))
        self._take_checkpoint(verdict)
        self.checkpoint_id = self.result.checkpoint = self._held_checkpoint().id
        self._collect_host_warnings()
        faults.point("after-checkpoint")
        disks = self._read_disks(previous) + self._capture_config_files()
        faults.point("after-read")
        self.progress.phase("converting to a reference point")
        self.new_rp = self.host.convert_to_reference_point(self._held_checkpoint())
        self.checkpoint = None
        journal.forget_checkpoint(self.host_key, self.vm.id, self.checkpoint_id)
        self._collect_host_warnings()
        faults.point("after-convert")
        self.result.consistency = self._achieved_consistency()
        self.progress.phase("committing")
        snapshot = self._commit(verdict, disks)
        self.committed = True
        self.result.snapshot, self.result.short_snapshot = snapshot.id, snapshot.short_id
        faults.point("after-commit")
        self._drop_previous_reference_point(previous)
        self.result.result = self._judge(verdict)

    def _judge(self, verdict: Verdict) -> VmResult:
        if verdict.skipped_disks:
            self.result.message = "not backed up (never in a checkpoint): " + ", ".join(verdict.skipped_disks)
            return RESULT_PARTIAL
        if not meets(self.result.consistency, self.policy, vmrs_captured=self._vmrs_captured(verdict)):
            self.result.message = (
                f"{self.result.consistency}-consistent, policy asks for {self.policy.consistency}: {verdict.summary}"
            )
            return RESULT_BELOW_POLICY
        return RESULT_OK

    @staticmethod
    def _vmrs_captured(verdict: Verdict) -> bool:
        """Was the saved memory state (.vmrs) captured with the disks? The plan's word until the
        manifest records the captured configuration files."""
        return verdict.vmrs_captured

    # -- steps -------------------------------------------------------------------------------

    def _clean_orphans(self) -> None:
        """Remove what our interrupted runs left: checkpoints named ours or journalled as ours,
        except one that other checkpoints are taken on top of (removing it would merge them)."""
        current = self.host.get_vm(self.vm.id)
        parents = current.checkpoint_parents
        journalled = journal.our_checkpoints(self.host_key, self.vm.id)
        seen = set()
        for orphan in self.host.list_orphans(current):
            orphan_id = (orphan.id or "").lower()
            seen.add(orphan_id)
            ours = orphan.is_ours or orphan_id in journalled
            what = orphan.name or orphan.path or orphan.id
            if ours and orphan.kind in ("recovery-checkpoint", "checkpoint") and orphan.id:
                if orphan_id in parents:
                    self.result.warnings.append(
                        f"left alone: checkpoint {what} of an interrupted run of hvbackup has child checkpoints; "
                        "removing it would merge them: remove the checkpoints on top of it first"
                    )
                    continue
                self.host.destroy_checkpoint(
                    Checkpoint(id=orphan.id, name=orphan.name or "", vm_id=self.vm.id, type=SnapshotType.Recovery)
                )
                journal.forget_checkpoint(self.host_key, self.vm.id, orphan_id)
                self.result.warnings.append(f"removed checkpoint {what} left by an interrupted run of hvbackup")
            else:
                owner = "hvbackup" if ours else "another tool or an administrator"
                self.result.warnings.append(f"left alone: {orphan.kind} {what} (made by {owner})")
        for gone in journalled - seen:
            journal.forget_checkpoint(self.host_key, self.vm.id, gone)
        self.vm = self.host.get_vm(self.vm.id)
        how = journal.paused_by_us(self.host_key, self.vm.id)
        if how is not None:
            if self.vm.state in (VMState.Saved, VMState.Off):
                self.host.start_vm(self.vm)
                self.result.warnings.append(f"started the VM, which an interrupted run had left {how}")
                self.vm = self.host.get_vm(self.vm.id)
            journal.forget_paused(self.host_key, self.vm.id)

    def _previous_snapshot(self) -> Snapshot | None:
        snap = self.repo.latest_snapshot(self.vm.name)
        if snap is None:
            return None
        manifest = manifest_of(snap)
        if not isinstance(manifest, VmManifest) or manifest.vm.id != self.vm.id:
            return None
        return snap

    def _take_checkpoint(self, verdict: Verdict) -> None:
        name = self.checkpoint_name = checkpoint_name(datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ"))
        if _pauses(verdict, self.vm):
            self.paused_at = time.monotonic()
            journal.remember_paused(self.host_key, self.vm.id, verdict.mode)
            if verdict.mode == BackupMode.saved:
                self.host.save_vm(self.vm)
            else:
                self.host.shutdown_vm(self.vm)
            faults.point("while-paused")
            self._checkpoint(ConsistencyLevel.CrashConsistent, name)
            self._resume()
            return
        level = ConsistencyLevel.ApplicationConsistent if _freezes(verdict) else ConsistencyLevel.CrashConsistent
        frozen_from = time.monotonic()
        try:
            self._checkpoint(level, name)
        except WmiJobError as exc:
            # Only a CreateSnapshot job that failed, before any checkpoint existed, is tried again.
            if self.checkpoint is not None:
                raise
            if level != ConsistencyLevel.ApplicationConsistent or not meets(Consistency.crash, self.policy):
                raise
            self.result.warnings.append(
                f"the guest could not freeze ({exc.description}); took a crash-consistent checkpoint"
            )
            self._checkpoint(ConsistencyLevel.CrashConsistent, name)
        if self.vm.state == VMState.Running and level == ConsistencyLevel.ApplicationConsistent:
            self.result.frozen_or_unavailable_s = round(time.monotonic() - frozen_from, 3)

    def _checkpoint(self, level: ConsistencyLevel, name: str) -> None:
        self.checkpoint = self.host.create_recovery_checkpoint(
            self.vm, level, name, skip_unsupported_disks=True, on_created=self._hold
        )
        if self.checkpoint.name != name:
            self.result.warnings.append(
                f"the checkpoint {self.checkpoint.id} keeps the name {self.checkpoint.name!r}: hvbackup knows it by "
                "its id and removes it"
            )

    def _hold(self, checkpoint: Checkpoint) -> None:
        """The checkpoint exists: journal its id first, before the host names it."""
        journal.remember_checkpoint(self.host_key, self.vm.id, checkpoint.id)
        self.checkpoint = checkpoint
        faults.point("before-naming")

    def _resume(self) -> None:
        if self.paused_at is None:
            return
        self.host.start_vm(self.vm)
        journal.forget_paused(self.host_key, self.vm.id)
        self.result.frozen_or_unavailable_s = round(time.monotonic() - self.paused_at, 3)
        self.paused_at = None

    def _held_checkpoint(self) -> Checkpoint:
        if self.checkpoint is None:
            raise HvBackupError(f"{self.vm.name}: no checkpoint is held at this step")
        return self.checkpoint

    def _new_reference_point(self) -> ReferencePoint:
        if self.new_rp is None:
            raise HvBackupError(f"{self.vm.name}: no reference point was made at this step")
        return self.new_rp

    def _read_disks(self, previous: Snapshot | None) -> list[tuple[str, DiskEntry, DiskBackupResult]]:
        prev_rp = _reference_point_of(previous)
        known_rps = {rp.id for rp in self.host.list_reference_points(self.vm)} if prev_rp else set()
        out = []
        file_disks = [d for d in self.host.checkpoint_disks(self._held_checkpoint()) if not d.is_passthrough]
        self._check_frozen(file_disks)
        for n, disk in enumerate(file_disks, 1):
            self.progress.phase(f"reading disk {n} of {len(file_disks)}")
            previous_index, changed, reason = self._incremental_base(disk, previous, prev_rp, known_rps)
            entry, result = self._read_disk(disk, previous_index, changed)
            if reason and result.mode == "full":
                result.reason = reason
                entry = dataclasses.replace(entry, reason=reason)
            out.append((disk_name(disk), entry, result))
            self.result.disks.append(
                {"name": entry.name, "mode": entry.mode, "reason": entry.reason}
                | {k: v for k, v in entry.stats.items() if k.startswith("bytes")}
            )
            self.result.bytes_read += result.stats.bytes_read
            self.result.bytes_new += result.stats.bytes_new
            self.result.bytes_unchanged += result.stats.bytes_unchanged
        return out

    def _check_frozen(self, file_disks: list[VirtualDisk]) -> None:
        """Each checkpoint disk must be another file than the one the VM writes to now: a disk the
        checkpoint did not freeze would be copied while it changes (docs/HYPERV.md §17)."""
        live = {d.address: d.path.lower() for d in self.host.get_vm(self.vm.id).disks if not d.is_passthrough}
        for disk in file_disks:
            if live.get(disk.address) == disk.path.lower():
                raise HvBackupError(
                    f"disk {disk.address} was not frozen by checkpoint {self._held_checkpoint().id}: its checkpoint "
                    f"file {disk.path} is the file the VM writes to; nothing of it was read"
                )

    def _incremental_base(
        self, disk: VirtualDisk, previous: Snapshot | None, prev_rp: ReferencePoint | None, known_rps: set[str]
    ):
        name = disk_name(disk)
        earlier = {d.name: d for d in manifest_of(previous).disks} if previous is not None else {}
        if previous is None or name not in earlier:
            return None, None, "no earlier snapshot of this disk"
        index = previous.index(name)
        other = _other_disk(earlier[name].virtual_disk, disk)
        if other:
            return (
                index,
                None,
                f"{other}: the change-tracking id is not this disk's; read the whole disk (deduplicated)",
            )
        if prev_rp is None:
            return index, None, "the earlier snapshot has no reference point; read the whole disk (deduplicated)"
        if prev_rp.id not in known_rps:
            return index, None, "the earlier reference point is gone from the host; read the whole disk (deduplicated)"
        rct_id = prev_rp.rct_id_for(disk)
        if rct_id is None:
            return index, None, "no change-tracking id recorded for this disk; read the whole disk (deduplicated)"
        try:
            return index, list(self.host.changed_ranges(disk.path, rct_id)), None
        except ChangeTrackingUnavailable as exc:
            return index, None, f"change tracking unavailable ({exc}); read the whole disk (deduplicated)"

    def _read_disk(self, disk: VirtualDisk, previous_index, changed) -> tuple[DiskEntry, DiskBackupResult]:
        source = self.host.open_disk_source(disk.path)
        with open_disk(source, opener=self.host.open_disk_source) as image:
            backup = DiskBackup(self.repo, image, previous=previous_index, changed=changed)
            result = backup.run(progress=_Cancellable(self.progress, self.cancel))
            entry = disk_entry(disk_name(disk), disk.path, image, result)
        return dataclasses.replace(entry, controller=disk.address, virtual_disk=disk.to_json()), result

    def _capture_config_files(self) -> list[tuple[str, DiskEntry, DiskBackupResult]]:
        """The checkpoint's configuration files, read like disks (raw, deduplicated) when the host names
        them; one that cannot be read is a warning, never a failed backup. A Generation 2 VM without its
        .vmgs loses its NVRAM boot entries and vTPM state on restore (docs/HYPERV.md §14): said too."""
        out = []
        try:
            files = self.host.checkpoint_files(self._held_checkpoint()) or []
        except HyperVError as exc:
            files = []
            self.result.warnings.append(f"configuration files not captured: {exc}")
        for item in files:
            name = f"config.{item.kind}"
            self.progress.phase(f"reading the configuration file ({item.kind})")
            try:
                with open_disk(self.host.open_disk_source(item.path)) as image:
                    result = DiskBackup(self.repo, image).run(progress=_Cancellable(self.progress, self.cancel))
                    out.append((name, disk_entry(name, item.path, image, result), result))
            except (HyperVError, OSError) as exc:
                self.result.warnings.append(f"configuration file {item.path} not captured: {exc}")
                continue
            self.config_files.append(ConfigFileEntry(item.kind, item.path, result.stats.size, name))
        if self.vm.generation == 2 and not any(f.kind == "vmgs" for f in self.config_files):
            self.result.warnings.append(
                "the VM's guest state file (.vmgs) was not captured: a restore gets fresh NVRAM "
                "(boot entries) and no vTPM state"
            )
        return out

    def _achieved_consistency(self) -> Consistency:
        if self.result.mode in (BackupMode.offline, BackupMode.shutdown):
            return Consistency.offline
        if self.result.mode == BackupMode.saved or self.vm.state == VMState.Saved:
            return Consistency.saved_state
        if self._new_reference_point().consistency_level != ConsistencyLevel.ApplicationConsistent:
            return Consistency.crash
        report = self._guest_report()
        if report and report.get("consistency") == Consistency.application:
            return Consistency.application
        return Consistency.filesystem

    def _guest_report(self) -> dict | None:
        if self.checkpoint_id is None:
            return None
        return self.host.guest_report(self.checkpoint_id)

    def _commit(self, verdict: Verdict, disks: list[tuple[str, DiskEntry, DiskBackupResult]]):
        report = self._guest_report()
        manifest = VmManifest(
            source=self.vm.name,
            vm=VmEntry(self.vm.id, self.vm.name, self.vm.state.name, self.vm.config().to_json()),
            mode=self.result.mode,
            consistency=self.result.consistency,
            guest_report=GuestFreezeReport.from_json(report) if report is not None else None,
            predicted=verdict.to_json(),
            frozen_or_unavailable_s=self.result.frozen_or_unavailable_s,
            checkpoint=CheckpointEntry(self.checkpoint_id, self.checkpoint_name),
            reference_point=ReferencePointEntry(self._new_reference_point()),
            warnings=tuple(self.result.warnings),
            disks=tuple(entry for _, entry, _ in disks),
            config_files=tuple(self.config_files) or None,
        )
        return self.repo.commit_snapshot(manifest.to_json(), {name: result.index for name, _, result in disks})

    def _drop_previous_reference_point(self, previous: Snapshot | None) -> None:
        prev_rp = _reference_point_of(previous)
        if prev_rp is None or prev_rp.id == self._new_reference_point().id:
            return
        try:
            self.host.destroy_reference_point(prev_rp)
        except HyperVError as exc:
            self.result.warnings.append(f"could not remove the previous reference point: {exc}")

    def _release(self) -> None:
        """Whatever happened: no checkpoint of ours left, a paused VM running again."""
        errors = []
        for step in (self._release_checkpoint, self._release_reference_point, self._resume):
            try:
                step()
            except HvBackupError as exc:
                errors.append(str(exc))
        if errors:
            self.result.warnings.extend(f"cleanup: {e}" for e in errors)

    def _release_checkpoint(self) -> None:
        if self.checkpoint is not None:
            checkpoint, self.checkpoint = self.checkpoint, None
            self.host.destroy_checkpoint(checkpoint)
            journal.forget_checkpoint(self.host_key, self.vm.id, checkpoint.id)

    def _release_reference_point(self) -> None:
        if self.new_rp is not None and not self.committed:
            rp, self.new_rp = self.new_rp, None
            self.host.destroy_reference_point(rp)


class _Cancellable:
    """Passes progress on, and stops the run at the next chunk once cancelled (Ctrl-C)."""

    def __init__(self, inner: Progress, cancel: threading.Event) -> None:
        self.inner = inner
        self.cancel = cancel

    def advance(self, nbytes: int) -> None:
        if self.cancel.is_set():
            raise Cancelled("interrupted")
        self.inner.advance(nbytes)

    def set_total(self, total: int) -> None:
        self.inner.set_total(total)


def _pauses(verdict: Verdict, vm: VM) -> bool:
    """Does the run save or shut down the VM? Not a VM that is saved already."""
    return verdict.mode == BackupMode.shutdown or (verdict.mode == BackupMode.saved and vm.state not in SAVED_STATES)


def _freezes(verdict: Verdict) -> bool:
    """Does the run ask the guest to freeze (an application-consistent checkpoint)?"""
    return verdict.mode == BackupMode.live and verdict.consistency in (Consistency.application, Consistency.filesystem)


def _checkpoint_phase(verdict: Verdict, vm: VM) -> str:
    if _pauses(verdict, vm):
        return (
            "saving the VM for its checkpoint"
            if verdict.mode == BackupMode.saved
            else "shutting the VM down for its checkpoint"
        )
    if _freezes(verdict):
        return "checkpoint (the guest freezes)"
    return "checkpoint"


def _other_disk(recorded: Mapping[str, Any] | None, disk: VirtualDisk) -> str | None:
    """How the disk differs from the one the earlier snapshot read at this address (identifier,
    virtual size), or None when it is the same disk or nothing was recorded to tell."""
    if not recorded:
        return None
    before = VirtualDisk.from_json(dict(recorded))
    if before.disk_identifier and disk.disk_identifier and before.disk_identifier != disk.disk_identifier:
        return f"another disk (identifier {disk.disk_identifier}, was {before.disk_identifier})"
    if before.size and disk.size and before.size != disk.size:
        return f"the disk's virtual size changed ({before.size} -> {disk.size} bytes)"
    return None


def _describe_os_error(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    return f"{reason}: {exc.filename}" if exc.filename else reason


def _reference_point_of(snapshot: Snapshot | None) -> ReferencePoint | None:
    if snapshot is None:
        return None
    manifest = manifest_of(snapshot)
    if not isinstance(manifest, VmManifest) or manifest.reference_point is None:
        return None
    return manifest.reference_point.point


@dataclass
class RunResult:
    vms: list[VmBackupResult]
    duration_s: float

    @property
    def exit_code(self) -> int:
        """0 every VM ok; 11 every VM refused as being backed up by another run; 1 no VM got a
        snapshot; 3 otherwise (some below policy, partial or failed)."""
        if all(v.result == RESULT_OK for v in self.vms):
            return EXIT_OK
        if all(v.result == RESULT_LOCKED for v in self.vms):
            return EXIT_LOCKED
        if not any(v.snapshot for v in self.vms):
            return EXIT_FAILED
        return EXIT_PARTIAL

    def to_json(self) -> dict:
        return {
            "vms": [v.to_json() for v in self.vms],
            "duration_s": round(self.duration_s, 3),
            "ok": self.exit_code == 0,
        }


def select_vms(host: HyperVHost, names: list[str], all_vms: bool) -> list[VM]:
    if all_vms:
        return host.inventory()
    if not names:
        raise HvBackupError("name the VMs to back up, or pass --all")
    vms: dict[str, VM] = {}
    for name in names:
        vm = host.get_vm(name)
        vms.setdefault(vm.id, vm)  # a VM named twice is backed up once
    return list(vms.values())


def guest_readiness(host: HyperVHost, vm: VM) -> dict | None:
    return host.guest_readiness(vm.name)


def backup_vms(
    host: HyperVHost,
    repo: Repository,
    vms: list[VM],
    policy: Policy,
    *,
    parallel: int = 2,
    progress_for: Callable[[VM], VmProgress] | None = None,
    on_done: Callable[[VmBackupResult], None] = lambda r: None,
) -> RunResult:
    """Back up `vms`, up to `parallel` at a time, under one backup lease; `progress_for(vm)`
    gives each VM its own progress."""
    if parallel < 1:
        raise UsageError(f"--parallel {parallel}: at least 1 VM must be backed up at a time")
    started = time.monotonic()
    cancel = threading.Event()

    facts = host.host_info()

    def one(vm: VM) -> VmBackupResult:
        progress = progress_for(vm) if progress_for is not None else None
        guest = guest_readiness(host, vm)
        result = VmBackup(host, repo, vm, policy, guest=guest, progress=progress, cancel=cancel, host_facts=facts).run()
        on_done(result)
        return result

    with _lease(repo, f"backup of {len(vms)} VM(s) from {facts.name}"):
        pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="hvb-vm")
        futures = [pool.submit(one, vm) for vm in vms]
        try:
            results = [f.result() for f in futures]
        except BaseException:
            cancel.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    return RunResult(results, time.monotonic() - started)


@contextmanager
def _lease(repo: Repository, description: str) -> Iterator[None]:
    """The repository's backup lease; a repository this process cannot write to is refused
    before any VM is touched."""
    stack = ExitStack()
    try:
        stack.enter_context(repo.backup_lease(description))
    except RepositoryReadOnly as exc:
        raise RepositoryReadOnly(f"{exc}; no VM was touched") from None
    except OSError as exc:
        if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
        raise HvBackupError(
            f"cannot write to the repository ({_describe_os_error(exc)}): "
            "a backup needs a writable repository; no VM was touched"
        ) from None
    with stack:
        yield
