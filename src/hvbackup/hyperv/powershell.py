"""The Hyper-V host behind PowerShell: one script per operation, run through a Transport.

Each script prints one JSON document (hyperv/wire.py turns it into the model). Methods that
start a WMI job get back either the result or {"Pending": {"JobId", ...}} when the job is
still running after a short wait; the job is then polled with further short calls, so no
single call to the host runs long (docs/HYPERV.md §5).
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from hvbackup import kvpreport
from hvbackup.hyperv import kvp
from hvbackup.hyperv.diskwriter import writer_for
from hvbackup.hyperv.enums import ConsistencyLevel
from hvbackup.hyperv.errors import ChangeTrackingUnavailable, HyperVError, OperationTimeout, VmNotFound
from hvbackup.hyperv.host import ByteSource, ConfigFile, DiskWriter, HyperVHost, host_path_folder
from hvbackup.hyperv.model import (
    CHECKPOINT_PREFIX,
    VM,
    Checkpoint,
    Host,
    Orphan,
    ReferencePoint,
    VirtualDisk,
    VmConfig,
)
from hvbackup.hyperv.scripts import assemble
from hvbackup.hyperv.transport.base import Transport
from hvbackup.hyperv.wire import (
    as_list,
    changes_from_json,
    checkpoint_from_json,
    disk_from_json,
    host_from_json,
    orphan_from_json,
    parse_document,
    reference_point_from_json,
    vm_from_json,
)

_GUID = re.compile(r"^\{?[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\}?$")


class PowerShellHost(HyperVHost):
    def __init__(
        self,
        transport: Transport,
        disk_opener: Callable[[str], ByteSource],
        *,
        call_timeout: float = 300.0,
        job_timeout: float = 3600.0,
        job_wait: float = 10.0,
        poll_interval: float = 1.0,
        ranges_per_call: int = 20000,
        report_wait: float = 30.0,
        disk_writer: DiskWriter | None = None,
    ) -> None:
        self.transport = transport
        self.disk_opener = disk_opener
        self.disk_writer = disk_writer if disk_writer is not None else writer_for(disk_opener)
        self.call_timeout = call_timeout
        self.job_timeout = job_timeout
        self.job_wait = job_wait
        self.poll_interval = poll_interval
        self.ranges_per_call = ranges_per_call
        self._local = threading.local()
        self.report_wait = report_wait  # how long guest_report polls for the agent's freeze report
        self.requests: dict[str, tuple[str, str, str]] = {}  # checkpoint id -> (VM id, token announced, VM name)
        self.reports: dict[str, dict[str, Any] | None] = {}  # checkpoint id -> the report counted, once read
        self.guest_notes: list[str] = []  # why a guest report was not counted, newest last
        # VMs (by name) whose guest published no readiness report: no hvbackup agent has started there
        # (it publishes one when it starts), so a checkpoint of theirs is not waited for.
        self.silent_guests: set[str] = set()

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """Run one operation script and return its JSON document (errors raised typed); the
        document's `Warnings` (a job that completed with warnings) go to `take_warnings`."""
        output = self.transport.run(assemble(operation, params), self.call_timeout)
        document = parse_document(output, operation)
        for warning in as_list(document.pop("Warnings", None)):
            self._warn(f"{operation}: {warning}")
        return document

    def _warn(self, text: str) -> None:
        if not hasattr(self._local, "warnings"):
            self._local.warnings = []
        self._local.warnings.append(text)

    def take_warnings(self) -> list[str]:
        warnings: list[str] = getattr(self._local, "warnings", [])
        self._local.warnings = []
        return warnings

    def call_job(self, operation: str, **params: Any) -> dict[str, Any]:
        """Run an operation that may leave a WMI job running; poll it until it ends."""
        document = self.call(operation, WaitSeconds=self.job_wait, **params)
        deadline = time.monotonic() + self.job_timeout
        while "Pending" in document:
            pending = document["Pending"]
            if time.monotonic() >= deadline:
                raise OperationTimeout(
                    f"{operation}: WMI job {pending.get('JobId')} still running after {self.job_timeout:.0f} s"
                )
            time.sleep(self.poll_interval)
            document = self.call(
                "poll_job", JobId=pending["JobId"], ResultKind=pending["ResultKind"], WaitSeconds=self.job_wait
            )
        return document

    def host_info(self) -> Host:
        return host_from_json(self.call("get_host"))

    def identity(self) -> str:
        """The host's fully qualified domain name (two hosts may share a short name), else its name."""
        info = self.host_info()
        return info.fqdn or info.name

    def inventory(self) -> list[VM]:
        return [vm_from_json(v) for v in as_list(self.call("inventory").get("VMs"))]

    def get_vm(self, vm: str) -> VM:
        if not _GUID.match(vm):
            return super().get_vm(vm)
        found = as_list(self.call("inventory", VmId=vm).get("VMs"))
        if not found:
            raise VmNotFound(f"no VM {vm!r} on {self.transport.host_name}")
        return vm_from_json(found[0])

    def create_recovery_checkpoint(
        self,
        vm: VM,
        consistency: ConsistencyLevel,
        name: str,
        *,
        skip_unsupported_disks: bool = False,
        on_created: Callable[[Checkpoint], None] | None = None,
    ) -> Checkpoint:
        token = self.announce_request(vm) if consistency == ConsistencyLevel.ApplicationConsistent else None
        document = self.call_job(
            "create_checkpoint",
            VmId=vm.id,
            ConsistencyLevel=int(consistency),
            IgnoreNonSnapshottableDisks=skip_unsupported_disks,
        )
        checkpoint = checkpoint_from_json(document["Checkpoint"], vm.id)
        if on_created is not None:
            on_created(checkpoint)
        if token is not None:
            self.requests[checkpoint.id.upper()] = (vm.id, token, vm.name)
        if name and checkpoint.name != name:
            checkpoint = self._name_checkpoint(checkpoint, name)
        return checkpoint

    def _name_checkpoint(self, checkpoint: Checkpoint, name: str) -> Checkpoint:
        """The checkpoint with our name; a rename the host refuses leaves it as it is, with a warning."""
        try:
            named = self.call("name_checkpoint", VmId=checkpoint.vm_id, CheckpointId=checkpoint.id, Name=name)
        except HyperVError as exc:
            self._warn(f"checkpoint {checkpoint.id} could not be named {name} ({exc}); it is still ours and is removed")
            return checkpoint
        return checkpoint_from_json(named["Checkpoint"], checkpoint.vm_id)

    def announce_request(self, vm: VM) -> str | None:
        """Tell the guest agent which checkpoint comes next (host->guest item HvBackupRequest, docs/HYPERV.md §13).

        None when the host would not take the item: the freeze report then cannot be tied to the
        checkpoint and is not counted."""
        token = uuid.uuid4().hex
        try:
            self.call("set_guest_item", VmId=vm.id, Name=kvpreport.REQUEST_KEY, Data=token)
        except HyperVError as exc:
            self.guest_notes.append(f"{vm.name}: the backup request was not announced to the guest ({exc})")
            return None
        return token

    def guest_items(self, vm: str) -> dict[str, str]:
        """Name -> Data of the items the guest publishes (GuestExchangeItems); `vm` is an id or a name."""
        params = {"VmId": vm} if _GUID.match(vm) else {"VmName": vm}
        document = self.call("guest_items", **params)
        return kvp.parse_exchange_items(as_list(document.get("GuestExchangeItems")))

    def guest_readiness(self, vm_name: str) -> dict[str, Any] | None:
        items = self.guest_items(vm_name)
        read = kvp.read_report(items, kvpreport.READINESS)
        if read.report is None:
            self.guest_notes.append(f"{vm_name}: no readiness report ({read.reason})")
        if not kvp.has_report(items, kvpreport.READINESS) and not kvp.has_report(items, kvpreport.FREEZE):
            self.silent_guests.add(vm_name)
        return read.report

    def guest_report(self, checkpoint_id: str) -> dict[str, Any] | None:
        """The agent's freeze report for this checkpoint: complete, checksum-valid and carrying the token
        announced for it. The agent publishes it after its thaw hooks, so it is polled for `report_wait`."""
        key = checkpoint_id.upper()
        if key in self.reports:
            return self.reports[key]
        request = self.requests.get(key)
        if request is None:
            return None
        read = self._poll_freeze_report(*request[:2], wait=request[2] not in self.silent_guests)
        if read.report is None:
            self.guest_notes.append(f"checkpoint {checkpoint_id}: guest report not counted ({read.reason})")
        self.reports[key] = read.report
        return read.report

    def _poll_freeze_report(self, vm_id: str, token: str, *, wait: bool = True) -> kvp.ReportRead:
        deadline = time.monotonic() + (self.report_wait if wait else 0.0)
        while True:
            items = self.guest_items(vm_id)
            read = kvp.read_report(items, kvpreport.FREEZE, token)
            if read.report is not None or time.monotonic() >= deadline:
                return read
            if kvp.agent_absent(items):
                return kvp.ReportRead(None, "the guest's readiness report shows no hvbackup agent")
            time.sleep(self.poll_interval)

    def checkpoint_disks(self, checkpoint: Checkpoint) -> list[VirtualDisk]:
        document = self.call("checkpoint_disks", VmId=checkpoint.vm_id, CheckpointId=checkpoint.id)
        return [disk_from_json(d) for d in as_list(document.get("HardDrives"))]

    def changed_ranges(self, disk_path: str, rct_id: str) -> Iterator[tuple[int, int]]:
        """Any failure of the query (a WMI error, a failed job, a CIM exception, a lost call, a
        document of the wrong shape) is ChangeTrackingUnavailable: the disk is read fully."""
        try:
            yield from self._changed_ranges(disk_path, rct_id)
        except ChangeTrackingUnavailable:
            raise
        except HyperVError as exc:
            raise ChangeTrackingUnavailable(str(exc)) from None
        except (KeyError, TypeError, ValueError) as exc:
            raise ChangeTrackingUnavailable(f"changed_ranges: unexpected answer ({exc!r})") from None

    def _changed_ranges(self, disk_path: str, rct_id: str) -> Iterator[tuple[int, int]]:
        offset = 0
        while True:
            document = self.call(
                "changed_ranges",
                Path=disk_path,
                LimitId=rct_id,
                ByteOffset=offset,
                ByteLength=0,
                MaxRanges=self.ranges_per_call,
                MaxSeconds=min(30.0, self.call_timeout / 4),
            )
            size = int(document["VirtualSize"])
            processed, ranges = changes_from_json(document)
            yield from clip_ranges(ranges, size)
            if offset + processed >= size:
                return
            if processed == 0:
                raise ChangeTrackingUnavailable(
                    f"GetVirtualDiskChanges made no progress at offset {offset} of {disk_path}"
                )
            offset += processed

    def convert_to_reference_point(self, checkpoint: Checkpoint) -> ReferencePoint:
        document = self.call_job("convert_to_reference_point", VmId=checkpoint.vm_id, CheckpointId=checkpoint.id)
        return reference_point_from_json(document["ReferencePoint"])

    def list_reference_points(self, vm: VM) -> list[ReferencePoint]:
        document = self.call("list_reference_points", VmId=vm.id)
        return [reference_point_from_json(p) for p in as_list(document.get("ReferencePoints"))]

    def destroy_reference_point(self, reference_point: ReferencePoint) -> None:
        self.call_job("destroy_reference_point", VmId=reference_point.vm_id, ReferencePointId=reference_point.id)

    def destroy_checkpoint(self, checkpoint: Checkpoint) -> None:
        self.call_job("destroy_checkpoint", VmId=checkpoint.vm_id, CheckpointId=checkpoint.id)

    def save_vm(self, vm: VM) -> None:
        self.call("save_vm", VmId=vm.id)

    def start_vm(self, vm: VM) -> None:
        self.call("start_vm", VmId=vm.id)

    def stop_vm(self, vm: VM) -> None:
        self.call("stop_vm", VmId=vm.id)

    def request_shutdown(self, vm: VM, reason: str) -> None:
        self.call("request_shutdown", VmId=vm.id, Reason=reason)

    def list_orphans(self, vm: VM) -> list[Orphan]:
        document = self.call("list_orphans", VmId=vm.id, Prefix=CHECKPOINT_PREFIX)
        return [orphan_from_json(o) for o in as_list(document.get("Orphans"))]

    def create_vm(self, config: VmConfig, name: str, disk_paths: Sequence[str]) -> VM:
        if len(disk_paths) != len(config.disks):
            raise ValueError(
                f"create_vm: {len(config.disks)} disks in the configuration, {len(disk_paths)} paths given"
            )
        folder = host_path_folder(disk_paths[0]) if disk_paths else ""
        document = self.call("create_vm", Name=name, Path=folder, Config=config.to_json(), DiskPaths=list(disk_paths))
        return vm_from_json(document["VM"])

    def list_switches(self) -> list[str] | None:
        return [str(s["Name"]) for s in as_list(self.call("list_switches").get("Switches"))]

    def checkpoint_files(self, checkpoint: Checkpoint) -> list[ConfigFile] | None:
        document = self.call("checkpoint_files", VmId=checkpoint.vm_id, CheckpointId=checkpoint.id)
        return [
            ConfigFile(str(f["Kind"]), str(f["Path"]), int(f.get("Size") or 0)) for f in as_list(document.get("Files"))
        ]

    def import_vm(self, vmcx_path: str, folder: str, name: str, config: VmConfig, disk_paths: Sequence[str]) -> VM:
        document = self.call(
            "import_vm",
            Path=vmcx_path,
            Destination=folder,
            Name=name,
            Config=config.to_json(),
            DiskPaths=list(disk_paths),
        )
        return vm_from_json(document["VM"])

    def open_disk_source(self, path: str) -> ByteSource:
        return self.disk_opener(path)

    def close(self) -> None:
        self.transport.close()


def clip_ranges(ranges: list[tuple[int, int]], size: int) -> Iterator[tuple[int, int]]:
    """Ranges cut to the virtual disk [0, size); empty ones dropped."""
    for start, length in ranges:
        end = min(start + length, size)
        if end > start:
            yield start, end - start
